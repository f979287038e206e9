"""Built-in USV detector: DAS output format, DAS segment semantics, robustness, simulated sessions."""

import datetime as dt
import json
import math
import tracemalloc

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from usvflow.io.atomic import InputError
from usvflow.usv.detect import (
    DetectParams,
    _Engine,
    detect,
    detect_array,
    detect_file,
    main_detect,
    min_call_s,
    postprocess,
    write_das_csv,
)
from usvflow.usv.score import (
    evaluate_simulated,
    match_intervals,
    read_intervals,
    score_intervals,
)

FS = 250_000


def _noise(rng, seconds, rms=20.0, fs=FS):
    return rng.standard_normal(int(seconds * fs)) * rms


def _sweep(seconds, f0, f1, fs=FS):
    """A Hann-windowed linear sweep f0 -> f1 of unit amplitude."""
    n = int(seconds * fs)
    t = np.arange(n) / fs
    return np.sin(2 * np.pi * (f0 * t + 0.5 * (f1 - f0) / seconds * t**2)) * np.hanning(n)


def _click(rng, seconds, fs=FS):
    """A broadband click: Gaussian-windowed sum of 40 random sinusoids (1–110 kHz), peak 1."""
    n = max(2, int(seconds * fs))
    t = np.arange(n) / fs
    s = sum(
        rng.uniform(0.5, 1) * np.sin(2 * np.pi * rng.uniform(1e3, 110e3) * t + rng.uniform(0, 6.3))
        for _ in range(40)
    )
    s = s * np.exp(-0.5 * ((t - t[-1] / 2) / (t[-1] / 6)) ** 2)
    return s / np.abs(s).max()


def _write_int16(path, x, fs=FS):
    y = np.clip(np.rint(x), -32768, 32767).astype(np.int16)
    sf.write(path, y, fs, subtype="PCM_16")
    return path


def _piece(n_total, t0, d, f0, f1, env, fs=FS):
    """A linear sweep f0 -> f1 of duration d starting at t0, amplitude env(t), in n_total samples."""
    x = np.zeros(n_total)
    n = int(d * fs)
    t = np.arange(n) / fs
    a = int(round(t0 * fs))
    x[a : a + n] = env(t) * np.sin(2 * np.pi * (f0 * t + 0.5 * (f1 - f0) / d * t**2))
    return x


def _ramped(amp, d, r=0.001):
    """Constant amplitude with raised-cosine onset/offset ramps of r seconds."""
    return lambda t: amp * (
        0.5 - 0.5 * np.cos(np.pi * np.clip(np.minimum(t / r, (d - t) / r), 0, 1))
    )


# ------------------------------------------------------------------------------------ semantics


def test_postprocess_das_semantics():
    # gaps shorter than fillgap are filled first, then short segments dropped
    segs = [(0.100, 0.103), (0.110, 0.113), (0.200, 0.203), (0.300, 0.340), (0.3549, 0.37)]
    out = postprocess(segs, segment_fillgap=0.015, segment_minlen=0.010)
    assert out == [(0.100, 0.113), (0.300, 0.37)]
    # a gap of exactly fillgap is not filled (strictly shorter)
    assert postprocess([(0.0, 0.02), (0.035, 0.06)], 0.015, 0.005) == [(0.0, 0.02), (0.035, 0.06)]
    assert postprocess([], 0.015, 0.005) == []


def test_single_call_timing_and_params():
    rng = np.random.default_rng(0)
    x = _noise(rng, 2.0)
    a, d = int(0.8 * FS), 0.040
    x[a : a + int(d * FS)] += 300 * _sweep(d, 55e3, 75e3)
    segs = detect(x, FS)
    assert len(segs) == 1
    ((s0, s1),) = segs
    # Hann envelope: the detected span lies within the call and covers most of it
    assert 0.8 - 0.003 <= s0 <= 0.8 + 0.010 and 0.84 - 0.010 <= s1 <= 0.84 + 0.003
    # a band that excludes the call: nothing
    assert detect(x, FS, {"f_lo_hz": 80e3}) == []
    with pytest.raises(ValueError, match="unknown"):
        DetectParams().updated(no_such=1)
    with pytest.raises(ValueError, match="odd"):
        detect(x, FS, {"smooth_frames": 2})


def test_short_and_silent_input():
    assert detect(np.zeros(100), FS) == []
    assert detect(np.zeros(FS), FS) == []
    assert detect(np.random.default_rng(1).standard_normal(3000), FS) == []


def test_streaming_is_block_invariant(tmp_path):
    rng = np.random.default_rng(2)
    x = _noise(rng, 4.0)
    for k in range(12):
        a = int((0.2 + 0.3 * k) * FS)
        f0, f1 = rng.uniform(40e3, 80e3), rng.uniform(40e3, 90e3)
        x[a : a + int(0.03 * FS)] += rng.uniform(60, 2000) * _sweep(0.03, f0, f1)
    ref = detect_array(x, FS, block_s=10.0)[0]
    assert len(ref) == 12
    for b in (0.013, 0.25, 1.7):
        assert detect_array(x, FS, block_s=b)[0] == ref
    # file path (int16, streamed in blocks) gives the same segments as the array
    wav = _write_int16(tmp_path / "a.wav", x)
    got = detect_file(wav, block_s=0.3)
    want = np.asarray(detect(np.rint(x).astype(np.int16).astype(np.float32), FS))
    np.testing.assert_allclose(got[["start_seconds", "stop_seconds"]].to_numpy(), want, atol=1e-9)


def test_multichannel_and_192k(tmp_path):
    rng = np.random.default_rng(3)
    fs = 192_000
    x = np.stack([_noise(rng, 1.5, fs=fs) for _ in range(3)], axis=1)
    n = int(0.03 * fs)
    x[int(0.5 * fs) : int(0.5 * fs) + n, 1] += 500 * _sweep(0.03, 50e3, 70e3, fs=fs)
    x[int(1.0 * fs) : int(1.0 * fs) + n, 2] += 500 * _sweep(0.03, 80e3, 60e3, fs=fs)
    wav = _write_int16(tmp_path / "mc.wav", x, fs)
    df = detect_file(wav)
    assert list(df.columns) == ["channel", "name", "start_seconds", "stop_seconds", "confidence"]
    assert df["channel"].tolist() == [1, 2]
    assert df.iloc[0]["start_seconds"] == pytest.approx(0.5, abs=0.01)
    assert df.iloc[1]["start_seconds"] == pytest.approx(1.0, abs=0.01)
    one = detect_file(wav, channel=2)
    assert one["channel"].tolist() == [2]
    with pytest.raises(InputError, match="out of range"):
        detect_file(wav, channel=3)
    # CLI naming: one CSV per channel, 1-based two-digit channel numbers
    paths = main_detect(wav, tmp_path / "out")
    assert [p.name for p in paths] == [f"mc_ch{c:02d}_annotations.csv" for c in (1, 2, 3)]
    assert [len(pd.read_csv(p, index_col=0)) for p in paths] == [0, 1, 1]
    # one channel chosen -> one CSV named like a mono file
    (p,) = main_detect(wav, tmp_path / "one.csv", channel=1)
    assert p.name == "one.csv" and len(pd.read_csv(p, index_col=0)) == 1


def test_low_sample_rate_rejected(tmp_path):
    wav = tmp_path / "audible.wav"
    sf.write(wav, np.zeros(48000, np.int16), 48000, subtype="PCM_16")
    with pytest.raises(InputError, match="192000"):
        detect_file(wav)
    with pytest.raises(InputError, match="not found"):
        detect_file(tmp_path / "missing.wav")


# ------------------------------------------------------------------------------------ DAS CSV


def test_das_csv_exact_format(tmp_path):
    p = write_das_csv([(0.5, 0.55), (1.25, 1.3125)], tmp_path / "x_annotations.csv")
    assert p.read_text() == ",name,start_seconds,stop_seconds\n0,USV,0.5,0.55\n1,USV,1.25,1.3125\n"
    back = pd.read_csv(p, index_col=0)
    assert list(back.columns) == ["name", "start_seconds", "stop_seconds"]
    assert back.index.tolist() == [0, 1] and back.index.name is None
    assert back["name"].tolist() == ["USV", "USV"]
    # nothing detected: the header only
    e = write_das_csv([], tmp_path / "empty_annotations.csv")
    assert e.read_text() == ",name,start_seconds,stop_seconds\n"
    assert len(pd.read_csv(e, index_col=0)) == 0
    # a detect_file frame (with its channel column) is written without it, reindexed from 0
    df = pd.DataFrame({"channel": [3, 3], "name": ["USV", "USV"], "start_seconds": [1.0, 2.0],
                       "stop_seconds": [1.1, 2.1]}, index=[7, 9])  # fmt: skip
    t = write_das_csv(df, tmp_path / "c.csv").read_text()
    assert (
        t.splitlines()[0] == ",name,start_seconds,stop_seconds"
        and t.splitlines()[1] == "0,USV,1.0,1.1"
    )
    assert sorted(q.name for q in tmp_path.iterdir()) == [
        "c.csv",
        "empty_annotations.csv",
        "x_annotations.csv",
    ]
    # read back by the scorer (DAS header)
    assert read_intervals(p).tolist() == [[0.5, 0.55], [1.25, 1.3125]]


def test_main_detect_mono_default_name(tmp_path):
    rng = np.random.default_rng(4)
    x = _noise(rng, 1.0)
    x[FS // 2 : FS // 2 + 7500] += 1000 * _sweep(0.03, 60e3, 70e3)
    wav = _write_int16(tmp_path / "m_250430_ch05_x.wav", x)
    (p,) = main_detect(wav)
    assert p == tmp_path / "m_250430_ch05_x_annotations.csv"
    back = pd.read_csv(p, index_col=0)
    assert len(back) == 1
    # the built-in detector adds its per-call confidence as a fourth column; DAS readers still work
    assert p.read_text().splitlines()[0] == ",name,start_seconds,stop_seconds,confidence"
    assert 0.5 <= back["confidence"].iloc[0] <= 1.0
    assert read_intervals(p).shape == (1, 2)


# ------------------------------------------------------------------------------------ robustness


@pytest.mark.parametrize("amp", [5.0, 100.0, 5000.0])
def test_stationary_tone_is_whitened_away(amp):
    rng = np.random.default_rng(5)
    x = _noise(rng, 6.0)
    t = np.arange(x.size) / FS
    x += amp * np.sin(2 * np.pi * 40e3 * t)
    x += (t > 3.0) * 0.5 * amp * np.sin(2 * np.pi * 62.5e3 * t)  # a band that switches on
    assert detect(x, FS) == []
    # a call on the tone's frequency is still found
    a = int(2.0 * FS)
    x[a : a + int(0.03 * FS)] += 4 * (amp + 100) * _sweep(0.03, 39e3, 41e3)
    segs = detect(x, FS)
    assert len(segs) == 1 and abs(segs[0][0] - 2.0) < 0.01


def test_dense_bout_of_constant_frequency_calls():
    """Flat 70-kHz calls of 70 ms every 100 ms (each bin occupied 70 % of the time for 3 s) at
    ~24 dB per-bin SNR are all found: such a bout is not a stationary line, and its bins' floor is
    not raised to the calls' level (with the median floor estimate and the line rule everywhere:
    0 of 30 found). A tone that never stops is still whitened away (test above)."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal(4 * FS) * 20.0
    t = np.arange(int(0.07 * FS)) / FS
    call = np.sqrt(10**2.4 * 192) / 128 * 20.0 * np.sin(2 * np.pi * 70e3 * t)
    starts = np.arange(0.5, 3.5, 0.1)
    for t0 in starts:
        a = int(round(t0 * FS))
        x[a : a + call.size] += call
    segs = detect(x, FS)
    hit = [any(s < t0 + 0.07 and e > t0 for s, e in segs) for t0 in starts]
    assert all(hit) and len(segs) == len(starts), (sum(hit), len(segs))


def test_clicks_rejected():
    rng = np.random.default_rng(6)
    x = _noise(rng, 8.0)
    for tc in np.sort(rng.uniform(0.1, 7.8, 60)):
        c = _click(rng, rng.uniform(1e-4, 1e-3))
        a = int(tc * FS)
        x[a : a + c.size] += rng.uniform(500, 20000) * c
    assert detect(x, FS) == []
    # a call next to clicks is found, once
    a = int(4.0 * FS)
    x[a : a + int(0.05 * FS)] += 400 * _sweep(0.05, 70e3, 50e3)
    c = _click(rng, 5e-4)
    x[a + 2000 : a + 2000 + c.size] += 15000 * c
    segs = detect(x, FS)
    assert len(segs) == 1 and abs(segs[0][0] - 4.0) < 0.01


def test_clipping_makes_no_detections(tmp_path):
    rng = np.random.default_rng(7)
    x = _noise(rng, 6.0)
    for k in range(5):  # loud low-frequency thumps, clipped at full scale
        a, n = int((k + 0.3) * FS), int(0.05 * FS)
        x[a : a + n] += (
            1e5 * np.sin(2 * np.pi * rng.uniform(200, 3000) * np.arange(n) / FS) * np.hanning(n)
        )
    for k in range(5):  # clipped broadband bursts
        a, n = int((k + 0.7) * FS), int(0.02 * FS)
        x[a : a + n] += rng.standard_normal(n) * 5e4
    x[int(5.5 * FS) : int(5.51 * FS)] = 40000  # a rail step
    wav = _write_int16(tmp_path / "clip.wav", x)
    assert len(detect_file(wav)) == 0
    # a loud call that clips is still a call
    a, n = int(5.7 * FS), int(0.04 * FS)
    x[a : a + n] += 1e5 * _sweep(0.04, 55e3, 63e3)
    df = detect_file(_write_int16(tmp_path / "clip2.wav", x))
    assert len(df) == 1 and df.iloc[0]["start_seconds"] == pytest.approx(5.7, abs=0.01)


def test_memory_does_not_grow_with_length(tmp_path):
    rng = np.random.default_rng(8)
    peaks = []
    for seconds in (4, 16):
        wav = _write_int16(tmp_path / f"{seconds}.wav", _noise(rng, seconds))
        tracemalloc.start()
        detect_file(wav)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] < 1.3 * peaks[0] + 2e6, peaks


# ------------------------------------------------------------------------------------ scoring


def test_matching_greedy_best_overlap_first():
    lab = [(0.0, 1.0), (1.1, 1.2)]
    det = [(0.9, 1.15), (0.0, 0.5)]
    # det 0 overlaps label 0 by 0.1 and label 1 by 0.05; det 1 overlaps label 0 by 0.5 -> taken first
    assert match_intervals(det, lab) == [(1, 0), (0, 1)]
    s = score_intervals(det, lab)
    assert (s.tp, s.precision, s.recall, s.f1) == (2, 1.0, 1.0, 1.0)
    assert s.tp_iou == 0  # best IoU is det 1 / label 0: 0.5 / 1.0 = 0.5, not > 0.5
    s2 = score_intervals([(0.0, 0.6)], [(0.0, 1.0)])
    assert (
        s2.tp_iou == 1
        and s2.median_onset_error_s == 0.0
        and s2.median_offset_error_s == pytest.approx(-0.4)
    )
    empty = score_intervals([], [])
    assert (empty.precision, empty.recall) == (1.0, 1.0)
    assert score_intervals([(0, 1)], []).precision == 0.0


def test_read_intervals_formats(tmp_path):
    (tmp_path / "a.csv").write_text('"0,0775","0,0811"\n"1,0703","1,1021"\n')
    assert read_intervals(tmp_path / "a.csv").tolist() == [[0.0775, 0.0811], [1.0703, 1.1021]]
    (tmp_path / "b.csv").write_text("1.5,1.6\n0.1,0.2\n\n")
    assert read_intervals(tmp_path / "b.csv").tolist() == [[0.1, 0.2], [1.5, 1.6]]
    (tmp_path / "c.csv").write_text(
        ",name,start_seconds,stop_seconds\n0,USV,0.1,0.2\n1,noise,0.3,0.4\n2,USV,,\n"
    )
    assert read_intervals(tmp_path / "c.csv").tolist() == [[0.1, 0.2]]
    (tmp_path / "d.csv").write_text("onset;offset\n0,5;0,6\n")
    assert read_intervals(tmp_path / "d.csv").tolist() == [[0.5, 0.6]]
    (tmp_path / "e.csv").write_text("x,y\n1,2\n")
    with pytest.raises(InputError, match="start/stop"):
        read_intervals(tmp_path / "e.csv")
    (tmp_path / "f.csv").write_text("2,1\n")
    with pytest.raises(InputError, match="stop < start"):
        read_intervals(tmp_path / "f.csv")


# ------------------------------------------------------------------------------------ simulated


@pytest.fixture(scope="module")
def sim_session(tmp_path_factory):
    from usvflow.simulate.audio import write_avisoft
    from usvflow.simulate.timeline import make_timeline

    root = tmp_path_factory.mktemp("sim_usv")
    rng = np.random.default_rng(11)
    tl = make_timeline(rng, 2.5, ["21372315", "21241563"])
    truth = write_avisoft(root, tl, rng, start_datetime=dt.datetime(2025, 4, 30, 14, 50, 17),
                          calls_per_minute=600, clicks_per_minute=300)  # fmt: skip
    return root, json.loads(json.dumps(truth))


def test_simulated_session_per_channel(sim_session):
    root, truth = sim_session
    assert len(truth["usvs"]) >= 15 and len(truth["clicks"]) >= 10
    df, s = evaluate_simulated(root, truth)
    iou = s.pop("iou")
    print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in s.items()}))
    assert iou.size == s["tp"] and np.median(iou) >= 0.9 and np.mean(iou > 0.5) >= 0.98
    assert len(df) == 24
    assert s["n_detectable"] >= 300
    assert s["precision"] >= 0.95 and s["recall"] >= 0.95
    # edges trimmed of what the score's smoothing adds: within a millisecond (untrimmed: ~1.3 ms)
    assert abs(s["median_onset_error_s"]) <= 0.001 and abs(s["median_offset_error_s"]) <= 0.001
    assert s["median_abs_onset_error_s"] <= 0.001 and s["median_abs_offset_error_s"] <= 0.001
    assert s["fp_clicks"] == 0 and s["n_clicks"] > 0
    assert math.isfinite(s["median_onset_error_s"])


def test_digital_silence_with_rounding_speckle_is_not_a_call(tmp_path):
    """After HPSS a channel is ~0 LSB between calls, with sparse +-1..2 LSB residue: the noise floor
    may not fall below floor_lsb (4 LSB rms), or the residue stands 'above the noise'."""
    import soundfile as sf

    from usvflow.usv.detect import detect_file

    fs = 250_000
    rng = np.random.default_rng(5)
    n = 3 * fs
    x = np.zeros(n)
    # sparse, tonal-looking residue: short low-level snippets of random narrow-band noise
    t = np.arange(n) / fs
    for a in rng.integers(0, n - 2000, 600):
        m = int(rng.integers(200, 2000))
        x[a : a + m] += 1.5 * np.sin(2 * np.pi * rng.uniform(35e3, 110e3) * t[:m]) * np.hanning(m)
    calls = [(0.5, 0.04, 60e3), (1.5, 0.06, 80e3), (2.4, 0.03, 45e3)]
    for t0, d, f in calls:
        a, m = int(t0 * fs), int(d * fs)
        x[a : a + m] += 800 * np.sin(2 * np.pi * f * t[:m]) * np.hanning(m)
    wav = tmp_path / "hpss_like.wav"
    sf.write(wav, np.round(x).astype(np.int16), fs, subtype="PCM_16")
    got = detect_file(wav)
    assert len(got) == 3
    np.testing.assert_allclose(got["start_seconds"], [c[0] for c in calls], atol=0.01)
    # without the floor the residue is detected
    assert len(detect_file(wav, {"floor_lsb": 0.1})) > 3


def test_no_call_session_with_tones_and_clicks_yields_nothing(tmp_path):
    """A simulated session without calls (tones on some channels, clicks), through the workflow's own
    HPSS + 30-kHz FIR chain: the harmonic residue of a click is a ~5-ms narrow-band speck (often at a
    tone's frequency) that only the window-derived minimum length rejects."""
    from usvflow.audio.highpass import design_sinc, fir_filter_array
    from usvflow.audio.hpss import hpss_chunked
    from usvflow.simulate.audio import write_avisoft
    from usvflow.simulate.timeline import make_timeline

    rng = np.random.default_rng(0)
    tl = make_timeline(rng, 4.0, ["21372315", "21241563"])
    # 5x the simulator's click rate
    truth = write_avisoft(tmp_path, tl, rng, start_datetime=dt.datetime(2025, 4, 30, 14, 50, 17),
                          calls_per_minute=0, clicks_per_minute=30)  # fmt: skip
    assert not truth["usvs"] and len(truth["clicks"]) >= 3
    tone_ch = sorted(i for i, c in enumerate(truth["noise"]["m"]) if c["tones"])
    chans = sorted(set(tone_ch) | {0, 4, 6, 8, 11})
    import soundfile as sf

    files = sorted((tmp_path / "audio" / "original_mc").glob("m_*.wav"))
    x = np.concatenate([sf.read(f, dtype="int16", always_2d=True)[0] for f in files])
    taps = design_sinc(FS, hp_hz=30000, lp_hz=0, atten_db=122)
    y = np.stack(
        [np.round(fir_filter_array(hpss_chunked(x[:, c].astype(np.float32)), taps)) for c in chans],
        1,
    )
    p = DetectParams(clip_level=32767, min_noise_rms=4.0)
    got = detect_array(y, FS, p)
    # channels without a tone: nothing
    assert [g for c, g in zip(chans, got) if c not in tone_ch] == [
        [] for c in chans if c not in tone_ch
    ]
    # tone channels: the tone's HPSS specks are no calls (stationary-line rule); what remains lies
    # on a click (here a 12-ms residue of an acoustic and an electrical click 11 ms apart)
    clicks = [c["t_s"] for c in truth["clicks"]]
    rest = [s for c, g in zip(chans, got) if c in tone_ch for s in g]
    assert len(rest) <= 1
    assert all(min(abs(a - t) for t in clicks) < 0.015 for a, _ in rest)
    # the candidates before the minimum length: click residue, no longer than a sub-window sound
    eng = _Engine(FS, len(chans), p)
    eng.feed(y)
    eng.finish()
    cand = [b - a for c, ss in zip(chans, eng.segments) if c not in tone_ch for a, b, *_ in ss]
    assert len(cand) >= 3 and max(cand) < eng.min_frames
    assert 0.007 < min_call_s(FS) < 0.0075


# ------------------------------------------------------------------------------- gaps and edges


def test_faded_stretch_is_bridged_distinct_calls_are_not():
    """A call whose middle 30 ms fades to ~9 dB per-bin SNR breaks the continuation threshold; the
    contour through the gap joins its two pieces. Two calls 25 ms apart whose frequencies meet, or
    with a broadband burst between them, stay two."""
    rng0 = np.random.default_rng(0)
    for seed in range(5):
        rng = np.random.default_rng(seed)
        d = 0.100

        def env(t, d=d):
            return _ramped(300.0, d)(t) * np.where((t > 0.035) & (t < 0.065), 6.0 / 300.0, 1.0)

        x = rng.standard_normal(FS) * 20 + _piece(FS, 0.4, d, 60e3, 70e3, env)
        assert len(detect(x, FS)) == 1
        # gap bridging off (fillgap_max_s = segment_fillgap): the call comes out in two pieces
        assert len(detect(x, FS, {"fillgap_max_s": 0.015})) == 2

        y = rng.standard_normal(FS) * 20
        y += _piece(FS, 0.4, 0.04, 60e3, 70e3, _ramped(300.0, 0.04))
        y += _piece(FS, 0.465, 0.04, 70e3, 80e3, _ramped(300.0, 0.04))
        assert len(detect(y, FS)) == 2
        burst = np.zeros(FS)
        a = int(0.450 * FS)
        burst[a : a + 250] = 2000 * _click(rng0, 0.001)
        assert len(detect(y + burst, FS)) == 2


def test_edges_follow_the_call_not_the_smoothing():
    """Onset/offset of calls with 1-ms ramps at 3-150x the noise rms: median errors within 0.7 ms
    (the 3-frame score smoothing alone would widen every call by about a frame on each side)."""
    on, off = [], []
    for seed in range(6):
        for amp in (60.0, 300.0, 3000.0):
            rng = np.random.default_rng(seed)
            d = 0.03 + 0.005 * seed
            t0 = 0.3 + 0.0003 * seed
            x = rng.standard_normal(FS) * 20 + _piece(FS, t0, d, 50e3, 70e3, _ramped(amp, d))
            (seg,) = detect(x, FS)
            on.append(seg[0] - t0)
            off.append(seg[1] - (t0 + int(d * FS) / FS))
    assert abs(np.median(on)) <= 0.0007 and abs(np.median(off)) <= 0.0007
    assert max(map(abs, on + off)) <= 0.0025


def _per_block(eng, x, grab):
    """Run ``eng`` on ``x`` and return ``grab()`` after each block's features are computed."""
    out = []
    orig = eng._features

    def spy(f0, P, clipped, floor, nxt):
        orig(f0, P, clipped, floor, nxt)
        out.append(grab())

    eng._features = spy
    eng.feed(x)
    eng.finish()
    return out


def _fading(amp, d, plateau, db_per_ms):
    """``_ramped`` whose level falls by ``db_per_ms`` after ``plateau`` seconds."""
    return lambda t: _ramped(amp, d)(t) * 10 ** (
        -np.clip(t - plateau, 0, None) * 1e3 * db_per_ms / 20
    )


def test_edges_extend_along_a_fading_contour():
    """A faint 70-ms sweep (2x the noise rms) whose last 40 ms fade by 20 dB: the frames above the
    continuation threshold end ~8 ms early; followed along its contour, the end lies within ~2 ms
    (median over 6 noise seeds). Loud calls' edges do not move."""
    off, off_plain = [], []
    for seed in range(6):
        rng = np.random.default_rng(seed)
        d, t0 = 0.07, 0.3
        x = rng.standard_normal(FS) * 20 + _piece(
            FS, t0, d, 50e3, 60e3, _fading(40.0, d, 0.03, 0.5)
        )
        ((a, b),) = detect(x, FS)
        ((a0, b0),) = detect(x, FS, {"edge_max_s": 0})
        assert a == pytest.approx(a0, abs=1.1e-3)
        off.append(b - (t0 + d))
        off_plain.append(b0 - (t0 + d))
    assert np.median(off_plain) < -0.006
    assert -0.003 < np.median(off) <= 0.001
    for amp in (200.0, 3000.0):
        x = np.random.default_rng(9).standard_normal(FS) * 20
        x += _piece(FS, 0.3, 0.04, 50e3, 60e3, _ramped(amp, 0.04))
        assert detect(x, FS) == detect(x, FS, {"edge_max_s": 0})


def test_edge_walk_on_white_noise():
    """The edge walk from a random bin of white noise moves an edge by less than 0.3 frames on
    average (docs: 0.18) and by 3 frames or more in under 3 % of walks."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal(12 * FS).astype(np.float32) * 20
    eng = _Engine(FS, 1, DetectParams())
    blocks = _per_block(eng, x, lambda: eng._S[0].copy())
    S = np.concatenate(blocks[3:-3])  # two-sided noise floor
    n = eng.edge_frames
    ks = []
    for g in rng.integers(0, S.shape[0] - n, 3000):
        ks.append(eng._edge_frames_of(S[g : g + n], int(rng.integers(5, eng.nb - 5)), 20.0))
    ks = np.asarray(ks)
    assert ks.mean() < 0.3 and np.mean(ks >= 3) < 0.03


def test_edge_extensions_of_neighbours_never_overlap():
    """Two calls 30 ms apart at 50 and 80 kHz whose faint parts (~6 dB per bin) overlap in time:
    the first's faint tail and the second's faint head. Each edge follows its own contour towards
    the other; followed in full they would overlap, so they meet halfway and stay two calls."""
    for seed in range(3):
        rng = np.random.default_rng(seed)
        x = rng.standard_normal(FS) * 20
        x += _piece(FS, 0.30, 0.07, 50e3, 52e3,
                    lambda t: np.where(t < 0.03, 40.0, 5.0) * _ramped(1.0, 0.07)(t))  # fmt: skip
        x += _piece(FS, 0.34, 0.055, 80e3, 82e3,
                    lambda t: np.where(t > 0.025, 40.0, 5.0) * _ramped(1.0, 0.055)(t))  # fmt: skip
        segs = detect(x, FS)
        plain = detect(x, FS, {"edge_max_s": 0})
        assert len(segs) == len(plain) == 2
        assert segs[0][1] == pytest.approx(segs[1][0], abs=1e-9)  # they met
        assert plain[0][1] < segs[0][1] and segs[1][0] < plain[1][0]


def test_path_noise_statistics_of_the_bridge():
    """The bridge's noise model: on white noise, the path score (ridge-filtered, smoothed whitened
    power at a bin over its frame's band median) has mean _PATH_NOISE_MEAN and n-frame means a
    standard deviation of about _PATH_NOISE_STD / sqrt(n); no bridge is built across noise."""
    from usvflow.usv.detect import _PATH_NOISE_MEAN, _PATH_NOISE_STD

    rng = np.random.default_rng(3)
    x = rng.standard_normal(20 * FS).astype(np.float32) * 20
    eng = _Engine(FS, 1, DetectParams())
    ratios = _per_block(eng, x, lambda: eng._T[0] / np.median(eng._T[0], axis=1, keepdims=True))
    c = np.concatenate(ratios[3:-3])  # blocks with a two-sided noise floor
    assert abs(c.mean() - _PATH_NOISE_MEAN) < 0.02
    n = 16
    m = c[: c.shape[0] // n * n].reshape(-1, n, c.shape[1]).mean(axis=1)
    assert abs(m.std() * math.sqrt(n) - _PATH_NOISE_STD) < 0.06
    # the bridge threshold over 16 frames (a ~20-ms gap) lies beyond 99.9 % of noise paths
    assert np.mean(m >= _PATH_NOISE_MEAN + 4.0 * _PATH_NOISE_STD / math.sqrt(n)) < 1e-3


def test_hpss_tone_channel_specks_are_not_calls():
    """After HPSS a weak stationary tone's level fluctuates for several frames at a time: specks at
    the tone's frequency. A frame whose ridge sits on a stationary line counts line_margin_db less
    towards starting a call: none of them is reported (without the margin: ~9 per channel-minute)."""
    from usvflow.usv.protocol import noise_rate

    r = noise_rate(1, 10.0, seed0=9102, hpss_channels=2)
    assert r["per_channel_minute"] == 0.0 and r["per_channel_minute_hpss"] == 0.0
    r0 = noise_rate(1, 10.0, seed0=9102, hpss_channels=2, params={"line_margin_db": 0.0})
    assert r0["per_channel_minute_hpss"] > 3.0


def test_dense_calls_through_hpss_stay_apart(tmp_path):
    """Through the workflow's HPSS + FIR, the silence between calls is digital silence under the
    floor's lower bound: it must not read as a contour that bridges calls 20-40 ms apart (it did
    when the path's reference was the frame's band median alone: recall 0.75)."""
    from usvflow.usv.protocol import _simulate, score_hpss_channels

    truth = _simulate(tmp_path / "s", 5, 3.0, {"calls_per_minute": 600.0, "clicks_per_minute": 6.0})
    r = score_hpss_channels(tmp_path / "s", truth, [0, 1, 2])
    assert r["n_detectable"] >= 100
    assert r["recall"] >= 0.99 and r["precision"] >= 0.98, r
