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
        slp_to_analysis_h5(pose_session["root"] / "cal" / "video" / DJ / s / f"{s}-{DJ}.slp", arena_h5[s])
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
    kw = optim_kwargs({"rigid_body_constraints": [["Nose", "Head"]], "weak_body_constraints": [[0, 14]]}, list(MOUSE_SKELETON))
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
        np.testing.assert_allclose(c.project(pts), cam.project(pts).reshape(-1, 2), rtol=0, atol=1e-9)
    _, _, h5 = triangulated
    p = np.stack([read_analysis_h5(h5[s], frames=slice(0, 40))["points"][:, 0] for s in SERIALS])
    flat = p.reshape(len(SERIALS), -1, 2)
    flat[1:3, :7] = np.nan  # points seen by fewer cameras, some by one only
    flat[:4, 7:9] = np.nan
    want = theirs.triangulate(flat, progress=False)
    got = ours.triangulate(flat)
    assert np.array_equal(np.isnan(got), np.isnan(want)) and np.isnan(got[7:9]).all()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)  # mm
