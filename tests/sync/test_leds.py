"""LED pixel refinement and streamed extraction (usvflow.sync.leds)."""

import json

import numpy as np
import pytest

from usvflow.io.atomic import InputError
from usvflow.simulate.video import H264Writer
from usvflow.sync.leds import (
    LED_NAMES,
    extract_led_pixels,
    led_table,
    otsu_threshold,
    read_led_pixels,
    refine_pixel,
)
from usvflow.video.ffmpeg import iter_frames

H, W = 64, 80
TRUE = {"LED_top": (20, 70), "LED_middle": (27, 70), "LED_bottom": (34, 70)}
NOMINAL = {"LED_top": (22, 68), "LED_middle": (25, 71), "LED_bottom": (36, 69)}  # a few px off


def test_otsu_splits_two_levels():
    v = np.rint(
        np.r_[np.full(50, 30), np.full(10, 230), np.random.default_rng(0).normal(30, 3, 40)]
    )
    thr = otsu_threshold(v)
    assert np.array_equal(v > thr, v > 130)


def test_refine_pixel_takes_the_blob_of_the_brightest_pixel():
    roi = np.full((21, 21), 60.0)
    roi[9:12, 14:17] = 240  # the LED, centre (10, 15)
    roi[0:4, 0:6] = 200  # a bright patch of floor, not connected to the LED
    roi[18:21, 9:12] = 240  # the edge of a neighbouring LED, as bright
    assert refine_pixel(roi) == (10, 15)
    assert refine_pixel(np.full((21, 21), 100.0)) is None


def test_led_table_errors():
    table = {"current": {"1": {n: [1, 2] for n in LED_NAMES}}}
    assert led_table(table, "current", "1")["LED_top"] == (1, 2)
    with pytest.raises(InputError, match="led_px_version"):
        led_table(table, "old", "1")
    with pytest.raises(InputError, match="no entry for camera 2"):
        led_table(table, "current", "2")


def _write_video(path, n, on, leds=TRUE):
    rng = np.random.default_rng(3)
    floor = np.clip(140 + 20 * rng.standard_normal((H, W)), 60, 200)
    with H264Writer(path, W, H, 150, crf=15) as w:
        for k in range(n):
            f = floor + rng.normal(0, 1.5, (H, W))
            for y, x in leds.values():
                f[y - 1 : y + 2, x - 1 : x + 2] = 230 if on[k] else 30
            w.write(np.clip(np.rint(f), 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    d = tmp_path_factory.mktemp("leds")
    n = 120
    on = (np.arange(n) // 20) % 2 == 1  # 20 frames off, 20 on, ...
    _write_video(d / "v.mp4", n, on)
    return d, n, on


def test_extract_refines_pixels_and_equals_full_decode(video):
    d, n, on = video
    res = extract_led_pixels(d / "v.mp4", NOMINAL, n - 5, d / "px", fps=150, dev=4, search_s=0.5,
                             sidecar=d / "px.json")  # fmt: skip
    assert {k: tuple(v) for k, v in res["pixels"].items()} == TRUE
    assert all(res["refined"].values())
    px = read_led_pixels(d / "px", n - 5)
    assert px.shape == (n - 5, 3, 3)
    full = np.stack([f for _, f in zip(range(n - 5), iter_frames(d / "v.mp4", gray=False))])
    for i, name in enumerate(LED_NAMES):
        y, x = TRUE[name]
        assert np.array_equal(px[:, i, :], full[:, y, x, :])
    b = px.astype(float).mean(axis=(1, 2))
    assert np.all((b > 130) == on[: n - 5])
    assert json.loads((d / "px.json").read_text())["shape"] == [n - 5, 3, 3]


def test_search_window_longer_than_video_part(video):
    d, n, _ = video
    res = extract_led_pixels(d / "v.mp4", NOMINAL, 30, d / "px30", fps=150, dev=4, search_s=10.0)
    assert res["search_frames"] == 30 and read_led_pixels(d / "px30").shape == (30, 3, 3)
    assert {k: tuple(v) for k, v in res["pixels"].items()} == TRUE  # frames 20-29 are on


def test_fewer_frames_than_the_frame_count_json(video):
    d, n, _ = video
    with pytest.raises(InputError, match=f"holds {n} frames"):
        extract_led_pixels(d / "v.mp4", NOMINAL, n + 10, d / "pxlong", fps=150, dev=4, search_s=0.2)
    assert not (d / "pxlong").exists()


def test_pixel_outside_frame(video):
    d, n, _ = video
    bad = dict(NOMINAL, LED_top=(H + 5, 10))
    with pytest.raises(InputError, match="outside"):
        extract_led_pixels(d / "v.mp4", bad, n, d / "pxbad", fps=150)


def test_no_flash_keeps_nominal_pixels(tmp_path):
    n = 40
    _write_video(tmp_path / "dark.mp4", n, np.zeros(n, bool))
    res = extract_led_pixels(tmp_path / "dark.mp4", NOMINAL, n, tmp_path / "px", fps=150, dev=4)
    # a constantly dark LED on a textured floor: the ROI's brightest frame is no flash, refinement is
    # refused only when the ROI is flat; either way the intensities are written and the check decides
    assert read_led_pixels(tmp_path / "px").shape == (n, 3, 3)
    assert set(res["refined"]) == set(LED_NAMES)
