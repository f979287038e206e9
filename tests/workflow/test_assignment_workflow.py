"""Assignment of USVs to animals on a simulated session with two moving animals: the built-in
localizer end to end (audio chain, curation, pose, localization), and vocalocator-ssl with a stand-in
interpreter that speaks its documented command lines."""

import json
import stat
import sys

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml

from .conftest import snakemake

pytestmark = pytest.mark.slow

STAND_IN = """#!/usr/bin/env python3
import sys, pathlib
import numpy as np
args = sys.argv[1:]
assert args[0] == "-m", args
if args[1] == "vocalocatorssl":
    opts = dict(zip(args[2::2], args[3::2])) if "--predict" not in args else None
    rest = [a for a in args[2:] if a != "--predict"]
    opts = dict(zip(rest[::2], rest[1::2]))
    import h5py
    data = pathlib.Path(opts["--data"])
    # as vocalocatorssl reads --data: a folder means every *.h5 in it (each must hold 'locations')
    for f in sorted(data.glob("*.h5")) if data.is_dir() else [data]:
        with h5py.File(f) as h:
            n = len(h["length_idx"]) - 1
            assert h.attrs["arena_dims_units"] == "mm" and h["locations"].shape[0] == n
    scores = np.stack([np.arange(n) % 2 == 0, np.arange(n) % 2 == 1], axis=1).astype(float)
    if "{mode}" == "write":
        np.savez(opts["-o"], **{"dset-scores": scores})
elif args[1] == "vocalocatorssl.assign":
    npz, opts = args[2], dict(zip(args[3::2], args[4::2]))
    assert pathlib.Path(opts["--calibration-results"]).is_file() and float(opts["--conf-threshold"]) == 0.95
    z = dict(np.load(npz))
    a = np.argmax(z["dset-scores"], axis=1)
    a[2::5] = -1
    z["dset-assignments"] = a
    np.savez(npz[: -len(".npz")], **z)
else:
    raise SystemExit("unexpected module " + args[1])
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from usvflow.simulate.cohort import simulate_cohort

    out = tmp_path_factory.mktemp("assign_cohort")
    simulate_cohort(
        out, sessions=1, seconds=2.0, seed=31, calibration=True, pose=True, calls_per_minute=400
    )
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    cfg["stages"] = ["video", "audio", "usv", "pose", "assignment"]
    cfg.setdefault("pose", {})["use_unproofread"] = True
    (out / "config.yaml").write_text(yaml.safe_dump(cfg))
    snakemake(out, config=out / "config.yaml")
    truth = {}
    for d in (out / "truth").iterdir():
        if d.is_dir():
            truth[d.name] = json.loads((d / "ground_truth.json").read_text())
    exp = next(s for s, t in truth.items() if t["kind"] == "experiment")
    return out, exp, truth[exp]


def test_builtin_assignment_matches_the_true_emitters(run):
    from usvflow.usv.curate import read_summary
    from usvflow.usv.score import match_intervals

    out, sid, truth = run
    audio = out / "Data" / sid / "audio"
    summ = read_summary(audio / f"{sid}_usv_summary_assigned.csv")
    est = pd.read_csv(
        audio / "sound_localization" / f"{sid}_source_estimates.csv", dtype={"usv_id": str}
    )
    assert list(est["usv_id"]) == list(summ["usv_id"])
    assert "<svg" in (audio / "sound_localization" / f"{sid}_sound_sources.svg").read_text()
    calls = [u for u in truth["audio"]["usvs"] if not u["outside_video"]]
    lab = np.array([[u["t_start_video_s"], u["t_stop_video_s"]] for u in calls])
    pairs = match_intervals(summ[["start", "stop"]].to_numpy(), lab)
    assert len(pairs) >= 5
    right = wrong = 0
    errs = []
    for i, j in pairs:
        errs.append(
            np.linalg.norm(
                est[["x_m", "y_m"]].to_numpy()[i] - np.array(calls[j]["source_xyz_m"][:2])
            )
        )
        e = summ["emitter"][i]
        if isinstance(e, str):
            right += e == calls[j]["emitter"]
            wrong += e != calls[j]["emitter"]
    assert right >= 0.6 * len(pairs), (right, wrong, len(pairs))
    assert wrong <= 0.05 * max(1, right + wrong)
    assert np.median(errs) < 0.005, errs


def stand_in(path, mode):
    # the stand-in needs numpy and h5py: run it with this interpreter
    path.write_text(
        STAND_IN.replace("{mode}", mode).replace("#!/usr/bin/env python3", "#!" + sys.executable)
    )
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def vcl_config(out, python, name):
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    model = out / "vcl_model"
    model.mkdir(exist_ok=True)
    np.savez(model / "calibration_results.npz", temperature=np.array(1.3))
    cfg["assignment"] = {
        "method": "vocalocator-ssl",
        "vocalocator": {"python": str(python), "model_directory": str(model)},
    }
    path = out / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_vocalocator_ssl_dry_run_shows_gpu_jobs(run, tmp_path):
    out, sid, _ = run
    (out / "Data" / sid / "audio" / f"{sid}_usv_summary_assigned.csv").unlink()
    proc = snakemake(
        out, "-n", config=vcl_config(out, stand_in(tmp_path / "python", "write"), "vcl_dry")
    )
    assert "rule vocalocator_predict:" in proc.stdout
    assert "gpu=1" in proc.stdout.split("rule vocalocator_predict:")[1].split("rule ")[0]
    assert "rule prepare_vocalocator:" in proc.stdout and "rule vocalocator_assign:" in proc.stdout


def test_vocalocator_ssl_with_a_stand_in(run, tmp_path):
    from usvflow.usv.curate import read_summary

    out, sid, _ = run
    audio = out / "Data" / sid / "audio"
    target = audio / f"{sid}_usv_summary_assigned.csv"
    target.unlink(missing_ok=True)
    # a leftover .h5 beside dset.h5 (the legacy tool's assessment.h5) must not be read
    with h5py.File(audio / "sound_localization" / "assessment.h5", "w") as h:
        h["point_predictions"] = np.zeros((1, 1, 2))
    silent = vcl_config(out, stand_in(tmp_path / "python_silent", "silent"), "vcl_silent")
    proc = snakemake(out, "--cores", "1", config=silent, check=False)
    assert proc.returncode != 0 and not target.exists()
    snakemake(out, config=vcl_config(out, stand_in(tmp_path / "python", "write"), "vcl"))
    summ = read_summary(target)
    with h5py.File(audio / "sound_localization" / "dset.h5") as h:
        assert len(h["length_idx"]) == len(summ) + 1
    want = [
        None if k % 5 == 2 else ("animal_0" if k % 2 == 0 else "animal_1") for k in range(len(summ))
    ]
    got = [e if isinstance(e, str) else None for e in summ["emitter"]]
    assert got == want
