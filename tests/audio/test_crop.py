"""Step 8b: frame pulses, sync info, sample-exact crop and drift-correcting resampling."""

import datetime as dt
import json

import numpy as np
import pytest
import soundfile as sf

from usvflow.audio.crop import (
    DriftResampler,
    crop_file,
    crop_plans,
    crop_session,
    cropped_name,
    find_frame_pulses,
    frames_txt_name,
    load_plans,
    rising_edges,
)
from usvflow.audio.split import split_device
from usvflow.audio.wav import WavWriter
from usvflow.io.atomic import InputError
from usvflow.simulate.audio import write_avisoft
from usvflow.simulate.calls import draw_call, waveform
from usvflow.simulate.timeline import make_timeline

START = dt.datetime(2025, 4, 30, 14, 50, 17)
FS = 250_000
DEVICES = ["m", "s"]


def _read(path):
    x, rate = sf.read(str(path), dtype="int16")
    assert rate == FS
    return x


def _falling(blocks):
    return rising_edges([(~b) & 1 for b in blocks])


def _listing(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# ----------------------------------------------------------------------------- simulated sessions

# (timeline seconds, s clock ppm): "s_long": s runs fast, its window is longer and is resampled;
# "m_long": s runs slow, m is resampled.
CASES = {
    "s_long": dict(seconds=1.5, s_ppm=45.0, kw={}),
    "m_long": dict(
        seconds=0.6,
        s_ppm=-55.0,
        kw=dict(preroll_s=0.05, break_s=0.2, postroll_frames=5, tail_s=0.35),
    ),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def session(request, tmp_path_factory):
    case = CASES[request.param]
    root = tmp_path_factory.mktemp(request.param)
    rng = np.random.default_rng(5)
    tl = make_timeline(rng, case["seconds"], ["a", "b", "c"], s_ppm=case["s_ppm"], **case["kw"])
    truth = write_avisoft(
        root, tl, rng, START, calls_per_minute=300, file_seconds=1.0 if case["kw"] else 2.0
    )
    stamp = truth["devices"]["m"]["files"][0][2:-4]
    for d in DEVICES:
        files = [root / "audio" / "original_mc" / n for n in truth["devices"][d]["files"]]
        assert len(files) >= 2
        split_device(files, root / "audio" / "original", d, stamp)
    (root / "sync").mkdir(exist_ok=True)
    return root, tl, truth, stamp


def _run(root, tl, stamp, mode, tag):
    out = root / "audio" / f"cropped_{tag}"
    info = root / "audio" / f"info_{tag}.json"
    sync = root / f"sync_{tag}"
    res = crop_session(root / "audio" / "original", out, sync, info, DEVICES, stamp, tl.n_frames_least,
                       tl.n_frames_least / tl.fps, trigger_device=mode)  # fmt: skip
    return res, out, info, sync


def test_nosync_crop_matches_truth_and_shares_time_base(session):
    root, tl, truth, stamp = session
    info = root / "audio" / "info_both.json"
    info.write_text(
        json.dumps({"m": {"num_dropouts": 0}, "s": {"num_dropouts": 2}, "note": "kept"})
    )
    res, out, info, sync = _run(root, tl, stamp, "both", "both")
    data = json.loads(info.read_text())
    video_time = tl.n_frames_least / tl.fps
    n = {}
    for d in DEVICES:
        ct = tl.crop_truth(d)
        for k in (
            "start_first_recorded_frame",
            "end_last_recorded_frame",
            "largest_break_duration",
            "duration_samples",
        ):
            assert data[d][k] == ct[k], (d, k)
        assert data[d]["duration_seconds"] == round(ct["duration_samples"] / FS, 4)
        assert data[d]["audio_tracking_diff_seconds"] == round(
            data[d]["duration_seconds"] - video_time, 4
        )
        assert data[d]["num_dropouts"] == (0 if d == "m" else 2)
        onsets = np.loadtxt(sync / frames_txt_name(d), dtype=np.int64)
        np.testing.assert_array_equal(onsets, ct["frame_onsets"])
        n[d] = ct["duration_samples"]
    assert data["note"] == "kept"
    short, long_ = sorted(DEVICES, key=lambda d: n[d])
    assert n[long_] > n[short]
    plans = res["plans"]
    assert (
        plans[long_].resample and plans[long_].mapping == "pulse-fit" and not plans[short].resample
    )
    assert load_plans(info, sync, DEVICES, "both") == plans
    # the shorter device: a sample-exact copy of its window
    for c in (1, 4, 12):
        orig = _read(root / "audio" / "original" / f"{short}_{stamp}_ch{c:02d}.wav")
        s0 = data[short]["start_first_recorded_frame"]
        np.testing.assert_array_equal(
            _read(out / cropped_name(short, stamp, c)), orig[s0 : s0 + n[short]]
        )
    # all 24 channels on one time base of n[short] samples
    assert len(res["outputs"]) == 24 + 3
    for d in DEVICES:
        for c in range(1, 13):
            assert sf.info(str(out / cropped_name(d, stamp, c))).frames == n[short]
    # LSB pulse edges of both devices agree within 1 sample: LED (ch02) and triggerbox (ch04)
    for c, min_pulses in ((2, 1), (4, tl.n_frames_least)):
        xm, xs = (_read(out / cropped_name(d, stamp, c)) for d in DEVICES)
        for edges in (rising_edges, _falling):
            em, es = edges([xm]), edges([xs])
            assert len(em) == len(es) >= min_pulses
            assert np.abs(em - es).max() <= 1, (c, edges)
    # the triggerbox frame-0 pulse starts the window on both devices
    assert _read(out / cropped_name(short, stamp, 4))[0] & 1 == 1
    assert not [f for f in _listing(out) if f.startswith(".")]


@pytest.mark.parametrize("mode", ["m", "s"])
def test_sync_mode_crops_every_device_with_trigger_indices(session, mode):
    root, tl, truth, stamp = session
    res, out, info, sync = _run(root, tl, stamp, mode, f"sync_{mode}")
    data = json.loads(info.read_text())
    ct = tl.crop_truth(mode)
    for d in DEVICES:
        assert data[d]["start_first_recorded_frame"] == ct["start_first_recorded_frame"]
        assert data[d]["end_last_recorded_frame"] == ct["end_last_recorded_frame"]
        assert data[d]["duration_samples"] == ct["duration_samples"]
        np.testing.assert_array_equal(
            np.loadtxt(sync / frames_txt_name(d), dtype=np.int64), ct["frame_onsets"]
        )
        assert not res["plans"][d].resample
        s0, n = ct["start_first_recorded_frame"], ct["duration_samples"]
        for c in (2, 7):
            orig = _read(root / "audio" / "original" / f"{d}_{stamp}_ch{c:02d}.wav")
            np.testing.assert_array_equal(_read(out / cropped_name(d, stamp, c)), orig[s0 : s0 + n])


# ----------------------------------------------------------------------------- resampling accuracy


def _array_reader(x, first):
    """read(a, b) over samples x[k - first], zeros outside."""

    def read(a, b):
        out = np.zeros(b - a, np.int16)
        lo, hi = max(a, first), min(b, first + len(x))
        if lo < hi:
            out[lo - a : hi - a] = x[lo - first : hi - first]
        return out

    return read


def _snr_db(ref, got):
    return 20 * np.log10(np.std(ref) / np.std(got - ref))


@pytest.mark.parametrize("ppm", [48.0, -35.0])
def test_resampled_usv_and_chirp_keep_60db(ppm):
    """A signal sampled on the source clock, resampled to the target grid, equals the same signal
    sampled directly on the target grid (>= 60 dB SNR), incl. quantisation and LSB re-embedding."""
    n_in = 150_000
    n_out = int(round((n_in - 1) / (1 + ppm * 1e-6))) + 1
    margin = 300
    k = np.arange(-margin, n_in + margin)
    p = np.arange(n_out) * (n_in - 1) / (n_out - 1)
    T = n_in / FS

    def chirp(t):
        return 9000 * np.sin(2 * np.pi * (30e3 * t + (110e3 - 30e3) * t**2 / (2 * T)))

    call = draw_call(np.random.default_rng(3), "complex")
    t0 = 0.1

    def usv(t):
        return 12000 * waveform(call, t - t0)

    rs = DriftResampler(n_in, n_out, nfft=1 << 13)  # small blocks: many block borders
    assert rs.block < n_out // 10
    for fn, lo_hi in (
        (chirp, (500, n_out - 500)),
        (usv, (int(t0 * FS), int((t0 + call.duration_s) * FS))),
    ):
        x = np.rint(fn(k / FS)).astype(np.int16)
        outs = []
        rs.run(_array_reader(x, -margin), outs.append)
        y = np.concatenate(outs).astype(np.float64)
        assert len(y) == n_out
        ref = fn(p / FS)
        sl = slice(*lo_hi)
        assert _snr_db(ref[sl], y[sl]) >= 60
        # the LSB is the source LSB at the nearest position
        np.testing.assert_array_equal(
            y.astype(np.int64) & 1, x[np.floor(p + 0.5).astype(np.int64) + margin] & 1
        )


def test_resampler_blocks_are_seamless():
    rng = np.random.default_rng(4)
    n_in, n_out = 60_001, 59_998
    x = rng.integers(-20000, 20000, n_in).astype(np.int16)
    res = {}
    for nfft in (1 << 10, 1 << 16):
        outs = []
        DriftResampler(n_in, n_out, nfft=nfft, dtype=np.float64).run(
            _array_reader(x, 0), outs.append
        )
        res[nfft] = np.concatenate(outs).astype(np.int64)
    assert np.abs(res[1 << 10] - res[1 << 16]).max() == 0
    # explicit affine mapping equals the exact endpoint mapping it approximates
    outs = []
    DriftResampler(n_in, n_out, offset=0.0, step=(n_in - 1) / (n_out - 1), dtype=np.float64).run(
        _array_reader(x, 0), outs.append
    )
    assert np.abs(np.concatenate(outs) - res[1 << 16]).max() <= 1


# ----------------------------------------------------------------------------- frame pulses


def _pulse_train(pre=5, gap=2000, frames=30, period=100, width=10, lead=50, tail=80, rng=None):
    on = np.r_[
        lead + np.arange(pre) * period, lead + (pre - 1) * period + gap + np.arange(frames) * period
    ]
    n = on[-1] + width + tail
    x = (rng or np.random.default_rng(0)).integers(-500, 500, n).astype(np.int16) & ~np.int16(1)
    for o in on:
        x[o : o + width] |= 1
    return x, on, pre


def test_find_frame_pulses_streamed_across_blocks():
    x, on, hop = _pulse_train()
    full = find_frame_pulses(x, 20)
    assert (full.start, full.end, full.hop) == (on[hop], on[hop + 20], hop)
    assert (
        full.largest_break == on[hop] - on[hop - 1]
        and full.duration_samples == on[hop + 20] - on[hop] + 1
    )
    np.testing.assert_array_equal(full.frame_onsets, on[hop : hop + 20] - on[hop])
    for block in (1, 7, 100, 10**6):  # edges found across every block border
        p = find_frame_pulses([x[k : k + block] for k in range(0, len(x), block)], 20)
        assert (p.start, p.end, p.largest_break) == (full.start, full.end, full.largest_break)
    # a stream that starts high has no edge at sample 0
    assert len(rising_edges([np.ones(10, np.int16)])) == 0


def test_find_frame_pulses_errors():
    x, on, hop = _pulse_train(frames=30)
    with pytest.raises(
        InputError, match=r"fewer pulses than video frames: found 30 after the break, need 30\+1"
    ):
        find_frame_pulses(x, 30, name="t.wav")
    y, _, _ = _pulse_train(gap=100)
    with pytest.raises(InputError, match="no break") as ei:
        find_frame_pulses(y, 10, name="t.wav")
    assert ei.value.path == "t.wav"
    with pytest.raises(InputError, match="no triggerbox pulses"):
        find_frame_pulses(np.zeros(100, np.int16), 10, name="t.wav")
    noise = np.random.default_rng(0).integers(-99, 99, 100_000).astype(np.int16)
    with pytest.raises(InputError, match="not a pulse train"):
        find_frame_pulses(noise, 10, name="t.wav")


# ----------------------------------------------------------------------------- bad session input


def _mini_session(root, n_frames=20, frames=25, gap=2000, s_frames=None):
    """12 mono channels per device with a pulse train in ch04; returns the originals folder."""
    orig = root / "original"
    rng = np.random.default_rng(9)
    for d in DEVICES:
        x, _, _ = _pulse_train(
            frames=frames if d == "m" or s_frames is None else s_frames, gap=gap, rng=rng
        )
        for c in range(1, 13):
            y = x if c == 4 else rng.integers(-500, 500, len(x)).astype(np.int16)
            with WavWriter(orig / f"{d}_250430145017_ch{c:02d}.wav", FS) as w:
                w.write(y)
    return orig


def _crop_mini(root, orig, n_frames=20, mode="both"):
    return crop_session(orig, root / "cropped", root / "sync", root / "info.json", DEVICES, "250430145017",
                        n_frames, n_frames / 150.0, trigger_device=mode)  # fmt: skip


def _nothing_written(root):
    assert _listing(root / "cropped") == []
    assert _listing(root / "sync") == []
    assert not (root / "info.json").exists()


def test_mini_session_ok(tmp_path):
    orig = _mini_session(tmp_path)
    res = _crop_mini(tmp_path, orig)
    assert len(_listing(tmp_path / "cropped")) == 24
    assert res["info"]["m"]["duration_samples"] == 20 * 100 + 1


@pytest.mark.parametrize(
    "problem, match",
    [
        ("no_break", "no break in the triggerbox pulses"),
        ("few_pulses", r"fewer pulses than video frames: found 25 after the break, need 30\+1"),
        ("truncated", "truncated WAV"),
        ("rate", "sample rate 192000 Hz"),
        ("stereo", "2 channels, expected 1"),
        ("short_channel", "holds 2000 samples but"),
    ],
)
def test_crop_bad_input_names_file_and_writes_nothing(tmp_path, problem, match):
    n_frames = 30 if problem == "few_pulses" else 20
    orig = _mini_session(tmp_path, gap=100 if problem == "no_break" else 2000)
    bad = orig / "s_250430145017_ch04.wav"
    if problem == "truncated":
        bad = orig / "s_250430145017_ch09.wav"
        with open(bad, "r+b") as fh:
            fh.truncate(bad.stat().st_size - 1000)
    elif problem == "rate":
        bad = orig / "m_250430145017_ch11.wav"
        sf.write(str(bad), np.zeros(3000, np.int16), 192_000, subtype="PCM_16")
    elif problem == "stereo":
        bad = orig / "s_250430145017_ch01.wav"
        sf.write(str(bad), np.zeros((3000, 2), np.int16), FS, subtype="PCM_16")
    elif problem == "short_channel":
        bad = orig / "m_250430145017_ch06.wav"
        sf.write(str(bad), np.zeros(2000, np.int16), FS, subtype="PCM_16")
    elif problem == "no_break":
        bad = orig / "m_250430145017_ch04.wav"
    elif problem == "few_pulses":
        bad = orig / "m_250430145017_ch04.wav"
    with pytest.raises(InputError, match=match) as ei:
        _crop_mini(tmp_path, orig, n_frames=n_frames)
    assert ei.value.path == str(bad)
    _nothing_written(tmp_path)


def test_crop_failure_while_writing_leaves_nothing(tmp_path, monkeypatch):
    orig = _mini_session(tmp_path, s_frames=25)
    import usvflow.audio.crop as crop_mod

    calls = {"n": 0}
    real = crop_mod._copy_range

    def failing(*a, **k):
        calls["n"] += 1
        if calls["n"] == 15:
            raise OSError("disk full")
        return real(*a, **k)

    monkeypatch.setattr(crop_mod, "_copy_range", failing)
    with pytest.raises(OSError):
        _crop_mini(tmp_path, orig)
    _nothing_written(tmp_path)


def test_crop_plans_reject_non_drift_difference():
    info = {"m": {"start_first_recorded_frame": 10, "duration_samples": 300_000},
            "s": {"start_first_recorded_frame": 20, "duration_samples": 301_000}}  # fmt: skip
    with pytest.raises(InputError, match="more than clock drift"):
        crop_plans(info, DEVICES, "both", name="info.json")
    info["s"]["duration_samples"] = 300_010
    plans = crop_plans(info, DEVICES, "both")
    assert plans["s"].resample and plans["s"].mapping == "endpoints" and plans["m"].n_out == 300_000
    assert crop_plans(info, DEVICES, "m")["s"].start == 10


def test_crop_file_single_channel(tmp_path):
    x = np.arange(-5000, 5000, dtype=np.int16)
    with WavWriter(tmp_path / "in.wav", FS) as w:
        w.write(x)
    plans = crop_plans(
        {"m": {"start_first_recorded_frame": 100, "duration_samples": 5000}}, ["m"], "m"
    )
    crop_file(tmp_path / "in.wav", tmp_path / "out.wav", plans["m"])
    np.testing.assert_array_equal(_read(tmp_path / "out.wav"), x[100:5100])
    late = crop_plans(
        {"m": {"start_first_recorded_frame": 8000, "duration_samples": 5000}}, ["m"], "m"
    )["m"]
    with pytest.raises(InputError, match="the crop needs samples"):
        crop_file(tmp_path / "in.wav", tmp_path / "bad.wav", late)
    assert _listing(tmp_path) == ["in.wav", "out.wav"]
