"""The simulated Loopbio cameras (usvflow.simulate.video)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from usvflow.simulate.timeline import make_timeline
from usvflow.simulate.video import (
    LED_OFF_LEVEL,
    LED_ON_LEVEL,
    scaled_led_pixels,
    write_calibration_cameras,
    write_loopbio_cameras,
)
from usvflow.video.ffmpeg import count_frames, iter_frames

SERIALS = ["21372315", "21372316", "21369048", "22085397", "21241563"]
STAMP = "20250430_145035"
H, W = 64, 80
EPOCH0 = 1_746_024_635.0
LEDS = {"21372315": {"LED_top": [20, 74], "LED_middle": [32, 74], "LED_bottom": [44, 74]}}


def decode(mp4):
    return np.stack(list(iter_frames(mp4)))


def animals(t):
    """Two animals parked at fixed spots (x, y)."""
    return [(20.0, 40.0), (55.0, 15.0)]


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    root = tmp_path_factory.mktemp("sim") / "20250430_145017"
    tl = make_timeline(np.random.default_rng(1), 1.5, SERIALS)
    truth = write_loopbio_cameras(
        root,
        tl,
        np.random.default_rng(5),
        STAMP,
        LEDS,
        height=H,
        width=W,
        chunksize=100,
        epoch0=EPOCH0,
        frame_time_jitter_s=1e-4,
        animal_xy=animals,
        dropped_frames={"21372316": [0, 99, 100]},
    )
    return root, tl, truth


def test_truth(sim):
    _, tl, truth = sim
    assert truth["video_stamp"] == STAMP and truth["date_joint"] == "20250430145035"
    assert truth["resolution"] == [H, W]
    assert truth["led_pixels"] == LEDS
    assert set(truth["cameras"]) == set(SERIALS)
    for s in SERIALS:
        c = truth["cameras"][s]
        assert c["frames"] == tl.camera_frames[s]
        assert c["fps_true"] == tl.fps
        assert c["dropped"] == ([0, 99, 100] if s == "21372316" else [])
        assert c["stored_frames"] == c["frames"] - len(c["dropped"])


def test_store_files(sim):
    root, tl, truth = sim
    for s in SERIALS:
        d = root / "video" / f"{STAMP}.{s}"
        names = sorted(p.name for p in d.iterdir())
        n_chunks = truth["cameras"][s]["chunks"]
        assert n_chunks >= 2
        assert names == sorted(
            [f"{i:06d}.{e}" for i in range(n_chunks) for e in ("mp4", "npz")] + ["metadata.yaml"]
        )
        meta = yaml.safe_load((d / "metadata.yaml").read_text())
        st = meta["__store"]
        assert st["class"] == "VideoImgStore" and st["format"] == "mp4" and st["chunksize"] == 100
        assert st["imgshape"] == [H, W] and st["imgdtype"] == "uint8" and st["frame_rate"] == 150
        assert "created" in st and meta["user"]["camera_serial"] == s
        fn, ft, total = [], [], 0
        for i in range(n_chunks):
            with np.load(d / f"{i:06d}.npz") as z:
                assert z["frame_number"].dtype == np.int64 and z["frame_time"].dtype == np.float64
                fn.append(z["frame_number"])
                ft.append(z["frame_time"])
            k = count_frames(d / f"{i:06d}.mp4")
            assert k == len(fn[-1]) and (k == 100 or i == n_chunks - 1)
            total += k
        fn, ft = np.concatenate(fn), np.concatenate(ft)
        want = np.setdiff1d(np.arange(tl.camera_frames[s]), truth["cameras"][s]["dropped"])
        np.testing.assert_array_equal(fn, want)
        assert total == len(want)
        err = ft - EPOCH0 - tl.frame_times_s[want]
        assert 0.5e-4 < err.std() < 2e-4 and abs(err.mean()) < 3e-5  # σ = 0.1 ms jitter
    assert not list(root.rglob(".tmp-*"))  # atomic writes leave nothing behind


def test_content(sim):
    root, tl, truth = sim
    frames = decode(root / "video" / f"{STAMP}.21372315" / "000000.mp4").astype(float)
    on = tl.led_is_on(tl.frame_times_s[: len(frames)])
    assert 0 < on.sum() < len(on)
    for y, x in LEDS["21372315"].values():
        np.testing.assert_array_equal(frames[:, y, x] > (LED_ON_LEVEL + LED_OFF_LEVEL) / 2, on)
        assert np.all(np.abs(frames[on, y, x] - LED_ON_LEVEL) < 15)
        assert np.all(np.abs(frames[~on, y, x] - LED_OFF_LEVEL) < 15)
    # the animals are dark blobs on a brighter textured floor
    floor = np.median(frames[:, 5:60, 25:45])
    for x, y in animals(0):
        assert frames[:, int(y), int(x)].mean() < 0.5 * floor
    assert 100 < floor < 180 and frames[0, 5:60, 25:45].std() > 3  # texture
    # a static floor: consecutive frames differ little (the mild sensor noise is mostly compressed away)
    assert np.abs(np.diff(frames[:, 5:60, 25:45], axis=0)).mean() < 5
    # LEDs only on sync cameras
    other = decode(root / "video" / f"{STAMP}.21372316" / "000000.mp4").astype(float)
    y, x = LEDS["21372315"]["LED_top"]
    assert other[:, y, x].std() < 10


def test_deterministic(tmp_path):
    tl = make_timeline(np.random.default_rng(2), 0.2, SERIALS[:2])
    a = write_loopbio_cameras(
        tmp_path / "a", tl, np.random.default_rng(9), STAMP, LEDS, height=H, width=W
    )
    b = write_loopbio_cameras(
        tmp_path / "b", tl, np.random.default_rng(9), STAMP, LEDS, height=H, width=W
    )
    assert a == b
    for s in SERIALS[:2]:
        for name in ("000000.npz", "000000.mp4", "metadata.yaml"):
            pa = tmp_path / "a" / "video" / f"{STAMP}.{s}" / name
            pb = tmp_path / "b" / "video" / f"{STAMP}.{s}" / name
            assert pa.read_bytes() == pb.read_bytes(), name


def test_calibration_cameras(tmp_path):
    truth = write_calibration_cameras(
        tmp_path,
        np.random.default_rng(4),
        "20250430_144012",
        SERIALS[:3],
        n_frames=15,
        fps=10,
        height=H,
        width=W,
    )
    assert truth["date_joint"] == "20250430144012" and truth["resolution"] == [H, W]
    for s in SERIALS[:3]:
        d = tmp_path / "video" / f"calibration_20250430_144012.{s}"
        assert sorted(p.name for p in d.iterdir()) == ["000000.mp4", "000000.npz", "metadata.yaml"]
        assert truth["cameras"][s] == {"frames": 15, "fps_true": 10.0}
        with np.load(d / "000000.npz") as z:
            np.testing.assert_array_equal(z["frame_number"], np.arange(15))
            np.testing.assert_allclose(np.diff(z["frame_time"]), 0.1, atol=1e-6)
        frames = decode(d / "000000.mp4")
        assert len(frames) == 15
        assert (frames < 60).mean() > 0.05 and (
            frames > 200
        ).mean() > 0.05  # black and white squares
        assert np.abs(np.diff(frames.astype(float), axis=0)).mean() > 1  # the board moves
        assert yaml.safe_load((d / "metadata.yaml").read_text())["__store"]["frame_rate"] == 10


def test_argument_errors(tmp_path):
    tl = make_timeline(np.random.default_rng(2), 0.1, SERIALS[:1])
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="YYYYMMDD_HHMMSS"):
        write_loopbio_cameras(tmp_path, tl, rng, "2025-04-30", LEDS, height=H, width=W)
    with pytest.raises(ValueError, match="no entry in led_pixels"):
        write_loopbio_cameras(tmp_path, tl, rng, STAMP, {}, height=H, width=W)
    with pytest.raises(ValueError, match="outside"):
        write_loopbio_cameras(
            tmp_path,
            tl,
            rng,
            STAMP,
            {"21372315": {**LEDS["21372315"], "LED_top": [70, 5]}},
            height=H,
            width=W,
        )
    with pytest.raises(ValueError, match="out of range"):
        write_loopbio_cameras(
            tmp_path, tl, rng, STAMP, LEDS, height=H, width=W, dropped_frames={"21372315": [10_000]}
        )
    with pytest.raises(ValueError, match="even"):
        write_loopbio_cameras(tmp_path, tl, rng, STAMP, LEDS, height=63, width=W)
    assert not list(tmp_path.rglob("*.mp4")) and not list(tmp_path.rglob(".tmp-*"))


def test_scaled_led_pixels():
    px = scaled_led_pixels(1024, 1280)
    assert px["21372315"]["LED_top"] == [504, 1267]
    small = scaled_led_pixels(128, 160)["21372315"]
    assert all(0 <= y < 128 and 0 <= x < 160 for y, x in small.values())
