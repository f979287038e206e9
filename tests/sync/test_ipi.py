"""IPIs of the LED train in video, audio LSB and NI-DAQ, and the alignment with the Arduino log."""

import numpy as np
import pytest

from usvflow.audio.wav import write_wav
from usvflow.io.atomic import InputError
from usvflow.simulate.syncfiles import write_nidq
from usvflow.simulate.timeline import make_timeline
from usvflow.sync.ipi import (
    audio_ipis,
    filter_events_by_duration,
    find_events,
    lsb_edges,
    match_to_arduino,
    nidq_ipis,
    pair_events,
    threshold_sweep,
    validate_sequence,
    video_ipi_candidates,
)

SERIALS = ["21372315", "21372316"]


def _px(on: np.ndarray, covered=()) -> np.ndarray:
    """(N, 3, 3) intensities: 230 on, 30 off; LEDs in ``covered`` always 20."""
    px = np.where(on[:, None, None], 230, 30).repeat(3, axis=1).repeat(3, axis=2).astype(np.uint8)
    for i in covered:
        px[:, i, :] = 20
    return px


def _train(segments):
    """Boolean LED state from (state, frames) segments."""
    return np.concatenate([np.full(n, s, bool) for s, n in segments])


def test_threshold_sweep_is_the_originals():
    t = threshold_sweep(1.0)
    assert t[0] == 0.99 and t[-1] == 0.2 and len(t) == 80


def test_events_are_the_first_frame_of_the_new_state():
    on = _train([(1, 10), (0, 50), (1, 40), (0, 45), (1, 10)])
    b = _px(on).astype(float).mean(axis=(1, 2))
    off, onf = find_events(b, 0.5)
    assert off.tolist() == [10, 100] and onf.tolist() == [60, 145]


def test_glitches_and_truncated_ipis_are_dropped():
    # starts inside an IPI (leading ON dropped), a 3-frame flash inside an IPI (glitch), ends inside one
    on = _train([(0, 30), (1, 40), (0, 60), (1, 3), (0, 60), (1, 40), (0, 100), (1, 40), (0, 20)])
    cands = list(video_ipi_candidates(_px(on), 150.0, min_duration=35))
    c = cands[0]
    assert c.how == "median"
    assert c.start_frames.tolist() == [70, 233] and c.ipi_frames.tolist() == [123, 100]
    assert c.ipi_ms.tolist() == [round(123 * 1000 / 150), round(100 * 1000 / 150)]


def test_filter_and_validate():
    f, k = filter_events_by_duration(
        np.array([10, 12, 60, 61, 100]), np.array([1, -1, 1, 1, -1], np.int8), 35
    )
    assert f.tolist() == [60, 61, 100]
    f, k = validate_sequence(f, k)
    assert f.tolist() == [60, 100] and k.tolist() == [1, -1]
    assert [a.tolist() for a in pair_events(f, k)] == [[60], [100]]


def test_max_brightness_fallback_when_two_leds_are_covered():
    on = _train([(1, 40), (0, 80), (1, 40), (0, 120), (1, 40)])
    cands = list(video_ipi_candidates(_px(on, covered=(0, 1)), 150.0))
    assert cands and all(c.how == "max" for c in cands)
    assert cands[0].start_frames.tolist() == [40, 160]


def test_lsb_edges_stream_equals_whole_array():
    rng = np.random.default_rng(0)
    x = (rng.integers(-1000, 1000, 100_000) & ~1).astype(np.int16)
    lsb = np.zeros(len(x), np.int16)
    for a, b in [(5, 900), (20_000, 20_500), (65_530, 65_540), (99_000, 100_000)]:
        lsb[a:b] = 1
    x |= lsb
    whole = lsb_edges([x])
    blocks = lsb_edges(x[k : k + 4096] for k in range(0, len(x), 4096))
    for a, b in zip(whole[:2], blocks[:2]):
        assert np.array_equal(a, b)
    assert whole[0].tolist() == [900, 20_500, 65_540] and whole[1].tolist() == [
        5,
        20_000,
        65_530,
        99_000,
    ]


def test_audio_ipis_from_wav(tmp_path):
    sr = 250_000
    x = np.random.default_rng(1).integers(-500, 500, sr).astype(np.int16) & ~np.int16(1)
    high = np.ones(sr, np.int16)
    high[10_000:60_000] = 0  # 200 ms off
    high[100_000:200_250] = 0  # 401 ms off
    high[240_000:] = 0  # ends off: incomplete
    write_wav(tmp_path / "a.wav", sr, x | high)
    a = audio_ipis(tmp_path / "a.wav", block=7777)
    assert a.start_samples.tolist() == [10_000, 100_000]
    assert np.allclose(a.ipi_ms, [200.0, 401.0])


def test_noise_lsb_is_an_error(tmp_path):
    sr = 250_000
    write_wav(
        tmp_path / "n.wav", sr, np.random.default_rng(2).integers(-500, 500, sr).astype(np.int16)
    )
    with pytest.raises(InputError, match="not the LED pulse train"):
        audio_ipis(tmp_path / "n.wav")


ARDUINO = np.random.default_rng(5).integers(250, 1500, 60)


def test_match_exact_subsequence():
    v = ARDUINO[17:29] + np.random.default_rng(0).integers(-6, 7, 12)
    m = match_to_arduino(v, ARDUINO)
    assert m.accepted and m.offset == 17 and m.n_matched == 12
    assert m.arduino_index.tolist() == list(range(17, 29))


def test_match_with_one_faulty_ipi_locates_it():
    v = ARDUINO[30:40].astype(float)
    v[4] -= 30.0  # a clock jump inside that IPI
    m = match_to_arduino(v, ARDUINO)
    assert m.accepted and m.offset == 30 and m.n_matched == 9
    assert np.flatnonzero(np.abs(m.diff_ms) > 12).tolist() == [4]


def test_match_overlapping_the_start_of_the_log():
    v = np.r_[[700, 1300, 455], ARDUINO[:6]]  # the log started 3 IPIs late
    m = match_to_arduino(v, ARDUINO)
    assert m.accepted and m.offset == -3 and m.arduino_index.tolist()[:4] == [-1, -1, -1, 0]


def test_match_nowhere_says_what_was_tried():
    other = np.random.default_rng(99).integers(250, 1500, 8)
    m = match_to_arduino(other, ARDUINO)
    assert not m.accepted and m.offset is None
    assert "nowhere" in m.reason and "tried 67 offsets" in m.reason


def test_match_ambiguous():
    a = np.r_[[300, 900, 1200, 500], [300, 900, 1200, 500], [700]]
    m = match_to_arduino([300, 900, 1200], a)
    assert not m.accepted and "ambiguous" in m.reason


def test_nidq_ipis_equal_the_simulated_train(tmp_path):
    tl = make_timeline(np.random.default_rng(3), 6.0, SERIALS)
    truth = write_nidq(tmp_path, tl, "run_g0_t0", np.random.default_rng(4))
    res = nidq_ipis(tmp_path / "run_g0_t0.nidq.bin", tl.n_frames_least, block=10_000)
    assert (
        res["frame0_sample"] == truth["frame0_sample"] and res["end_sample"] == truth["end_sample"]
    )
    rate = truth["rate"]
    # the IPIs that start and end inside the video window
    t0 = tl.triggerbox_on_s[tl.first_frame_pulse]
    t1 = tl.triggerbox_on_s[tl.first_frame_pulse + tl.n_frames_least]
    inside = (tl.led_off_s >= t0) & (tl.led_off_s + tl.ipi_ms / 1000 <= t1)
    assert len(res["ipi_ms"]) == inside.sum() >= 3
    assert np.abs(res["ipi_ms"] - tl.ipi_ms[inside]).max() <= 1000 / rate + 1e-9
    want = np.ceil((tl.led_off_s[inside] - truth["start_s"]) * rate - 1e-9) - truth["frame0_sample"]
    assert np.array_equal(res["start_samples"], want)


def test_nidq_without_break_is_an_error(tmp_path):
    tl = make_timeline(np.random.default_rng(3), 2.0, SERIALS, break_s=0.01)
    write_nidq(tmp_path, tl, "x", np.random.default_rng(4))
    with pytest.raises(InputError, match="no break"):
        nidq_ipis(tmp_path / "x.nidq.bin", tl.n_frames_least)


def test_no_complete_low_period():
    """Every fall after the last rise (a short recording ending low): no low period, no error."""
    from usvflow.sync.ipi import _pair_low

    f, r = _pair_low(np.array([500, 900]), np.array([100]))
    assert len(f) == len(r) == 0
