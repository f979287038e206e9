"""Video staging (usvflow.video.stage): frame-count summary, concatenation, re-encoding."""

from __future__ import annotations

import hashlib
import os
import stat

import numpy as np
import pytest

from usvflow.io.atomic import InputError
from usvflow.io.loopbio import camera_dirs, read_store
from usvflow.simulate.timeline import make_timeline
from usvflow.simulate.video import write_loopbio_cameras
from usvflow.video.ffmpeg import count_frames, ffmpeg_exe, iter_frames, probe, run_ffmpeg, video_fps
from usvflow.video.stage import (
    camera_frame_count_dict,
    concatenate_chunks,
    empirical_rate,
    reencode,
)

SERIALS = ["21372315", "21372316", "21369048", "22085397", "21241563"]
STAMP = "20250430_145035"
H, W = 64, 80
LEDS = {"21372315": {"LED_top": [20, 74], "LED_middle": [32, 74], "LED_bottom": [44, 74]}}
DROPPED = {"21369048": [7, 101, 102]}
BLOCK = 8  # the frame index is written in base 8 into three 8×8 blocks of the top-left corner


def stamp_index(frame, serial, k):
    for j in range(3):
        digit = (k // 8 ** (2 - j)) % 8
        frame[0:BLOCK, j * BLOCK : (j + 1) * BLOCK] = 16 + 32 * digit


def read_index(frame):
    k = 0
    for j in range(3):
        v = frame[2 : BLOCK - 2, j * BLOCK + 2 : (j + 1) * BLOCK - 2].mean()
        k = 8 * k + int(np.clip(np.rint((v - 16) / 32), 0, 7))
    return k


def decode_gray(mp4):
    return np.stack(list(iter_frames(mp4)))


def tree_digest(folder):
    out = {}
    for p in sorted(folder.rglob("*")):
        st = p.stat()
        out[str(p.relative_to(folder))] = (
            st.st_mtime_ns,
            hashlib.md5(p.read_bytes()).hexdigest() if p.is_file() else None,
        )
    return out


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    root = tmp_path_factory.mktemp("stage") / "20250430_145017"
    tl = make_timeline(np.random.default_rng(1), 1.5, SERIALS)
    truth = write_loopbio_cameras(
        root,
        tl,
        np.random.default_rng(11),
        STAMP,
        LEDS,
        height=H,
        width=W,
        chunksize=100,
        frame_time_jitter_s=1e-4,
        dropped_frames=DROPPED,
        frame_callback=stamp_index,
    )
    video = root / "video"
    before = tree_digest(video)
    # raw inputs are read-only: anything that tried to write there would fail
    for d in camera_dirs(video):
        for p in [d, *d.iterdir()]:
            p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    stores = [read_store(d) for d in camera_dirs(video)]
    yield root, tl, truth, stores, before
    for d in camera_dirs(video):
        for p in [d, *d.iterdir()]:
            p.chmod(p.stat().st_mode | stat.S_IWUSR)


@pytest.fixture(scope="module")
def staged(session):
    """Concatenate and re-encode every camera as the workflow does (products outside the raw folders)."""
    root, tl, truth, stores, _ = session
    counts = camera_frame_count_dict(stores)
    out = {}
    for st in stores:
        d = root / "video" / "20250430145035" / st.serial
        cat = concatenate_chunks(
            st.mp4_paths, root / "video" / f"concatenated_temp_{st.serial}.mp4"
        )
        enc = reencode(cat, d / f"{st.serial}-20250430145035.mp4", counts[st.serial][1])
        out[st.serial] = (cat, enc)
    return counts, out


def test_empirical_rate_long_recording_with_jitter():
    """20 min at 150.057 fps, σ = 0.1 ms timestamp jitter, dropped frames: rate within 1e-3 fps."""
    rng = np.random.default_rng(3)
    fps = 150.057
    n = 180_000
    fn = np.arange(n)
    ft = 1.7e9 + fn / fps + rng.normal(0, 1e-4, n)
    keep = np.ones(n, bool)
    keep[rng.choice(n, 500, replace=False)] = False
    assert abs(empirical_rate(fn, ft) - fps) < 1e-3
    assert abs(empirical_rate(fn[keep], ft[keep]) - fps) < 1e-3
    # the original count / (t_last − t_first) is biased by one frame period (here ~8e-4 fps, but
    # ~0.67 fps on a 1.5 s recording); the least-squares slope is not
    exact = 1.7e9 + fn[:225] / fps
    assert abs(empirical_rate(fn[:225], exact) - fps) < 1e-6
    assert abs(225 / (exact[-1] - exact[0]) - fps) > 0.6
    with pytest.raises(ValueError):
        empirical_rate([0], [1.0])


def test_frame_count_dict_matches_truth(session):
    _, tl, truth, stores, _ = session
    d = camera_frame_count_dict(stores)
    n_frames_jitter_bound = 5 * tl.fps**2 * 1e-4 * np.sqrt(12 / 224.0**3)  # 5 σ of the fitted rate
    for s in SERIALS:
        count, esr = d[s]
        assert count == tl.camera_frames[s] - len(DROPPED.get(s, []))
        assert abs(esr - tl.fps) < n_frames_jitter_bound
        assert round(esr, 6) == esr
        assert d["dropped_frames"][s] == len(DROPPED.get(s, []))
    clean = [tl.camera_frames[s] for s in SERIALS if s not in DROPPED]
    assert d["total_frame_number_least"] == min(clean)
    assert abs(d["median_empirical_camera_sr"] - tl.fps) < n_frames_jitter_bound
    assert d["total_video_time_least"] == pytest.approx(
        d["total_frame_number_least"] / d["median_empirical_camera_sr"]
    )
    # N frame periods: the window from frame 0 to the onset of the frame after the last common frame
    n = d["total_frame_number_least"]
    assert d["total_video_time_least"] == pytest.approx(
        tl.frame_times_s[n] - tl.frame_times_s[0], abs=1e-4
    )
    assert set(d) == set(SERIALS) | {
        "total_frame_number_least",
        "total_video_time_least",
        "median_empirical_camera_sr",
        "dropped_frames",
    }


def test_dropped_camera_excluded_from_least(session):
    """The camera with dropped frames stores fewer frames than the least clean camera: not the least."""
    _, tl, _, stores, _ = session
    by = {s.serial: s for s in stores}
    d = camera_frame_count_dict(stores)
    assert d["21369048"][0] < d["total_frame_number_least"]
    # without it, the least is unchanged; with only dropped-frame cameras, a clear error
    d2 = camera_frame_count_dict([st for st in stores if st.serial != "21369048"])
    assert d2["total_frame_number_least"] == d["total_frame_number_least"]
    with pytest.raises(InputError, match="every camera dropped frames"):
        camera_frame_count_dict([by["21369048"]])
    with pytest.raises(InputError, match="also recorded"):
        camera_frame_count_dict([by["21372315"], by["21372315"]])
    with pytest.raises(InputError, match="no \\(non-calibration\\) camera"):
        camera_frame_count_dict([])


def test_concatenation_keeps_all_frames_in_order(session, staged):
    _, _, _, stores, _ = session
    _, out = staged
    for st in stores:
        cat, _ = out[st.serial]
        assert count_frames(cat) == st.frame_count
        frames = decode_gray(cat)
        np.testing.assert_array_equal([read_index(f) for f in frames], st.frame_number)


def test_reencode_keeps_frames_and_stamps_empirical_rate(session, staged):
    _, _, _, stores, _ = session
    counts, out = staged
    for st in stores:
        _, enc = out[st.serial]
        assert enc.parent.name == st.serial
        assert count_frames(enc) == st.frame_count
        frames = decode_gray(enc)
        np.testing.assert_array_equal([read_index(f) for f in frames], st.frame_number)
        esr = counts[st.serial][1]
        assert abs(video_fps(enc) - esr) < 0.01  # packet timestamps
        assert abs(probe(enc)["fps"] - esr) < 0.01  # what `ffmpeg -i` reports


def test_led_pixels_follow_the_led(session, staged):
    _, tl, truth, stores, _ = session
    _, out = staged
    st = next(s for s in stores if s.serial == "21372315")
    on = tl.led_is_on(tl.frame_times_s[st.frame_number])
    assert 0 < on.sum() < len(on)  # both states occur
    for mp4 in out["21372315"]:
        frames = decode_gray(mp4)
        for name, (y, x) in truth["led_pixels"]["21372315"].items():
            v = frames[:, y, x].astype(float)
            np.testing.assert_array_equal(v > 130, on, err_msg=f"{mp4.name} {name}")


def test_raw_folders_untouched(session, staged):
    """Staging only reads the camera folders (the read-only bits do not stop root: compare contents)."""
    root, _, _, stores, before = session
    video = root / "video"
    raw = {d.name for d in camera_dirs(video)}
    after = {k: v for k, v in tree_digest(video).items() if k.split("/")[0] in raw}
    assert after == before
    assert (video / "20250430145035").is_dir()  # the products live beside them


def test_single_chunk_is_copied(session, tmp_path):
    st = session[3][0]
    out = concatenate_chunks(st.mp4_paths[:1], tmp_path / "one.mp4")
    assert out.read_bytes() == st.mp4_paths[0].read_bytes()
    assert os.stat(out).st_mode & stat.S_IWUSR  # a writable product, not a read-only raw copy


def test_refuses_to_write_inside_camera_folder(session):
    st = session[3][0]
    with pytest.raises(ValueError, match="raw input folder"):
        concatenate_chunks(st.mp4_paths, st.path / "cat.mp4")
    with pytest.raises(ValueError, match="raw input folder"):
        reencode(st.mp4_paths[0], st.path / "re.mp4", 150.0)


def test_reencode_of_a_broken_file_fails_cleanly(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(RuntimeError, match="ffmpeg failed"):
        reencode(bad, tmp_path / "out.mp4", 150.0)
    assert not any(p.name.endswith("out.mp4") for p in tmp_path.iterdir())  # no partial product


def test_ffmpeg_exe_selection(monkeypatch, tmp_path):
    monkeypatch.setenv("USVFLOW_FFMPEG", str(tmp_path / "nope"))
    with pytest.raises(RuntimeError, match="USVFLOW_FFMPEG"):
        ffmpeg_exe()
    monkeypatch.delenv("USVFLOW_FFMPEG")
    assert os.path.isfile(ffmpeg_exe())
    with pytest.raises(RuntimeError, match="exit"):
        run_ffmpeg(["-i", tmp_path / "missing.mp4", "-f", "null", "-"])


def test_concat_list_quotes_awkward_paths(session, tmp_path):
    st = next(s for s in session[3] if s.serial == "21372316")
    odd = tmp_path / "it's a [weird] dir"
    odd.mkdir()
    chunks = []
    for p in st.mp4_paths:
        q = odd / f"chunk '{p.name}"
        q.write_bytes(p.read_bytes())
        chunks.append(q)
    out = concatenate_chunks(chunks, tmp_path / "out" / "cat.mp4")
    assert count_frames(out) == st.frame_count
