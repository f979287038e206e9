"""Pose stage on a simulated cohort: the proofreading gate, SLEAP inference with stand-in executables,
and a full run (calibration from the ChArUco footage, SLP -> H5, triangulation, metric frame) whose
products are compared with the simulated truth."""

import shutil
import stat

import h5py
import numpy as np
import pytest
import yaml

from .conftest import snakemake

pytestmark = pytest.mark.slow

STAND_IN = """#!/usr/bin/env python3
import shutil, sys
args = sys.argv[1:]
assert args[0] == "track", args
opts = {}
i = 1
while i < len(args):
    if i + 1 < len(args) and not args[i + 1].startswith("--"):
        opts.setdefault(args[i], []).append(args[i + 1]); i += 2
    else:
        opts.setdefault(args[i], []).append(True); i += 1
assert len(opts["-m"]) == 2 and opts["--max_instances"] == ["2"] and opts["--tracking"] == [True], opts
assert opts["--peak_threshold"] == ["0.2"] and opts["--filter_min_mean_node_score"] == ["0.62"] and opts["--tracking_window_size"] == ["150"], opts
video, out = opts["-i"][0], opts["-o"][0]
assert video.endswith(".mp4"), video
print("stand-in sleap-nn: tracking", video)
if "{mode}" == "write":
    shutil.copy(video.replace(".mp4", ".sim.slp"), out)
"""


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    from usvflow.simulate.cohort import simulate_cohort

    out = tmp_path_factory.mktemp("pose_cohort")
    simulate_cohort(out, sessions=1, seconds=1.0, seed=5, calibration=True, pose=True)
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    cfg["stages"] = ["video", "pose"]
    (out / "config.yaml").write_text(yaml.safe_dump(cfg))
    return out


def _config(cohort, name, **pose):
    cfg = yaml.safe_load((cohort / "config.yaml").read_text())
    cfg["pose"] = pose
    path = cohort / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _sessions(cohort):
    truth = {}
    for d in (cohort / "truth").iterdir():
        if d.is_dir():
            truth[d.name] = yaml.safe_load((d / "ground_truth.json").read_text())
    cal = next(s for s, t in truth.items() if t["kind"] == "calibration")
    exp = next(s for s, t in truth.items() if t["kind"] == "experiment")
    return truth, cal, exp


def test_waits_for_proofreading(cohort):
    proc = snakemake(cohort, "-n", config=cohort / "config.yaml")
    _, cal, exp = _sessions(cohort)
    assert f"{exp}: awaiting proofreading" in proc.stderr
    assert "calibrate_cameras" in proc.stdout
    # the calibration session's arena is triangulated; the experiment session is not
    assert (
        proc.stdout.count("rule triangulate:") == 1 and proc.stdout.count("rule recoordinate:") == 1
    )
    # proofread files arrive -> the session is scheduled
    copies = []
    for p in (cohort / "Data" / exp / "video").rglob("*.predictions.slp"):
        q = p.with_name(p.name.replace(".predictions.slp", ".slp"))
        shutil.copy(p, q)
        copies.append(q)
    try:
        proc = snakemake(cohort, "-n", config=cohort / "config.yaml")
        assert "awaiting" not in proc.stderr
        assert (
            proc.stdout.count("rule triangulate:") == 2
            and proc.stdout.count("rule slp_to_h5:") == 10
        )
    finally:
        for q in copies:
            q.unlink()


def _stand_in(path, mode):
    path.write_text(STAND_IN.replace("{mode}", mode))
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def _models(tmp_path):
    out = {}
    for kind in ("centroid", "centered_instance"):
        d = tmp_path / kind
        d.mkdir()
        (d / "best.ckpt").write_bytes(b"weights")
        (d / "training_config.yaml").write_text("model: {}\n")
        out[f"{kind}_model"] = str(d)
    return out


def test_sleap_inference_jobs(cohort, tmp_path):
    _, _, exp = _sessions(cohort)
    sleap = {
        "run": True,
        "executable": str(_stand_in(tmp_path / "sleap-nn", "write")),
        **_models(tmp_path),
    }
    cfg = _config(cohort, "sleap", use_unproofread=True, sleap=sleap)
    proc = snakemake(cohort, "-n", config=cfg)
    assert proc.stdout.count("rule sleap_predict:") == 5
    assert proc.stdout.count("gpu=1") >= 5
    # run the inference jobs only (the stand-in copies a prepared file as its predictions)
    dj_dir = next((cohort / "Data" / exp / "video").glob("[0-9]" * 14))
    targets = sorted(dj_dir.glob("*/*.predictions.slp"))
    saved = {}
    for t in targets:
        video = t.with_name(t.name.replace(".predictions.slp", ".mp4"))
        shutil.copy(t, video.with_name(video.name.replace(".mp4", ".sim.slp")))
        saved[t] = t.read_bytes()
        t.unlink()
    try:
        snakemake(cohort, *map(str, targets), config=cfg)
        for t in targets:
            assert t.read_bytes() == saved[t]
        log = (cohort / "Data" / exp / "logs").glob("sleap_predict_*.log")
        assert any("stand-in sleap-nn: tracking" in p.read_text() for p in log)
        # a sleap-nn that exits 0 without output fails the job
        silent = _config(
            cohort,
            "silent",
            use_unproofread=True,
            sleap={**sleap, "executable": str(_stand_in(tmp_path / "s2", "silent"))},
        )
        targets[0].unlink()
        proc = snakemake(cohort, str(targets[0]), "--cores", "1", config=silent, check=False)
        assert (
            proc.returncode != 0
            and "sleap-nn exited 0 but wrote no predictions" in proc.stdout + proc.stderr
        )
    finally:
        for t, data in saved.items():
            t.write_bytes(data)


def test_full_run_matches_truth(cohort):
    truth, cal, exp = _sessions(cohort)
    # chunks of 60 frames: the 150-frame session goes through the parallel (spawned workers) path
    cfg = _config(cohort, "unproofread", use_unproofread=True, triangulation={"chunk_frames": 60})
    snakemake(cohort, config=cfg)
    cal_dj = truth[cal]["video"]["date_joint"]
    exp_dj = truth[exp]["video"]["date_joint"]
    cdir = cohort / "Data" / cal / "video" / cal_dj
    for f in (
        f"{cal_dj}_calibration.toml",
        f"{cal_dj}_calibration.metadata.h5",
        f"{cal_dj}_reprojection_histogram.svg",
    ):
        assert (cdir / f).stat().st_size > 0
    assert (cdir / f"{cal_dj}_reprojection_histogram.svg").read_text().lstrip().startswith("<?xml")
    # calibration from the ChArUco footage recovers the simulated cameras (mm, degrees)
    from usvflow.pose.calibrate import compare_calibrations

    cmp = compare_calibrations(
        cdir / f"{cal_dj}_calibration.toml", truth[cal]["pose"]["calibration_toml"]
    )
    assert max(cmp["position"].values()) < 2.0, cmp
    assert max(cmp["orientation_deg"].values()) < 0.2, cmp
    arena = np.array(truth[cal]["pose"]["arena"]["points_arena_m"])
    with h5py.File(cdir / f"{cal_dj}_points3d_translated_rotated_metric.h5") as h:
        assert np.linalg.norm(h["corners_unsnapped"][()] - arena[:4], axis=1).max() < 0.002
        assert np.linalg.norm(h["tracks"][0, 0, 4:] - arena[4:], axis=1).max() < 0.002
    edir = cohort / "Data" / exp / "video" / exp_dj
    assert (edir / f"{exp_dj}_points3d.h5").exists()  # kept (pose.delete_original_h5: false)
    qc = yaml.safe_load((edir / f"{exp_dj}_pose_qc.json").read_text())
    assert qc["verdict"] == "ok" and qc["session"] == exp and len(qc["cameras"]) == 5, qc
    assert max(c["median_reprojection_error_px"] for c in qc["cameras"].values()) < 4
    assert min(a["pose_fraction"] for a in qc["animals"].values()) > 0.9
    with h5py.File(edir / f"{exp_dj}_points3d_translated_rotated_metric.h5") as h:
        tracks = h["tracks"][()]
        assert [v.decode() for v in h["track_names"][()]] == ["animal_0", "animal_1"]
        assert h["experimental_code"][()].decode() == "E2MF"
        assert h["recording_frame_rate"][()] == pytest.approx(150.057, abs=0.01)
    with h5py.File(edir / "21372315" / f"21372315-{exp_dj}.analysis.h5") as h:
        n_frames = h["tracks"].shape[-1]
    assert n_frames == truth[exp]["video"]["cameras"]["21372315"]["stored_frames"]
    true3d = np.load(truth[exp]["pose"]["truth_file"])["points3d"]
    n = min(len(tracks), len(true3d))
    err = np.linalg.norm(tracks[:n] - true3d[:n], axis=-1)
    assert np.nanmedian(err) <= 0.002
