"""Synthetic USV calls and the simulated Avisoft multichannel recordings."""

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import butter, correlate, hilbert, sosfiltfilt, stft

from usvflow.simulate.audio import write_avisoft
from usvflow.simulate.calls import CALL_TYPES, draw_call, waveform
from usvflow.simulate.timeline import make_timeline

SERIALS = ["21372315", "21241563", "22085397"]
START = dt.datetime(2025, 4, 30, 14, 50, 17)
FS = 250_000


# ---------------------------------------------------------------------------------------- calls


def test_call_contours_in_range():
    rng = np.random.default_rng(0)
    calls = [draw_call(rng) for _ in range(600)]
    assert {c.call_type for c in calls} == set(CALL_TYPES)
    for c in calls:
        assert 0.005 <= c.duration_s <= 0.200
        assert 30e3 <= c.f_min_hz <= c.f_mean_hz <= c.f_max_hz <= 110e3
        assert c.knot_t[0] == 0.0 and c.knot_t[-1] == pytest.approx(c.duration_s)
    durs = {t: np.median([c.duration_s for c in calls if c.call_type == t]) for t in CALL_TYPES}
    assert durs["flat"] < durs["trill"] and durs["flat"] < durs["complex"]
    trills = [c for c in calls if c.call_type == "trill"]
    assert all(
        50 <= c.params["rate_hz"] <= 200 and 5e3 <= c.params["depth_hz"] <= 20e3 for c in trills
    )
    steps = [c for c in calls if c.call_type == "step"]
    for c in steps:
        ts = c.params["t_step_s"]
        jump = c.frequency(ts + 1e-12) - c.frequency(ts - 1e-12)
        assert 10e3 <= abs(jump) <= 31e3


def test_waveform_zero_outside_and_phase_exact():
    c = draw_call(np.random.default_rng(1), "flat")
    t = np.array([-1e-6, 0.0, c.duration_s / 2, c.duration_s, c.duration_s + 1e-6])
    w = waveform(c, t)
    assert w[0] == 0 and w[-1] == 0 and w[1] == 0
    # phase is the exact integral of the contour: its derivative is f
    t = np.linspace(0.001, c.duration_s - 0.001, 50)
    h = 1e-7
    f_num = (c.cycles(t + h) - c.cycles(t - h)) / (2 * h)
    np.testing.assert_allclose(f_num, c.frequency(t), rtol=0, atol=1.0)
    # arbitrary (shifted, non-uniform) times: same signal
    t2 = np.sort(np.random.default_rng(2).uniform(0, c.duration_s, 1000))
    assert np.allclose(waveform(c, t2).reshape(10, 100), waveform(c, t2.reshape(10, 100)))


@pytest.mark.parametrize("call_type", CALL_TYPES)
def test_stft_peak_follows_contour(call_type):
    rng = np.random.default_rng(100 + CALL_TYPES.index(call_type))
    nper = 128
    for _ in range(4):
        c = draw_call(rng, call_type)
        x = waveform(c, np.arange(int(c.duration_s * FS) + 1) / FS)
        f, ts, Z = stft(
            x, FS, nperseg=nper, noverlap=nper - 16, boundary=None, padded=False, nfft=1024
        )
        P = np.abs(Z)
        # nearly all energy inside the contour's band (+/- window leakage)
        band = (f >= c.f_min_hz - 8e3) & (f <= c.f_max_hz + 8e3)
        harm = (
            (f >= 2 * c.f_min_hz - 8e3) & (f <= 2 * c.f_max_hz + 8e3)
            if c.harmonic
            else np.zeros_like(band)
        )
        assert (P[band | harm] ** 2).sum() / (P**2).sum() > 0.98
        k = np.clip(P.argmax(0), 1, len(f) - 2)
        cols = np.arange(len(k))
        a, b, d = (np.log(P[k + o, cols] + 1e-30) for o in (-1, 0, 1))
        peak = f[k] + 0.5 * (a - d) / (a - 2 * b + d) * (f[1] - f[0])
        ok = (ts > c.ramp_on_s + nper / FS) & (ts < c.duration_s - c.ramp_off_s - nper / FS)
        if call_type == "step":
            ok &= np.abs(ts - c.params["t_step_s"]) > nper / FS
        if ok.any():
            assert np.abs(peak - c.frequency(ts))[ok].max() < 1e3


# ------------------------------------------------------------------------------------- sessions


def _lsb(files, ch):
    return np.concatenate([sf.read(f, dtype="int16")[0][:, ch - 1] & 1 for f in files])


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    root = tmp_path_factory.mktemp("sess")
    rng = np.random.default_rng(11)
    tl = make_timeline(rng, 1.5, SERIALS)
    truth = write_avisoft(
        root, tl, rng, START, calls_per_minute=600, file_seconds=2.0, clicks_per_minute=60
    )
    return root, tl, truth


def _files(root, truth, d):
    return [root / "audio" / "original_mc" / n for n in truth["devices"][d]["files"]]


def test_files_layout(session):
    root, tl, truth = session
    assert (root / "audio" / "original").is_dir() and not any(
        (root / "audio" / "original").iterdir()
    )
    on_disk = sorted(p.name for p in (root / "audio" / "original_mc").iterdir())
    assert on_disk == sorted(truth["devices"]["m"]["files"] + truth["devices"]["s"]["files"])
    for d in ("m", "s"):
        files = _files(root, truth, d)
        assert len(files) >= 2
        names = [f.name for f in files]
        assert names == sorted(names)
        clk = tl.audio[d]
        for i, f in enumerate(files):
            info = sf.info(f)
            assert (info.channels, info.samplerate, info.subtype, info.format) == (
                12,
                250000,
                "PCM_16",
                "WAV",
            )
            if i < len(files) - 1:
                assert info.frames == 500_000
            stamp = (START + dt.timedelta(seconds=clk.start_s + i * 500_000 / clk.rate)).strftime(
                "%y%m%d%H%M%S"
            )
            assert f.name == f"{d}_{stamp}.wav"
        assert sum(sf.info(f).frames for f in files) == truth["devices"][d]["n_samples"]
        assert truth["devices"][d]["n_samples"] == int(tl.audio_duration_s[d] * clk.rate)
    json.dumps(truth)  # JSON-able


def _rising(lsb):
    return np.flatnonzero(np.diff(lsb.astype(np.int8)) > 0) + 1


@pytest.mark.parametrize("d", ["m", "s"])
def test_triggerbox_lsb_reproduces_crop(session, d):
    root, tl, truth = session
    rising = _rising(_lsb(_files(root, truth, d), 4))
    gaps = np.diff(rising)
    hop = int(np.argmax(gaps)) + 1
    ct = truth["crop"][d]
    assert (
        rising[hop]
        == ct["start_first_recorded_frame"]
        == tl.crop_truth(d)["start_first_recorded_frame"]
    )
    assert rising[hop + tl.n_frames_least] == ct["end_last_recorded_frame"]
    assert gaps.max() == ct["largest_break_duration"]
    # every pulse exactly where the device clock puts it; the s clock runs at its ppm
    clk = tl.audio[d]
    expect = clk.first_sample_at_or_after(tl.triggerbox_on_s)
    np.testing.assert_array_equal(rising, expect)
    slope = np.polyfit(tl.triggerbox_on_s, rising, 1)[0]
    assert (slope / 250_000 - 1) * 1e6 == pytest.approx(clk.ppm, abs=2.0)
    # the pulse width is 2 ms on the device's clock
    lsb = _lsb(_files(root, truth, d), 4)
    falling = np.flatnonzero(np.diff(lsb.astype(np.int8)) < 0) + 1
    np.testing.assert_array_equal(
        falling - rising, clk.first_sample_at_or_after(tl.triggerbox_on_s + 0.002) - expect
    )


def test_s_drift_visible(session):
    _, tl, _ = session
    assert abs(tl.audio["s"].ppm) >= 20
    # across the session the s device gains/loses pulses-worth of samples relative to nominal
    on = tl.triggerbox_on_s
    km = tl.audio["m"].first_sample_at_or_after(on)
    ks = tl.audio["s"].first_sample_at_or_after(on)
    drift = (ks[-1] - ks[0]) - (km[-1] - km[0])
    assert drift == pytest.approx((on[-1] - on[0]) * 250_000 * tl.audio["s"].ppm * 1e-6, abs=2.0)


@pytest.mark.parametrize("d", ["m", "s"])
def test_led_lsb_edges(session, d):
    root, tl, truth = session
    lsb = _lsb(_files(root, truth, d), 2)
    clk = tl.audio[d]
    n = lsb.size
    k_on = clk.first_sample_at_or_after(tl.led_on_s)
    k_off = clk.first_sample_at_or_after(tl.led_off_s)
    np.testing.assert_array_equal(_rising(lsb), k_on[(k_on >= 1) & (k_on < n)])
    assert lsb[0] == tl.led_is_on(clk.time_of(0))
    assert np.array_equal(
        lsb[k_off[(k_off > 0) & (k_off < n)]], np.zeros(((k_off > 0) & (k_off < n)).sum())
    )


def test_other_lsbs_random(session):
    root, _, truth = session
    x = sf.read(_files(root, truth, "m")[0], dtype="int16", frames=200_000)[0]
    for ch in (1, 3, 5, 12):
        assert 0.45 < np.mean(x[:, ch - 1] & 1) < 0.55


def test_usv_truth(session):
    _, tl, truth = session
    usvs = truth["usvs"]
    assert len(usvs) >= 8
    win0, win1 = truth["video_window_s"]
    assert win0 == tl.triggerbox_on_s[tl.first_frame_pulse]
    for a, b in zip(usvs, usvs[1:]):
        assert b["t_start_s"] >= a["t_stop_s"] + 0.02 - 1e-12
    for u in usvs:
        inside = u["t_start_s"] >= win0 and u["t_stop_s"] <= win1
        outside = u["t_stop_s"] <= win0 or u["t_start_s"] >= win1
        assert inside != outside and u["outside_video"] == outside
        assert u["t_start_video_s"] == pytest.approx(u["t_start_s"] - win0)
        assert u["emitter"] == truth["track_names"][u["emitter_index"]]
        assert 30e3 <= u["f_min_hz"] <= u["f_max_hz"] <= 110e3
        assert max(u["mic_amp"]) == pytest.approx(u["peak_amp"])
        mic = np.array(truth["mic_positions_m"])
        d = np.linalg.norm(mic - np.array(u["source_xyz_m"]), axis=1)
        np.testing.assert_allclose(u["mic_delay_s"], d / 343.0)
    assert sum(not u["outside_video"] for u in usvs) >= 5


@pytest.mark.parametrize("d", ["m", "s"])
def test_usv_arrival_delay_between_mics(session, d):
    """Strong FM calls reach the farthest mic of a device later by the geometric delay (to the sample).

    The lag is the peak of the cross-correlation envelope (analytic signals), which, for calls with
    a wide frequency sweep, is sharp and free of the carrier's 4-sample ambiguity.
    """
    root, tl, truth = session
    clk = tl.audio[d]
    di = "ms".index(d)
    x = np.concatenate([sf.read(f, dtype="int16")[0] for f in _files(root, truth, d)]).astype(
        np.float64
    )
    sos = butter(8, 25e3, "highpass", fs=FS, output="sos")
    checked = 0
    for u in truth["usvs"]:
        if (
            u["type"] in ("flat", "step")
            or u["f_max_hz"] - u["f_min_hz"] < 6e3
            or u["peak_amp"] < 1000
        ):
            continue
        if any(u["t_start_s"] - 0.005 < c["t_s"] < u["t_stop_s"] + 0.005 for c in truth["clicks"]):
            continue
        delays = np.array(u["mic_delay_s"][12 * di : 12 * di + 12])
        near, far = int(np.argmin(delays)), int(np.argmax(delays))
        a = clk.first_sample_at_or_after(u["t_start_s"]) - 200
        b = clk.first_sample_at_or_after(u["t_stop_s"] + delays.max()) + 200
        seg = hilbert(sosfiltfilt(sos, x[a:b][:, [near, far]], axis=0), axis=0)
        xc = np.abs(correlate(seg[:, 1], seg[:, 0], mode="full"))
        i = int(np.argmax(xc))
        frac = 0.5 * (xc[i - 1] - xc[i + 1]) / (xc[i - 1] - 2 * xc[i] + xc[i + 1])
        measured = i - (len(seg) - 1) + frac
        expected = (delays[far] - delays[near]) * clk.rate
        assert expected > 20  # the geometry gives a real delay
        assert abs(measured - expected) < 2.0, (u["id"], measured, expected)
        checked += 1
    assert checked >= 3


def test_deterministic(tmp_path):
    def run(sub):
        rng = np.random.default_rng(7)
        tl = make_timeline(
            rng, 0.2, SERIALS[:2], preroll_s=0.02, break_s=0.1, postroll_frames=5, tail_s=0.05
        )
        truth = write_avisoft(
            tmp_path / sub, tl, rng, START, calls_per_minute=300, file_seconds=1.0
        )
        return truth, sorted((tmp_path / sub / "audio" / "original_mc").iterdir())

    t1, f1 = run("a")
    t2, f2 = run("b")
    assert json.dumps(t1) == json.dumps(t2)
    assert [f.name for f in f1] == [f.name for f in f2]
    for a, b in zip(f1, f2):
        assert Path(a).read_bytes() == Path(b).read_bytes()
    with pytest.raises(ValueError):
        write_avisoft(tmp_path / "c", make_timeline(np.random.default_rng(1), 0.2, SERIALS[:2]),
                      np.random.default_rng(1), START, file_seconds=0.5)  # fmt: skip
