"""End-to-end: call types of a simulated session. The workflow builds the audio memmap, trains the
classifier from a simulated class-folder set (rule calltype_train), exports each USV's spectrogram and
writes <session>_usv_summary_call_types.csv; the types are compared with the simulator's truth.

The summary is built from the ground truth (the curation step has its own tests), written at the
documented path, and only the call-type rules are allowed to run after the audio stage, so this test
measures the classifier on the real filtered memmap, not the detector.
"""

import json

import pandas as pd
import pytest
import yaml

from .conftest import snakemake

pytestmark = pytest.mark.slow

SMALL = {"n_fft": 256, "n_freq": 32, "n_time": 32}
CALLTYPE_RULES = ["all", "calltype_train", "calltype_spectrograms", "calltype_classify"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from usvflow.cli import main
    from usvflow.simulate.calltypes import summary_from_truth
    from usvflow.simulate.cohort import simulate_cohort
    from usvflow.usv.curate import write_summary

    out = tmp_path_factory.mktemp("calltype_cohort")
    simulate_cohort(out, sessions=1, seconds=2.0, seed=21, calibration=False, calls_per_minute=900)
    sid = (out / "sessions.tsv").read_text().splitlines()[1].split("\t")[0]
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    cfg["stages"] = ["audio"]
    (out / "config.yaml").write_text(yaml.safe_dump(cfg))
    snakemake(out, config=out / "config.yaml")

    summary = summary_from_truth(out / "truth" / sid / "ground_truth.json")
    write_summary(summary, out / "Data" / sid / "audio" / f"{sid}_usv_summary.csv")
    data = out / "calltype_data"
    args = [f"--{k.replace('_', '-')}={v}" for k, v in SMALL.items()]
    assert (
        main(
            [
                "export-spectrograms",
                "--simulate",
                "100",
                "--dataset-dir",
                str(data),
                "--seed",
                "5",
                *args,
            ]
        )
        == 0
    )
    cfg["stages"] = ["calltypes"]
    cfg["call_types"] = {
        "model_dir": str(out / "calltype_model"),
        "spectrogram": SMALL,
        "train": {"data_dir": str(data), "max_epochs": 25, "patience": 8, "batch_size": 16,
                  "learning_rate": 0.003, "device": "cpu"},
        "device": "cpu",
    }  # fmt: skip
    (out / "config.yaml").write_text(yaml.safe_dump(cfg))
    snakemake(out, "--allowed-rules", *CALLTYPE_RULES, config=out / "config.yaml")
    return out, sid, summary


def test_call_types_of_the_session(run):
    out, sid, summary = run
    audio = out / "Data" / sid / "audio"
    res = pd.read_csv(audio / f"{sid}_usv_summary_call_types.csv", dtype={"usv_id": str})
    model = json.loads((out / "calltype_model" / "model.json").read_text())
    assert list(res.columns) == [*summary.columns, "call_type", "call_type_prob"]
    assert res["usv_id"].tolist() == summary["usv_id"].tolist()
    assert set(res["call_type"]) <= set(model["classes"]) and len(model["classes"]) == 6
    assert ((res["call_type_prob"] > 0) & (res["call_type_prob"] <= 1)).all()
    assert len(res) >= 15
    acc = (res["call_type"] == res["call_type_true"]).mean()
    assert acc >= 0.85, res[["call_type_true", "call_type", "call_type_prob"]]
    report = json.loads((out / "calltype_model" / "report.json").read_text())
    assert report["n"] == report["n_test"] > 0
    assert (out / "calltype_model" / "confusion_matrix.svg").exists()
    assert (audio / "spectrograms" / f"{sid}_usv_spectrograms.npz").exists()
    assert (out / "Data" / sid / "logs" / f"calltype_classify_{sid}.log").exists()


def test_model_with_other_classes_fails_clearly(run):
    out, sid, _ = run
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    cfg["call_types"]["expected_classes"] = ["trill", "complex", "flat"]
    alt = out / "config_expected.yaml"
    alt.write_text(yaml.safe_dump(cfg))
    proc = snakemake(out, "--allowed-rules", *CALLTYPE_RULES, "--forcerun", "calltype_classify", config=alt,
                     check=False)  # fmt: skip
    assert proc.returncode != 0
    log = (out / "Data" / sid / "logs" / f"calltype_classify_{sid}.log").read_text()
    assert "do not match the expected classes ['trill', 'complex', 'flat']" in log
    assert not (out / "Data" / sid / "audio" / f"{sid}_usv_summary_call_types.csv").exists()
