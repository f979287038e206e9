"""E/V sync check (sync word, pulse onsets, tracking window, duration verdict) against simulated truth,
and the SpikeGLX files of every probe family in the real-data metas."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from usvflow.io.atomic import InputError
from usvflow.io.spikeglx import open_bin, parse_meta, read_meta, write_meta
from usvflow.simulate.ephys import draw_units, write_spikeglx
from usvflow.simulate.timeline import make_timeline
from usvflow.sync.ev import (
    ev_sync_check,
    extract_sync_word,
    read_sync_word,
    rising_edges,
    tracking_window,
)

CAMS = ["21372315", "21241563"]
HS = "23280196"
REAL = Path(__file__).resolve().parents[1] / "data" / "spikeglx"


def _session(tmp, seed=1, seconds=1.0, **kw):
    rng = np.random.default_rng(seed)
    tl = make_timeline(rng, seconds, CAMS)
    units = draw_units(rng, 4, 2)
    truth = write_spikeglx(
        tmp, "20250430_145017", tl, rng, n_ap=4, units=units, headstage_sn=HS, **kw
    )
    return tl, truth


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ev")
    tl, truth = _session(tmp)
    npy = tmp / "20250430_145017_imec0_sync_ch_data.npy"
    n = extract_sync_word(truth["bin"], truth["meta"], npy, chunk_bytes=10_000)  # many small chunks
    return tl, truth, npy, n


def _counts(tl, video_s=None):
    n = tl.n_frames_least
    return {
        "total_frame_number_least": n,
        "total_video_time_least": n / tl.fps if video_s is None else video_s,
    }


def _simulated_difference_ms(tl, truth, rate):
    """E-phys minus video duration of the simulated session, from the timeline alone."""
    on = tl.triggerbox_on_s
    k = tl.ephys.first_sample_at_or_after(
        on[[tl.first_frame_pulse, tl.first_frame_pulse + tl.n_frames_least]]
    )
    return ((k[1] - k[0]) / rate - tl.n_frames_least / tl.fps) * 1000.0


def test_sync_word_is_the_last_column(session):
    _, truth, npy, n = session
    word = read_sync_word(npy)
    assert n == truth["n_samples"] == len(word)
    col = np.asarray(open_bin(truth["bin"], truth["meta"])[:, -1])
    np.testing.assert_array_equal(word, col)
    assert not list(npy.parent.glob(".tmp-*"))


def test_rising_edges_chunked_equal_whole(session):
    tl, truth, npy, _ = session
    word = read_sync_word(npy)
    whole = rising_edges(word, None, chunk=len(word) + 1)
    for chunk in (997, 4096, 99_991):
        np.testing.assert_array_equal(rising_edges(word, None, chunk=chunk), whole)
    head = int(whole[3]) + 5
    np.testing.assert_array_equal(rising_edges(word[:head], None, chunk=1), whole[:4])
    np.testing.assert_array_equal(rising_edges(word, truth["sync_bit"], chunk=333), whole)
    k_on = tl.ephys.first_sample_at_or_after(tl.triggerbox_on_s)
    np.testing.assert_array_equal(whole, k_on)  # every pulse onset, exact to the sample
    assert len(rising_edges(word, 3)) == 0  # an idle bit


def test_check_equals_truth(session):
    tl, truth, npy, _ = session
    res = ev_sync_check(read_sync_word(npy), truth["meta"], _counts(tl), session_id="s", probe="imec0",
                        calibrated_rates={HS: truth["rate_true"]})  # fmt: skip
    assert res.passed and res.problem is None
    assert res.tracking_start_end == truth["tracking_start_end"]
    assert res.largest_camera_break_duration == truth["largest_camera_break_duration"]
    assert res.sample_rate == truth["rate_true"] and res.sample_rate_source == "calibrated"
    assert res.duration_difference_ms == pytest.approx(
        _simulated_difference_ms(tl, truth, truth["rate_true"]), abs=1e-4
    )
    assert res.largest_break_s > 2.29
    on = res.frame_onsets
    assert (
        len(on) == tl.n_frames_least + 1
        and on[0] == truth["tracking_start_end"][0]
        and on[-1] == truth["tracking_start_end"][1]
    )
    d = res.to_dict()
    assert "frame_onsets" not in d and d["tracking_start_end"] == truth["tracking_start_end"]


def test_uncalibrated_rate_and_known_difference(session):
    """Without the headstage in the table imSampRate is used: the difference is the simulated one."""
    tl, truth, npy, _ = session
    video_s = tl.n_frames_least / tl.fps + 0.004  # the video claims 4 ms more
    res = ev_sync_check(
        read_sync_word(npy), truth["meta"], _counts(tl, video_s), session_id="s", probe="imec0"
    )
    assert res.sample_rate == 30000.0 and res.sample_rate_source == "imSampRate"
    expected = _simulated_difference_ms(tl, truth, 30000.0) - 4.0
    assert res.duration_difference_ms == pytest.approx(expected, abs=1e-4)  # well within 0.1 ms
    assert res.passed


def test_mismatch_fails_with_numbers(session):
    tl, truth, npy, _ = session
    res = ev_sync_check(read_sync_word(npy), truth["meta"], _counts(tl), session_id="s", probe="imec0",
                        calibrated_rates={HS: 29500.0})  # 1.7 % wrong: ~17 ms over 1 s  # fmt: skip
    assert not res.passed
    assert res.duration_difference_ms == pytest.approx(
        _simulated_difference_ms(tl, truth, 29500.0), abs=1e-4
    )
    assert abs(res.duration_difference_ms) > 12 and "tolerance" in res.problem
    assert res.tracking_start_end == truth["tracking_start_end"]  # the window is still reported


def test_break_gate_not_inverted(session):
    """A real ~2.3 s break passes the default 2.0 s minimum; a stricter minimum fails it, saying so."""
    tl, truth, npy, _ = session
    word = read_sync_word(npy)
    assert ev_sync_check(word, truth["meta"], _counts(tl), session_id="s", probe="imec0").passed
    res = ev_sync_check(
        word, truth["meta"], _counts(tl), session_id="s", probe="imec0", min_largest_break_s=3.0
    )
    assert not res.passed and "shorter than min_largest_break_s=3.0" in res.problem
    assert "any rising change" in res.problem


def test_no_break_and_no_pulses():
    meta = {"nSavedChans": "2", "snsApLfSy": "1,0,1", "acqApLfSy": "384,384,1", "snsSaveChanSubset": "0,768",
            "imSampRate": "30000", "typeThis": "imec"}  # fmt: skip
    from usvflow.io.spikeglx import meta_from_dict

    m = meta_from_dict(meta)
    counts = {"total_frame_number_least": 100, "total_video_time_least": 100 / 150.0}
    res = ev_sync_check(
        np.zeros(30000, np.int16), m, counts, session_id="s", probe="imec0", triggerbox_bit=6
    )
    assert not res.passed and res.tracking_start_end is None
    assert "found 0 pulse onset(s)" in res.problem and "bit 6" in res.problem
    steady = np.zeros(90000, np.int16)
    for k in range(0, 90000, 200):  # 150 Hz pulses, no break
        steady[k + 1 : k + 60] = 64
    res = ev_sync_check(steady, m, counts, session_id="s", probe="imec0")
    assert not res.passed and "shorter than min_largest_break_s" in res.problem
    w = tracking_window(np.array([10, 20, 5000, 5010]), 5)
    assert w.start is None and "recording ends before the tracking does" in w.problem


def test_square_wave_needs_the_bit(tmp_path):
    """SpikeGLX's 1 Hz square wave on another bit hides the break unless the triggerbox bit is set."""
    tl, truth = _session(tmp_path, seed=4, seconds=0.5, square_wave_bit=0)
    npy = tmp_path / "w.npy"
    extract_sync_word(truth["bin"], truth["meta"], npy)
    word = read_sync_word(npy)
    res = ev_sync_check(word, truth["meta"], _counts(tl), session_id="s", probe="imec0", triggerbox_bit=6,
                        calibrated_rates={HS: truth["rate_true"]})  # fmt: skip
    assert res.passed and res.tracking_start_end == truth["tracking_start_end"]
    res = ev_sync_check(word, truth["meta"], _counts(tl), session_id="s", probe="imec0")
    assert not res.passed


def test_truncated_bin_stops_before_writing(tmp_path):
    _, truth = _session(tmp_path, seed=2, seconds=0.3)
    b = Path(truth["bin"])
    data = b.read_bytes()
    bad = tmp_path / "bad.imec0.ap.bin"
    bad.write_bytes(data[:-3])  # mid-sample
    out = tmp_path / "bad_sync.npy"
    with pytest.raises(InputError, match="bad.imec0.ap.bin") as exc:
        extract_sync_word(bad, truth["meta"], out)
    assert "truncated" in exc.value.problem
    bad.write_bytes(data[: -2 * truth["n_saved_chans"]])  # whole samples, fewer than the meta says
    with pytest.raises(InputError, match="fileSizeBytes"):
        extract_sync_word(bad, truth["meta"], out)
    assert not out.exists() and not list(tmp_path.glob(".tmp-*"))


@pytest.mark.parametrize(
    "name, n_saved, sync_index",
    [("Noise_g0_t0.imec0.ap.meta", 385, 384), ("NP1_saved_only_subset_of_channels.meta", 152, 151),
     ("p2_g0_t0.imec0.ap.meta", 385, 384)],
)  # fmt: skip
def test_real_metas(tmp_path, name, n_saved, sync_index):
    """Every real meta: channel counts, sync column, rate; a synthesised .bin of its layout."""
    src = REAL / name
    m = parse_meta(src)
    assert (m.n_saved_chans, m.sync_channel_index, m.sample_rate) == (n_saved, sync_index, 30000.0)
    raw = read_meta(src)
    n = 1200
    raw["fileSizeBytes"] = str(n * n_saved * 2)
    meta = tmp_path / "x.imec0.ap.meta"
    write_meta(meta, raw)
    rng = np.random.default_rng(0)
    data = rng.integers(-500, 500, size=(n, n_saved), dtype=np.int16)
    data[:, -1] = 0
    data[100:110, -1] = data[700:720, -1] = 1 << 6
    data.tofile(tmp_path / "x.imec0.ap.bin")
    out = tmp_path / "x_sync.npy"
    assert extract_sync_word(tmp_path / "x.imec0.ap.bin", meta, out, chunk_bytes=4096) == n
    word = read_sync_word(out)
    np.testing.assert_array_equal(word, data[:, sync_index])
    np.testing.assert_array_equal(rising_edges(word, 6), [100, 700])
    # The original meta's fileSizeBytes disagrees with this small .bin: a clear error.
    with pytest.raises(InputError, match="fileSizeBytes"):
        extract_sync_word(tmp_path / "x.imec0.ap.bin", src, tmp_path / "y.npy")
