"""Simulated pose streams: skeleton geometry, projections through the true cameras, SLEAP files."""

import numpy as np
import pytest

from usvflow.simulate.geometry import MOUSE_SKELETON, simulate_animals
from usvflow.simulate.pose import (
    ARENA_NODES,
    arena_points,
    arena_to_lab_mm,
    camera_group,
    lab_mm_to_arena,
    noisy_detections,
    project,
    skeleton_points,
    write_arena_labels,
    write_session_pose,
)

SERIALS = ["21372315", "21372316", "21369048", "22085397", "21241563"]


@pytest.fixture(scope="module")
def cams():
    return camera_group(SERIALS)


def test_skeleton_is_a_plausible_mouse():
    rng = np.random.default_rng(0)
    tr = simulate_animals(rng, 0.0, 2.0)
    t = np.linspace(0.1, 1.9, 50)
    p = skeleton_points(tr, t)
    assert p.shape == (50, 2, 15, 3)
    i = {n: k for k, n in enumerate(MOUSE_SKELETON)}
    np.testing.assert_allclose(
        p[:, :, i["Head"]], np.stack([tr.position_at(a, "Head", t) for a in range(2)], 1)
    )
    length = np.linalg.norm(p[:, :, i["Nose"]] - p[:, :, i["TailTip"]], axis=-1)
    assert 0.15 < length.min() and length.max() < 0.23  # nose to tail tip ~ 20 cm
    ears = np.linalg.norm(p[:, :, i["Ear_L"]] - p[:, :, i["Ear_R"]], axis=-1)
    np.testing.assert_allclose(ears, 0.02, atol=1e-9)
    assert (p[..., 2] >= 0.002 - 1e-12).all() and (p[..., 2] < 0.06).all()


def test_lab_frame_roundtrip_and_cameras_see_the_arena(cams):
    x = np.random.default_rng(1).normal(size=(10, 3))
    np.testing.assert_allclose(lab_mm_to_arena(arena_to_lab_mm(x)), x, atol=1e-12)
    uv = project(cams, arena_to_lab_mm(arena_points()))  # (5, 28, 2)
    seen = np.isfinite(uv[..., 0]).sum(axis=0)
    assert (seen >= 2).all(), seen  # every corner and microphone can be triangulated
    assert (seen[:4] >= 4).all()  # the corners in at least four views
    # projections agree with aniposelib's own projection
    ours = project(cams, arena_to_lab_mm(arena_points()[:4]))
    theirs = cams.project(arena_to_lab_mm(arena_points()[:4]))
    theirs = theirs.reshape(ours.shape)
    ok = np.isfinite(ours)  # ours is NaN outside the image
    np.testing.assert_allclose(ours[ok], theirs[ok], atol=1e-6)


def test_noisy_detections_statistics():
    rng = np.random.default_rng(2)
    clean = rng.uniform(0, 1000, size=(4000, 2, 15, 2))
    det = noisy_detections(rng, clean, noise_px=1.5, p_miss=0.04, p_outlier=0.004)
    missing = np.isnan(det[..., 0])
    assert 0.03 < missing.mean() < 0.07
    # misses come in bursts (occlusions), not independently
    runs = (missing[1:] & missing[:-1]).sum() / missing[:-1].sum()
    assert runs > 0.6
    err = np.linalg.norm(det[..., :2] - clean, axis=-1)[~missing]
    assert 1.5 < np.median(err) < 2.2  # Rayleigh median of sigma 1.5 = 1.77 px
    low = det[..., 2][~missing] <= 0.5  # outliers carry low scores
    assert 0.002 < low.mean() < 0.008
    assert err[low].min() > 5 and np.percentile(err[~low], 99.9) < 8


def test_session_files_hold_the_projections(cams, tmp_path):
    import sleap_io as sio

    rng = np.random.default_rng(3)
    tr = simulate_animals(rng, 0.0, 0.5)
    ft = np.arange(60) / 150.0
    n_frames = {s: 60 for s in SERIALS}
    truth = write_session_pose(
        tmp_path / "s",
        tmp_path / "truth",
        cams,
        tr,
        ft,
        n_frames,
        "20250101120000",
        rng,
        noise_px=1.0,
    )
    assert truth["node_names"] == list(MOUSE_SKELETON)
    pts = np.load(tmp_path / "truth" / "pose_truth.npz")["points3d"]
    uv = project(cams, arena_to_lab_mm(pts))
    for c, s in enumerate(SERIALS):
        f = tmp_path / "s" / "video" / "20250101120000" / s / f"{s}-20250101120000.predictions.slp"
        labels = sio.load_slp(str(f), open_videos=False)
        assert [t.name for t in labels.tracks] == ["animal_0", "animal_1"]
        assert labels.skeletons[0].node_names == list(MOUSE_SKELETON)
        assert all(type(i).__name__ == "PredictedInstance" for lf in labels for i in lf.instances)
        a = labels.numpy()
        n = len(a)
        d = np.linalg.norm(a - uv[c][:n], axis=-1)
        ok = np.isfinite(d)
        assert 0.85 < ok.mean() < 0.99  # some nodes missing
        assert np.median(d[ok]) < 2.0


def test_arena_labels(cams, tmp_path):
    import sleap_io as sio

    truth = write_arena_labels(tmp_path, cams, "20250101120000", np.random.default_rng(4))
    assert truth["node_names"] == list(ARENA_NODES) and len(ARENA_NODES) == 28
    uv = project(cams, arena_to_lab_mm(arena_points()))
    for c, s in enumerate(SERIALS):
        labels = sio.load_slp(
            str(tmp_path / "video" / "20250101120000" / s / f"{s}-20250101120000.slp"),
            open_videos=False,
        )
        assert len(labels) == 1 and labels[0].frame_idx == 0 and not labels.tracks
        inst = labels[0].instances[0]
        assert type(inst).__name__ == "Instance"  # hand labels, not predictions
        p = inst.numpy()
        ok = np.isfinite(uv[c][:, 0])
        np.testing.assert_array_equal(np.isfinite(p[:, 0]), ok)
        assert np.abs(p[ok] - uv[c][ok]).max() < 3.0


def test_pose_painter_draws_the_projected_skeletons(cams, tmp_path):
    from usvflow.simulate.cohort import simulate_cohort
    from usvflow.simulate.pose import CAMERA_SIZE, MOUSE_EDGES, PosePainter, project_camera

    tr = simulate_animals(np.random.default_rng(3), 0.0, 1.0)
    t = np.linspace(0.1, 0.9, 5)
    uv_full = project_camera(cams.cameras[1], arena_to_lab_mm(skeleton_points(tr, t)))
    i = {n: k for k, n in enumerate(MOUSE_SKELETON)}
    for h, w in ((CAMERA_SIZE[1], CAMERA_SIZE[0]), (256, 320)):
        painter = PosePainter(cams, tr, t, len(t), (h, w))
        frame = np.full((h, w), 150, np.uint8)
        painter(frame, SERIALS[1], 2)
        uv = uv_full[2] * (w / CAMERA_SIZE[0])
        for a in range(2):  # a disc of its own level at each node (close nodes overlap), dark body
            xy = np.rint(uv[a]).astype(int)
            own = np.abs(frame[xy[:, 1], xy[:, 0]].astype(int) - painter.levels) <= 12
            assert own.sum() >= 11, own
            mid = np.rint((uv[a, i["Trunk"]] + uv[a, i["TTI"]]) / 2).astype(int)
            assert frame[mid[1] - 1 : mid[1] + 2, mid[0] - 1 : mid[0] + 2].min() < 100
        assert ("Trunk", "TTI") in MOUSE_EDGES
        assert 0.5 < (frame == 150).mean() < 1.0
        # frames of a camera it does not know, or beyond the poses, are left alone
        blank = np.full((h, w), 150, np.uint8)
        painter(blank, "nope", 0)
        painter(blank, SERIALS[1], len(t))
        assert (blank == 150).all()
    with pytest.raises(ValueError, match="pose_video"):
        simulate_cohort(tmp_path / "c", seconds=0.2, session_options=[{"pose_video": True}])
    assert not (tmp_path / "c").exists()
