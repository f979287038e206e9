"""Re-coordinate: the original's golden check and recovery of a known rigid+scale transform."""

import math

import h5py
import numpy as np
import pytest

from usvflow.io.atomic import InputError
from usvflow.pose.recoordinate import (
    CORNERS,
    apply,
    arena_transform,
    recoordinate_animals,
    recoordinate_arena,
    snap_corners,
)
from usvflow.simulate.pose import ARENA_NODES, arena_points


def test_golden_unit_square():
    # docs/original-pipeline.md step 7c: unit square -> k = 0.43487, corners +-0.3075, snapped
    # +-0.3325
    pts = {"North": [0, 1, 0], "West": [-1, 0, 0], "South": [0, -1, 0], "East": [1, 0, 0]}
    T = arena_transform({k: np.array(v, float) for k, v in pts.items()})
    assert T["k"] == pytest.approx(0.43487, abs=1e-5)
    P = apply(np.array([pts[c] for c in CORNERS], float), T)
    np.testing.assert_allclose(
        P,
        [[-0.3075, 0.3075, 0], [-0.3075, -0.3075, 0], [0.3075, -0.3075, 0], [0.3075, 0.3075, 0]],
        atol=1e-12,
    )
    np.testing.assert_allclose(np.abs(snap_corners(P)[:, :2]), 0.3325, atol=1e-12)


def _random_rigid(rng):
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    a, b, c, d = q
    R = np.array([[a*a+b*b-c*c-d*d, 2*(b*c-a*d), 2*(b*d+a*c)], [2*(b*c+a*d), a*a-b*b+c*c-d*d, 2*(c*d-a*b)],
                  [2*(b*d-a*c), 2*(c*d+a*b), a*a-b*b-c*c+d*d]])  # fmt: skip
    return R, rng.normal(0, 500, size=3), rng.uniform(500, 2000)


@pytest.mark.parametrize("seed", range(5))
def test_recovers_the_arena_frame_from_any_rigid_scaled_frame(seed):
    rng = np.random.default_rng(seed)
    R, t, s = _random_rigid(rng)
    truth = arena_points()
    lab = s * truth @ R.T + t
    T = arena_transform({c: lab[i] for i, c in enumerate(CORNERS)})
    np.testing.assert_allclose(apply(lab, T), truth, atol=1e-9)


def _write_points(path, tracks, nodes, tracks_names):
    with h5py.File(path, "w") as h:
        h["tracks"] = tracks
        h["node_names"] = np.array([n.encode() for n in nodes])
        h["track_names"] = np.array([n.encode() for n in tracks_names])


def test_files(tmp_path):
    rng = np.random.default_rng(9)
    R, t, s = _random_rigid(rng)
    arena = s * arena_points() @ R.T + t
    _write_points(tmp_path / "arena.h5", arena[None, None], ARENA_NODES, ["track_0"])
    out = recoordinate_arena(tmp_path / "arena.h5", tmp_path / "arena_m.h5")
    with h5py.File(tmp_path / "arena_m.h5") as h:
        m = h["tracks"][0, 0]
        np.testing.assert_allclose(m[4:], arena_points()[4:], atol=1e-9)  # microphones
        np.testing.assert_allclose(h["corners_unsnapped"][()], arena_points()[:4], atol=1e-9)
        np.testing.assert_allclose(np.abs(m[:4, :2]), 0.615 / 2 + 0.025, atol=1e-9)  # rail edge
    assert out["k"] == pytest.approx(1 / s)
    animals = rng.uniform(-0.25, 0.25, size=(50, 2, 15, 3))
    animals[..., 2] = rng.uniform(-0.002, 0.05, size=(50, 2, 15))
    animals[3, 1, 4] = np.nan
    _write_points(
        tmp_path / "p.h5", s * animals @ R.T + t, [f"n{i}" for i in range(15)], ["a", "b"]
    )
    recoordinate_animals(tmp_path / "p.h5", tmp_path / "arena.h5", tmp_path / "p_m.h5", track_names=["male", "female"],
                         experimental_code="E2MF", frame_rate=150.05, chunk=7)  # fmt: skip
    with h5py.File(tmp_path / "p_m.h5") as h:
        want = animals.copy()
        want[..., 2] = np.maximum(want[..., 2], 0)
        np.testing.assert_allclose(h["tracks"][()], want, atol=1e-9)
        assert [v.decode() for v in h["track_names"][()]] == ["male", "female"]
        assert (
            h["experimental_code"][()].decode() == "E2MF"
            and h["recording_frame_rate"][()] == 150.05
        )
    with pytest.raises(InputError, match="subject names"):
        recoordinate_animals(
            tmp_path / "p.h5", tmp_path / "arena.h5", tmp_path / "x.h5", track_names=["one"]
        )
    nan_arena = arena.copy()
    nan_arena[2] = np.nan
    _write_points(tmp_path / "bad.h5", nan_arena[None, None], ARENA_NODES, ["track_0"])
    with pytest.raises(InputError, match="South"):
        recoordinate_arena(tmp_path / "bad.h5", tmp_path / "bad_m.h5")
    assert not math.isnan(out["mean_edge"])
