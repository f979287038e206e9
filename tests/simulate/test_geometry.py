"""Arena/microphone geometry and simulated animal tracks."""

import numpy as np
import pytest

from usvflow.simulate.geometry import (
    ARENA_SIDE_M,
    MIC_LAYOUT,
    MOUSE_SKELETON,
    NOSE_OFFSET_M,
    arena_corners,
    microphone_axes,
    microphone_positions,
    simulate_animals,
)


def test_arena_corners_axis_aligned():
    c = arena_corners()
    h = ARENA_SIDE_M / 2
    assert set(c) == {"N", "W", "S", "E"}
    np.testing.assert_allclose(c["N"], [-h, h, 0])
    np.testing.assert_allclose(c["W"], [-h, -h, 0])
    np.testing.assert_allclose(c["S"], [h, -h, 0])
    np.testing.assert_allclose(c["E"], [h, h, 0])
    # mean edge equals the reference length the re-coordinate step scales to
    edges = [
        np.linalg.norm(c[a] - c[b]) for a, b in [("N", "E"), ("N", "W"), ("S", "E"), ("S", "W")]
    ]
    assert np.mean(edges) == pytest.approx(0.615)


def test_microphones_ring_and_layout():
    p = microphone_positions()
    assert p.shape == (24, 3) and p.dtype == np.float64
    r = np.hypot(p[:, 0], p[:, 1])
    assert np.all((r >= 0.33 - 1e-12) & (r <= 0.36 + 1e-12))
    assert np.all((p[:, 2] >= 0.30 - 1e-12) & (p[:, 2] <= 0.40 + 1e-12))
    np.testing.assert_array_equal(p, microphone_positions())  # deterministic
    assert len({tuple(np.round(x, 6)) for x in p}) == 24
    # 6 per side: the side each mic faces, by the dominant horizontal axis
    sides = [
        ("x" if abs(x) > abs(y) else "y") + ("+" if (x if abs(x) > abs(y) else y) > 0 else "-")
        for x, y in p[:, :2]
    ]
    assert sorted(sides.count(s) for s in set(sides)) == [6, 6, 6, 6]
    assert MIC_LAYOUT[0] == ("m", 1) and MIC_LAYOUT[11] == ("m", 12)
    assert MIC_LAYOUT[12] == ("s", 1) and MIC_LAYOUT[23] == ("s", 12)
    ax = microphone_axes()
    np.testing.assert_allclose(np.linalg.norm(ax, axis=1), 1.0)
    assert np.all(np.sum(ax * -p, axis=1) > 0)  # pointing inward


@pytest.fixture(scope="module")
def tracks():
    return simulate_animals(np.random.default_rng(3), 10.0, 70.0)


def test_tracks_shapes_and_grid(tracks):
    assert tracks.names == ["animal_0", "animal_1"]
    n = tracks.t.size
    assert tracks.t[0] == 10.0 and tracks.t[-1] >= 70.0
    np.testing.assert_allclose(np.diff(tracks.t), 1 / 150.057)
    for node in ("Nose", "Head"):
        assert tracks.nodes[node].shape == (2, n, 3)
    assert tracks.heading.shape == (2, n)
    assert "Nose" in MOUSE_SKELETON and "Head" in MOUSE_SKELETON


def test_tracks_realistic(tracks):
    h = ARENA_SIDE_M / 2
    assert np.abs(tracks.nose[..., :2]).max() < h - 0.015
    assert tracks.nose[..., 2].min() >= 0.02 - 1e-12 and tracks.nose[..., 2].max() <= 0.04 + 1e-12
    dt = tracks.t[1] - tracks.t[0]
    speed = np.linalg.norm(np.diff(tracks.head[..., :2], axis=1), axis=-1) / dt
    assert speed.max() < 0.33
    assert 0.03 < speed.mean() < 0.2
    # nose 2.5 cm ahead of the head along the heading
    d = tracks.nose - tracks.head
    horiz = np.hypot(d[..., 0], d[..., 1])
    assert np.all(horiz <= NOSE_OFFSET_M + 1e-9) and np.all(horiz > 0.02)
    yaw = np.arctan2(d[..., 1], d[..., 0])
    err = (yaw - tracks.heading + np.pi) % (2 * np.pi) - np.pi
    assert np.abs(err).max() < 1e-9
    # sometimes close, sometimes far
    dist = np.linalg.norm(tracks.nose[0] - tracks.nose[1], axis=-1)
    assert dist.min() < 0.10 and dist.max() > 0.30
    # smooth: no jumps between frames
    assert np.abs(np.diff(tracks.heading, axis=1)).max() < 0.5


def test_position_at_interpolates(tracks):
    i = 1234
    np.testing.assert_allclose(tracks.position_at(1, "Nose", tracks.t[i]), tracks.nose[1, i])
    np.testing.assert_allclose(
        tracks.position_at("animal_0", "head", tracks.t[[i, i + 1]]), tracks.head[0, [i, i + 1]]
    )
    mid = tracks.position_at(0, "Nose", 0.5 * (tracks.t[i] + tracks.t[i + 1]))
    np.testing.assert_allclose(mid, 0.5 * (tracks.nose[0, i] + tracks.nose[0, i + 1]))
    assert tracks.position_at(0, "Nose", np.zeros((4, 2))).shape == (4, 2, 3)
    with pytest.raises(KeyError):
        tracks.position_at(0, "TailTip", 20.0)


def test_simulate_animals_deterministic():
    a = simulate_animals(np.random.default_rng(5), 0.0, 2.0, n_animals=3, names=["a", "b", "c"])
    b = simulate_animals(np.random.default_rng(5), 0.0, 2.0, n_animals=3, names=["a", "b", "c"])
    np.testing.assert_array_equal(a.nose, b.nose)
    assert a.nose.shape[0] == 3
    with pytest.raises(ValueError):
        simulate_animals(np.random.default_rng(5), 1.0, 0.5)
