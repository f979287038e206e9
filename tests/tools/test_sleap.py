"""sleap-nn for real: a tiny top-down model pair (centroid + centered instance) trained here, on the CPU, on
frames of one simulated cohort whose videos show the animals' projected skeletons (the simulator's
``pose_video`` session option), labelled with the simulator's true 2D poses; then the workflow's
`sleap_predict` rule (pose.sleap.run, the `sleap-nn` executable of the venv of workflow/envs/sleap.yaml) runs
on every camera of another cohort (another seed), `slp_to_h5` converts the predictions, `triangulate` and
`recoordinate` put them in the arena frame (calibration from the ChArUco footage); the 3D poses are scored
against that cohort's truth."""

import itertools
import json
import os
import subprocess
import time

import h5py
import numpy as np
import pytest
import yaml

from .conftest import DEVICE, tool_env
from .run import snakemake

pytestmark = [pytest.mark.tools, pytest.mark.slow]

TRAIN_SEED, TEST_SEED = 21, 22
SECONDS = 0.5  # ~75 frames per camera
LABEL_EVERY = 5  # every 5th frame of every camera of the training cohort is labelled
# tiny U-Nets (8 base filters): the centroid model sees the frame at 1/8, the instance model crops of
# 320 px at 1/4; one epoch of 100 steps each (batch 4), ~16 s each on 2 CPU cores. USVFLOW_TOOLS_SLEAP_STEPS
# trains longer (the README's figures for 1000 steps)
EPOCHS, STEPS = 1, int(os.environ.get("USVFLOW_TOOLS_SLEAP_STEPS", "100"))
# a tiny model's confidences are low: the rule's peak threshold and instance filters are loosened
SLEAP = {
    "filter_min_instance_score": 0.0,
    "filter_min_mean_node_score": 0.0,
    "filter_min_visible_nodes": 3,
    "peak_threshold": 0.01,
    "tracking_window_size": 5,
}

LABELS_SCRIPT = """
import sys, cv2, numpy as np, sleap_io as sio
from pathlib import Path
d = np.load(sys.argv[1])
out = Path(sys.argv[2]).parent / "frames"
skel = sio.Skeleton(nodes=[str(n) for n in d["nodes"]], edges=[[str(a), str(b)] for a, b in d["edges"]],
                    name="mouse")
lfs, videos = [], []
for c, (v, pts, fr) in enumerate(zip(d["videos"], d["points"], d["frames"])):
    cap, k, pngs = cv2.VideoCapture(str(v)), 0, []
    want = set(int(f) for f in fr)
    while len(pngs) < len(want):
        ok, img = cap.read()
        assert ok, (v, k)
        if k in want:
            pngs.append(str(out / f"cam{c}_{k:06d}.png"))
            out.mkdir(exist_ok=True)
            cv2.imwrite(pngs[-1], cv2.cvtColor(img, cv2.COLOR_BGR2GRAY))
        k += 1
    video = sio.Video.from_filename(pngs)
    videos.append(video)
    for i, p in enumerate(pts):
        insts = [sio.Instance.from_numpy(a, skeleton=skel) for a in p if np.isfinite(a[:, 0]).any()]
        lfs.append(sio.LabeledFrame(video=video, frame_idx=i, instances=insts))
sio.save_slp(sio.Labels(labeled_frames=lfs, videos=videos, skeletons=[skel]), sys.argv[2])
"""


def cohort(out, seed, calibration):
    """A one-session cohort (pose streams, full-size frames that show the animals); returns (config, truth)."""
    from usvflow.simulate.cohort import REAL_FRAME_SIZE, simulate_cohort

    simulate_cohort(out, sessions=1, seconds=SECONDS, seed=seed, calibration=calibration, pose=True,
                    frame_size=REAL_FRAME_SIZE, session_options=[{"pose_video": True}])  # fmt: skip
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    truth = {}
    for d in (out / "truth").iterdir():
        if d.is_dir():
            truth[d.name] = json.loads((d / "ground_truth.json").read_text())
    return cfg, truth


def true_2d(truth_file, serials):
    """{serial: (frames, animals, nodes, 2)} projections of the true 3D poses (the pixels drawn)."""
    from usvflow.simulate.pose import arena_to_lab_mm, camera_group, project_camera

    lab = arena_to_lab_mm(np.load(truth_file)["points3d"])
    return {c.get_name(): project_camera(c, lab) for c in camera_group(serials).cameras}


def labels_file(root, exp, serials, py, out):
    """A SLEAP labels file (sleap-io of the tool's venv) of every LABEL_EVERY-th frame of every camera of
    the training session: user instances at the true projections on the frames of the cameras' raw mp4,
    saved as PNG images (one image video per camera: quick random access while training)."""
    from usvflow.simulate.geometry import MOUSE_SKELETON
    from usvflow.simulate.pose import MOUSE_EDGES

    uv = true_2d(exp["pose"]["truth_file"], serials)
    stamp = exp["video"]["video_stamp"]
    videos, points, frames = [], [], []
    n = min(exp["video"]["cameras"][s]["stored_frames"] for s in serials)
    for s in serials:
        assert exp["video"]["cameras"][s]["stored_frames"] <= exp["video"]["chunksize"]
        idx = np.arange(0, n, LABEL_EVERY)  # one chunk: frame k of the mp4 is camera frame k
        videos.append(
            str(root / "Data" / exp["session_id"] / "video" / f"{stamp}.{s}" / "000000.mp4")
        )
        points.append(uv[s][idx])
        frames.append(idx)
    npz = out.with_suffix(".npz")
    np.savez(npz, videos=np.array(videos), points=np.stack(points), frames=np.stack(frames),
             nodes=np.array(MOUSE_SKELETON), edges=np.array(MOUSE_EDGES))  # fmt: skip
    subprocess.run([str(py), "-c", LABELS_SCRIPT, str(npz), str(out)], check=True, env=tool_env())
    return sum(len(f) for f in frames)


def tune(cfg, kind, ckpt_dir):
    """sleap-nn's auto config made tiny and short (CPU, no augmentation, no plateau stop)."""
    d, m, t = cfg["data_config"], cfg["model_config"], cfg["trainer_config"]
    d["use_augmentations_train"] = False
    unet = m["backbone_config"]["unet"]
    unet.update(filters=8, filters_rate=2.0, max_stride=16)
    head = m["head_configs"][kind]["confmaps"]
    head["anchor_part"] = "Trunk"
    if kind == "centroid":
        d["preprocessing"]["scale"] = 0.125
        head["sigma"] = 3.0
    else:
        d["preprocessing"].update(scale=0.25, crop_size=320)
        head["sigma"] = 2.0
    t.update(max_epochs=EPOCHS, min_train_steps_per_epoch=STEPS, visualize_preds_during_training=False,
             enable_progress_bar=False, trainer_accelerator="cpu" if DEVICE == "cpu" else "gpu",
             trainer_devices=1, ckpt_dir=str(ckpt_dir), run_name=kind)  # fmt: skip
    t["optimizer"]["lr"] = 2e-3
    t["early_stopping"]["stop_training_on_plateau"] = False
    return cfg


def train_models(labels, sleap_nn, out):
    """`sleap-nn config --auto --pipeline topdown` then `sleap-nn train` of both models; returns their
    folders and the training seconds."""
    base = out / "config.yaml"
    subprocess.run([str(sleap_nn), "config", str(labels), "--auto", "--pipeline", "topdown", "-o", str(base)],
                   check=True, env=tool_env(), capture_output=True)  # fmt: skip
    models, secs = {}, {}
    for kind in ("centroid", "centered_instance"):
        path = out / f"config_{kind}.yaml"
        cfg = tune(yaml.safe_load(path.read_text()), kind, out / "models")
        path.write_text(yaml.safe_dump(cfg))
        t0 = time.monotonic()
        proc = subprocess.run([str(sleap_nn), "train", str(path)], capture_output=True, text=True,
                              env=tool_env(), timeout=1800)  # fmt: skip
        secs[kind] = round(time.monotonic() - t0, 1)
        assert proc.returncode == 0, proc.stderr[-4000:]
        d = out / "models" / kind
        assert (d / "best.ckpt").is_file() and (d / "training_config.yaml").is_file(), list(
            d.iterdir()
        )
        models[kind] = d
    return models, secs


def identity_per_camera(h5, uv, max_px):
    """Which true animal each track of a camera's analysis file follows (by the nearest true skeleton over
    the frames both have), and the median 2D error (px) of the matched points."""
    from usvflow.pose.slp import read_analysis_h5

    a = read_analysis_h5(h5)
    pts, n = a["points"], min(len(a["points"]), len(uv))
    follows, errs = {}, []
    for k, name in enumerate(a["track_names"]):
        d = np.linalg.norm(pts[:n, k, None] - uv[:n], axis=-1)  # (frames, animals, nodes)
        med = (
            np.nanmedian(np.where(np.isfinite(d), d, np.nan), axis=(0, 2))
            if np.isfinite(d).any()
            else None
        )
        if med is None:
            follows[name] = None
            continue
        best = int(np.nanargmin(med))
        follows[name] = best if med[best] < max_px else None
        errs.append(d[:, best][np.isfinite(d[:, best])])
    err = float(np.median(np.concatenate(errs))) if errs else float("nan")
    return a["track_names"], follows, err


def pose_error(est, true):
    """Per frame, the animals matched to the tracks by the assignment of least mean error; returns the
    errors (m) of the matched points that are finite, and the coverage (finite / true points)."""
    n = min(len(est), len(true))
    est, true = est[:n], true[:n]
    errs, covered = [], 0
    for f in range(n):
        best = None
        for perm in itertools.permutations(range(est.shape[1]), true.shape[1]):
            d = np.linalg.norm(est[f, list(perm)] - true[f], axis=-1)
            m = np.nanmean(d) if np.isfinite(d).any() else np.inf
            if best is None or m < best[0]:
                best = (m, d)
        d = best[1]
        errs.append(d[np.isfinite(d)])
        covered += int(np.isfinite(d).sum())
    return np.concatenate(errs), covered / true[..., 0].size


def test_sleap_nn_trained_on_one_cohort_poses_another(tool_python, tmp_path):
    from usvflow.pose.slp import read_analysis_h5
    from usvflow.simulate.cohort import CAMERA_SERIALS

    py = tool_python("sleap")
    sleap_nn = py.with_name("sleap-nn")

    # 1. training data: cohort A's raw camera videos, labelled with the true projections; tiny models
    train_dir = tmp_path / "train_cohort"
    _, truth = cohort(train_dir, TRAIN_SEED, calibration=False)
    exp = next(t for t in truth.values() if t["kind"] == "experiment")
    work = tmp_path / "sleap_training"
    work.mkdir()
    labels = work / "labels.slp"
    n_labelled = labels_file(train_dir, exp, CAMERA_SERIALS, py, labels)
    models, train_s = train_models(labels, sleap_nn, work)

    # 2. the workflow on cohort B (another seed): video, sleap_predict, slp_to_h5, calibration, triangulation
    test_dir = tmp_path / "test_cohort"
    cfg, truth = cohort(test_dir, TEST_SEED, calibration=True)
    sid, exp = next((s, t) for s, t in truth.items() if t["kind"] == "experiment")
    cfg["stages"] = ["video", "pose"]
    sleap = {"run": True, "executable": str(sleap_nn), "centroid_model": str(models["centroid"]),
             "centered_instance_model": str(models["centered_instance"]), **SLEAP}  # fmt: skip
    cfg["pose"] = {"use_unproofread": True, "sleap": sleap, "triangulation": {"chunk_frames": 60}}
    (test_dir / "config.yaml").write_text(yaml.safe_dump(cfg))
    _, wall = snakemake(test_dir, config=test_dir / "config.yaml")

    dj = exp["video"]["date_joint"]
    vdir = test_dir / "Data" / sid / "video" / dj
    preds = sorted(vdir.glob("*/*.predictions.slp"))
    assert len(preds) == 5
    bench = [np.genfromtxt(b, names=True, delimiter="\t")
             for b in sorted((test_dir / "Data" / sid / "benchmarks").glob("sleap_predict_*.tsv"))]  # fmt: skip
    assert len(bench) == 5
    uv = true_2d(exp["pose"]["truth_file"], CAMERA_SERIALS)
    cameras = {}
    for s in CAMERA_SERIALS:
        names, follows, err = identity_per_camera(
            vdir / s / f"{s}-{dj}.analysis.h5", uv[s], max_px=40
        )
        cameras[s] = {
            "tracks": names,
            "follows_animal": follows,
            "median_2d_error_px": round(err, 1),
        }
        # the real tool's track names, read by our conversion
        assert names and all(n.startswith("track_") for n in names), names
        assert (
            read_analysis_h5(vdir / s / f"{s}-{dj}.analysis.h5")["n_frames"]
            == (exp["video"]["cameras"][s]["stored_frames"])
        )

    # 3. the 3D poses in the arena frame against the truth
    with h5py.File(vdir / f"{dj}_points3d_translated_rotated_metric.h5") as h:
        est = h["tracks"][()]
        names3d = [v.decode() for v in h["track_names"][()]]
    qc = json.loads((vdir / f"{dj}_pose_qc.json").read_text())
    true3d = np.load(exp["pose"]["truth_file"])["points3d"]
    err, coverage = pose_error(est, true3d)
    # the tracks of every camera follow the same animals (None: some track follows none of them)
    follow = [c["follows_animal"] for c in cameras.values()]
    consistent = (
        None
        if any(a is None for f in follow for a in f.values())
        else all(f == follow[0] for f in follow)
    )
    report = {"sleap_nn_version": "0.3.0", "labelled_frames": n_labelled, "train_steps": STEPS, "train_s": train_s,
              "frames": int(len(true3d)), "cameras": cameras, "identities_consistent_across_cameras": consistent,
              "tracks_3d": names3d, "median_3d_error_mm": round(float(np.median(err)) * 1000, 1) if len(err) else None,
              "p90_3d_error_mm": round(float(np.percentile(err, 90)) * 1000, 1) if len(err) else None,
              "coverage": round(coverage, 3),
              "median_reprojection_error_px": {s: c.get("median_reprojection_error_px") for s, c in qc["cameras"].items()},
              "sleap_predict_wall_s_sum": round(sum(float(b["s"]) for b in bench), 1),
              "workflow_wall_s": round(wall, 1)}  # fmt: skip
    print("SLEAP", json.dumps(report))
    (tmp_path.parent / "sleap_report.json").write_text(json.dumps(report, indent=1))
    assert est.shape[2:] == (15, 3) and est.shape[1] >= 1, est.shape
    assert len(err) > 0 and coverage > 0.05, report

    # 4. one camera's real predictions edited with sleap-io: identities swapped, then untracked
    check_edited_predictions(vdir / CAMERA_SERIALS[1], exp, tmp_path / "edited")


def check_edited_predictions(cam_dir, exp, out):
    """slp_to_h5's conversion of a real prediction file whose first two tracks are exchanged (the points
    move with the names) and of the same file without tracks (``track_<i>`` per instance slot)."""
    import sleap_io as sio

    from usvflow.pose.slp import read_analysis_h5, slp_to_analysis_h5

    serial = cam_dir.name
    n = exp["video"]["cameras"][serial]["stored_frames"]
    dj = exp["video"]["date_joint"]
    base = read_analysis_h5(cam_dir / f"{serial}-{dj}.analysis.h5")
    labels = sio.load_slp(str(cam_dir / f"{serial}-{dj}.predictions.slp"), open_videos=False)
    out.mkdir()
    if len(labels.tracks) >= 2:
        t0, t1 = labels.tracks[0], labels.tracks[1]
        for lf in labels:
            for inst in lf.instances:
                inst.track = {id(t0): t1, id(t1): t0}.get(id(inst.track), inst.track)
        sio.save_slp(labels, str(out / "swapped.slp"))
        slp_to_analysis_h5(out / "swapped.slp", out / "swapped.h5", n_frames=n)
        sw = read_analysis_h5(out / "swapped.h5")
        assert sw["track_names"] == base["track_names"]
        k = list(range(len(base["track_names"])))
        k[0], k[1] = 1, 0
        np.testing.assert_array_equal(sw["points"], base["points"][:, k])
    for lf in labels:
        for inst in lf.instances:
            inst.track = None
    labels.tracks.clear()
    sio.save_slp(labels, str(out / "untracked.slp"))
    summary = slp_to_analysis_h5(out / "untracked.slp", out / "untracked.h5", n_frames=n)
    un = read_analysis_h5(out / "untracked.h5")
    assert summary["tracks"] == [] and un["n_frames"] == n
    assert un["track_names"] == [f"track_{i}" for i in range(un["points"].shape[1])]
    assert np.isfinite(un["points"]).sum() == np.isfinite(base["points"]).sum()
