"""Triangulation of the simulated session through the true cameras, and the metric frame, vs truth."""

import numpy as np
import pytest

from usvflow.io.atomic import InputError
from usvflow.pose.recoordinate import recoordinate_animals, recoordinate_arena
from usvflow.pose.slp import slp_to_analysis_h5
from usvflow.pose.triangulate import optim_kwargs, read_points3d, triangulate
from usvflow.simulate.geometry import MOUSE_SKELETON
from usvflow.simulate.pose import arena_points

from .conftest import DJ, SERIALS

TRI = dict(smooth_scale=4, weight_weak=4, weight_rigid=1, reprojection_error_threshold=5,
           regularization_function="l2", n_deriv_smooth=1)  # fmt: skip


@pytest.fixture(scope="module")
def triangulated(pose_session, tmp_path_factory):
    out = tmp_path_factory.mktemp("tri")
    h5 = {}
    arena_h5 = {}
    for s in SERIALS:
        d = pose_session["root"] / "exp" / "video" / DJ / s
        h5[s] = out / f"{s}.analysis.h5"
        slp_to_analysis_h5(d / f"{s}-{DJ}.predictions.slp", h5[s], n_frames=240)
        arena_h5[s] = out / f"{s}.arena.analysis.h5"
        slp_to_analysis_h5(
            pose_session["root"] / "cal" / "video" / DJ / s / f"{s}-{DJ}.slp", arena_h5[s]
        )
    # chunks of 100 frames (+ 20 of context) in one process: the chunked path, without worker start-up
    summary = triangulate(h5, pose_session["toml"], out / "points3d.h5", TRI, chunk=100, margin=20)
    triangulate(arena_h5, pose_session["toml"], out / "arena_points3d.h5", {}, arena=True)
    recoordinate_arena(out / "arena_points3d.h5", out / "arena_metric.h5")
    recoordinate_animals(out / "points3d.h5", out / "arena_points3d.h5", out / "metric.h5")
    return out, summary, h5


def test_animals_within_2mm(triangulated, pose_session):
    out, summary, _ = triangulated
    assert summary["frames"] == [0, 240] and summary["tracks"] == ["animal_0", "animal_1"]
    m = read_points3d(out / "metric.h5")
    assert m["node_names"] == list(MOUSE_SKELETON)
    truth = np.load(pose_session["truth"]["truth_file"])["points3d"][:240]
    err = np.linalg.norm(m["tracks"] - truth, axis=-1) * 1000
    assert np.isfinite(err).mean() > 0.99
    assert np.nanmedian(err) <= 2.0
    assert np.nanpercentile(err, 95) < 5.0


def test_arena_within_2mm(triangulated):
    import h5py

    out = triangulated[0]
    with h5py.File(out / "arena_metric.h5") as h:
        corners = h["corners_unsnapped"][()]
        mics = h["tracks"][0, 0, 4:]
    assert np.linalg.norm(corners - arena_points()[:4], axis=1).max() < 0.002
    assert np.linalg.norm(mics - arena_points()[4:], axis=1).max() < 0.002


def test_chunking_is_seamless(triangulated, pose_session):
    out, _, h5 = triangulated
    whole = out / "whole.h5"
    triangulate(h5, pose_session["toml"], whole, TRI, frames=(60, 180), chunk=1000)
    # frames 80-120 (around the chunk border at 100, away from the borders of the second run) agree
    # within the optimiser's own convergence noise (the solutions are in mm)
    a = read_points3d(whole)["tracks"][20:60]
    b = read_points3d(out / "points3d.h5")["tracks"][80:120]
    d = np.linalg.norm(a - b, axis=-1)
    assert np.nanmedian(d) < 0.3 and np.nanpercentile(d, 95) < 1.5


def test_constraints_and_errors(pose_session, triangulated):
    kw = optim_kwargs(
        {"rigid_body_constraints": [["Nose", "Head"]], "weak_body_constraints": [[0, 14]]},
        list(MOUSE_SKELETON),
    )
    assert kw["constraints"] == [[0, 5]] and kw["constraints_weak"] == [[0, 14]]
    with pytest.raises(ValueError, match="unknown node"):
        optim_kwargs({"rigid_body_constraints": [["Nose", "Paw"]]}, list(MOUSE_SKELETON))
    _, _, h5 = triangulated
    with pytest.raises(InputError, match="fewer than two views"):
        triangulate({SERIALS[0]: h5[SERIALS[0]]}, pose_session["toml"], "/nonexistent/x.h5", TRI)


@pytest.mark.parametrize("loss", ["l2", "soft_l1", "huber"])
def test_fast_solver_equals_aniposelib(pose_session, triangulated, loss):
    import contextlib
    import io

    from usvflow.pose.optim import triangulate_optim
    from usvflow.pose.slp import read_analysis_h5

    _, _, h5 = triangulated
    cg = pose_session["cams"]
    p = np.stack([read_analysis_h5(h5[s], frames=slice(0, 80))["points"][:, 0] for s in SERIALS])
    kw = dict(constraints=[[0, 5]], constraints_weak=[[5, 14]], scale_smooth=4, scale_length=1, scale_length_weak=4,
              reproj_error_threshold=5, reproj_loss=loss, n_deriv_smooth=2)  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        want = cg.triangulate_optim(p, **kw)
    got = triangulate_optim(cg, p, **kw)
    d = np.linalg.norm(got - want, axis=-1)  # mm
    assert np.median(d) < 0.02 and d.max() < 0.5


def test_cameras_equal_aniposelib(pose_session, triangulated):
    """The light camera model (no jax/numba) projects and triangulates as aniposelib does."""
    from aniposelib.cameras import CameraGroup

    from usvflow.pose.cameras import Cameras
    from usvflow.pose.slp import read_analysis_h5

    ours = Cameras.load(pose_session["toml"])
    theirs = CameraGroup.load(str(pose_session["toml"]))
    assert ours.names() == theirs.get_names()
    rng = np.random.default_rng(0)
    pts = rng.uniform(-200, 200, size=(50, 3)) + [0, 0, 50]
    for c, cam in zip(ours.cameras, theirs.cameras):
        np.testing.assert_allclose(
            c.project(pts), cam.project(pts).reshape(-1, 2), rtol=0, atol=1e-9
        )
    _, _, h5 = triangulated
    p = np.stack([read_analysis_h5(h5[s], frames=slice(0, 40))["points"][:, 0] for s in SERIALS])
    flat = p.reshape(len(SERIALS), -1, 2)
    flat[1:3, :7] = np.nan  # points seen by fewer cameras, some by one only
    flat[:4, 7:9] = np.nan
    want = theirs.triangulate(flat, progress=False)
    got = ours.triangulate(flat)
    assert np.array_equal(np.isnan(got), np.isnan(want)) and np.isnan(got[7:9]).all()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)  # mm


def _moved_session(pose_session, tmp_path, bad: int, deg: float):
    """The simulated session seen by cameras of which ``bad`` was rotated by ``deg`` degrees (about
    its own centre) after calibration: analysis files of the moved views, the truth in the lab frame."""
    import copy

    import cv2

    from usvflow.simulate.geometry import simulate_animals
    from usvflow.simulate.pose import arena_to_lab_mm, write_session_pose

    cams = copy.deepcopy(pose_session["cams"])
    cam = cams.cameras[bad]
    R = cv2.Rodrigues(np.asarray(cam.get_rotation(), float))[0]
    centre = -R.T @ np.asarray(cam.get_translation(), float)
    Rm = cv2.Rodrigues(np.array([0.0, np.radians(deg), 0.0]))[0] @ R
    cam.set_rotation(cv2.Rodrigues(Rm)[0].ravel())
    cam.set_translation(-Rm @ centre)
    tr = simulate_animals(np.random.default_rng(11), 0.0, 1.7)
    truth = write_session_pose(tmp_path / "exp", tmp_path / "truth", cams, tr, np.arange(240) / 150.057,
                               {s: 240 for s in SERIALS}, DJ, np.random.default_rng(5))  # fmt: skip
    h5 = {}
    for s in SERIALS:
        h5[s] = tmp_path / f"{s}.analysis.h5"
        slp_to_analysis_h5(
            tmp_path / "exp" / "video" / DJ / s / f"{s}-{DJ}.predictions.slp", h5[s], n_frames=240
        )
    return h5, arena_to_lab_mm(np.load(truth["truth_file"])["points3d"])


def test_moved_camera_flagged_and_excluded(pose_session, tmp_path, caplog):
    """A camera rotated by 3 degrees after calibration stands out (log, QC); with auto-exclusion the
    3D error returns to within 20 % of the undisturbed session's."""
    still, truth = _moved_session(pose_session, tmp_path / "still", bad=2, deg=0.0)
    moved, _ = _moved_session(pose_session, tmp_path / "moved", bad=2, deg=3.0)

    def run(h5, name, **kw):
        tri = dict(TRI, view_outlier_ratio=2.0, view_outlier_min_px=10.0, **kw)
        s = triangulate(h5, pose_session["toml"], tmp_path / name, tri, chunk=120, margin=20)
        err = np.linalg.norm(read_points3d(tmp_path / name)["tracks"] - truth, axis=-1)  # mm
        return s["qc"], float(np.nanmedian(err))

    qc0, e0 = run(still, "still.h5", auto_exclude_views=True)
    assert qc0["verdict"] == "ok" and qc0["flagged_views"] == [] and len(qc0["cameras"]) == 5
    assert all(c["median_reprojection_error_px"] < 3 for c in qc0["cameras"].values())
    assert all(0 < c["missing_fraction"] < 0.1 for c in qc0["cameras"].values())
    assert all(a["pose_fraction"] > 0.95 for a in qc0["animals"].values())
    with caplog.at_level("WARNING", logger="usvflow.pose.triangulate"):
        qc1, e1 = run(moved, "moved.h5")
    assert qc1["verdict"] == "camera_flagged" and qc1["flagged_views"] == [SERIALS[2]]
    assert qc1["auto_excluded_views"] == [] and len(qc1["cameras"]) == 5
    assert f"camera {SERIALS[2]} stands out" in caplog.text
    errs = qc1["screening"][0]["error_px"]
    assert errs[SERIALS[2]] > 2 * max(v for k, v in errs.items() if k != SERIALS[2])
    assert e1 > 5 * e0  # every 3D point is biased
    qc2, e2 = run(moved, "excluded.h5", auto_exclude_views=True)
    assert qc2["verdict"] == "camera_excluded" and qc2["auto_excluded_views"] == [SERIALS[2]]
    import h5py

    with h5py.File(tmp_path / "excluded.h5") as h:
        assert SERIALS[2] not in qc2["cameras"] and SERIALS[2].encode() not in list(
            h["camera_names"][()]
        )
    assert qc2["screening"][-1]["flagged"] == []
    assert e2 <= 1.2 * e0, (e0, e1, e2)


def _write_analysis(path, points, node_names, track_names):
    """An analysis HDF5 (SLEAP's matlab layout) of ``points`` (frames, tracks, nodes, 2)."""
    import h5py

    with h5py.File(path, "w") as h:
        h.create_dataset("tracks", data=np.asarray(points).transpose(1, 3, 2, 0))
        h.create_dataset("node_names", data=np.array([n.encode() for n in node_names], dtype="S"))
        h.create_dataset("track_names", data=np.array([t.encode() for t in track_names], dtype="S"))


def test_tracks_matched_by_name_across_views_that_name_them_differently(
    pose_session, triangulated, tmp_path
):
    """sleap-nn names the tracks of each camera on its own (track_0, track_1, ...) and may start a new
    one in one view only: the views' tracks are matched by name, in any order, a view without a track
    leaves it out, a track of one view only is kept (untriangulable, NaN)."""
    from usvflow.pose.slp import read_analysis_h5

    out, _, h5 = triangulated
    frames = (0, 40)
    ref = read_points3d(out / "points3d.h5")["tracks"][: frames[1]]
    files = dict(h5)
    a = read_analysis_h5(h5[SERIALS[1]])  # tracks in the other order
    files[SERIALS[1]] = tmp_path / "reversed.h5"
    _write_analysis(
        files[SERIALS[1]], a["points"][:, ::-1], a["node_names"], a["track_names"][::-1]
    )
    b = read_analysis_h5(h5[SERIALS[2]])  # animal_1 lost, a third track seen only here
    extra = np.full_like(b["points"][:, :1], np.nan)
    extra[5:10] = b["points"][5:10, 1:2]
    files[SERIALS[2]] = tmp_path / "other.h5"
    _write_analysis(files[SERIALS[2]], np.concatenate([b["points"][:, :1], extra], axis=1), b["node_names"],
                    ["animal_0", "track_2"])  # fmt: skip
    summary = triangulate(files, pose_session["toml"], tmp_path / "p.h5", TRI, frames=frames)
    assert summary["tracks"] == ["animal_0", "animal_1", "track_2"]
    got = read_points3d(tmp_path / "p.h5")["tracks"]
    assert got.shape[1] == 3 and np.isnan(got[:, 2]).all()
    err = np.linalg.norm(got[:, :2] - ref, axis=-1)
    assert (
        np.nanmedian(err) < 1.0
    )  # mm: the same animals from the same points (one view fewer for one)
