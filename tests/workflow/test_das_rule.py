"""usv_detection.method: das: per-channel GPU jobs running `das predict`, tested with stand-in executables
(this machine has no GPU and no DAS): one writes DAS's CSV, one exits 0 without writing (DAS swallows
per-file errors that way), which must fail the rule."""

import stat

import pytest
import yaml

from .conftest import snakemake

pytestmark = pytest.mark.slow

STAND_IN = """#!/usr/bin/env python3
import pathlib, sys
args = sys.argv[1:]
assert args[0] == "predict", args
wav, model = pathlib.Path(args[1]), args[2]
assert pathlib.Path(model + "_model.h5").is_file() and pathlib.Path(model + "_params.yaml").is_file()
opts = dict(zip(args[3::2], args[4::2]))
assert opts["--save-format"] == "csv" and float(opts["--segment-thres"]) == 0.5, opts
assert float(opts["--segment-minlen"]) == 0.015 and float(opts["--segment-fillgap"]) == 0.015, opts
print("stand-in das: predicting", wav)
if "{mode}" == "write":
    out = wav.with_suffix("").as_posix() + "_annotations.csv"
    open(out, "w").write(",name,start_seconds,stop_seconds\\n0,USV,0.1,0.15\\n1,noise,,0.0\\n")
"""


def stand_in(path, mode):
    path = path.parent / "Bartul's tools" / path.name  # quoted as an executable too
    path.parent.mkdir(exist_ok=True)
    path.write_text(STAND_IN.replace("{mode}", mode))
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


@pytest.fixture(scope="module")
def filtered_session(tmp_path_factory):
    """A simulated session processed through the memmap (the input of DAS)."""
    from usvflow.simulate.cohort import simulate_cohort

    # a data root named as labs name theirs: the shell rule must quote every path
    out = tmp_path_factory.mktemp("das_cohort") / "Bartul's data ü"
    simulate_cohort(out, sessions=1, seconds=1.0, seed=21, calibration=False)
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    cfg["stages"] = ["video", "audio"]
    (out / "config.yaml").write_text(yaml.safe_dump(cfg))
    snakemake(out, config=out / "config.yaml")
    model = out / "das_model"
    model.mkdir()
    (model / "20240325_073951_model.h5").write_bytes(b"weights")
    (model / "20240325_073951_params.yaml").write_text("samplerate_x_Hz: 250000\n")
    return out


def das_config(cohort, executable, name):
    cfg = yaml.safe_load((cohort / "config.yaml").read_text())
    cfg["stages"] = ["video", "audio", "usv"]
    cfg["usv_detection"] = {
        "method": "das",
        "das": {"executable": str(executable), "model_directory": str(cohort / "das_model")},
    }
    path = cohort / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_dry_run_shows_per_channel_gpu_jobs(filtered_session, tmp_path):
    cfg = das_config(filtered_session, stand_in(tmp_path / "das", "write"), "dry")
    proc = snakemake(filtered_session, "-n", config=cfg)
    assert proc.stdout.count("rule das_predict:") == 24
    assert proc.stdout.count("gpu=1") >= 24


def test_stand_in_das_writes_annotations(filtered_session, tmp_path):
    cfg = das_config(filtered_session, stand_in(tmp_path / "das", "write"), "write")
    snakemake(filtered_session, config=cfg)
    csvs = sorted(filtered_session.glob("Data/*/audio/das_annotations/*_annotations.csv"))
    assert len(csvs) == 24
    assert csvs[0].read_text().startswith(",name,start_seconds,stop_seconds\n0,USV,0.1,0.15")
    assert not list(filtered_session.glob("Data/*/audio/hpss_filtered/*_annotations.csv"))
    for c in csvs:
        c.unlink()


def test_das_writing_nothing_fails_the_rule(filtered_session, tmp_path):
    cfg = das_config(filtered_session, stand_in(tmp_path / "das", "silent"), "silent")
    proc = snakemake(filtered_session, "--cores", "1", config=cfg, check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "das predict exited 0 but wrote no" in out
    assert not list(filtered_session.glob("Data/*/audio/das_annotations/*_annotations.csv"))
