"""The session-level A/V verdict (usvflow.sync.av) on synthetic streams with a known offset or jump, and
its summary figure. The streams are rendered from a simulated timeline without video encoding."""

import datetime as dt
import json

import numpy as np
import pytest

from usvflow.audio.wav import write_wav
from usvflow.io.atomic import write_json
from usvflow.simulate.syncfiles import write_coolterm_log
from usvflow.simulate.timeline import make_timeline
from usvflow.sync.av import av_sync_check, discrepancy_stats, write_result
from usvflow.sync.plot import plot_summary

SERIAL = "21372315"
SR = 250_000


def _session(
    tmp, seed=1, seconds=9.0, delay=0.0, jump_after=None, dark_leds=False, other_log=False
):
    kw = {"led_audio_delay_s": delay}
    if jump_after is not None:
        kw["audio_jump_after_s"] = jump_after
    tl = make_timeline(np.random.default_rng(seed), seconds, [SERIAL, "21372316"], **kw)
    n = tl.n_frames_least
    ft = tl.frame_times_s[:n]
    on = tl.led_is_on(ft) & (not dark_leds)
    px = np.where(on[:, None, None], 230, 30).repeat(3, 1).repeat(3, 2).astype(np.uint8)
    (tmp / "sync_px").write_bytes(px.tobytes())
    write_json(tmp / "counts.json", {SERIAL: [n, tl.fps], "total_frame_number_least": n,
                                     "total_video_time_least": n / tl.fps})  # fmt: skip
    audio = {}
    for dev in ("m",):
        clk = tl.audio[dev]
        k = clk.first_sample_at_or_after(tl.triggerbox_on_s)
        start, end = int(k[tl.first_frame_pulse]), int(k[tl.first_frame_pulse + n])
        lsb = clk.pulse_mask(
            end - start + 1, tl.led_on_s + delay, tl.led_off_s + delay, offset=start
        )
        x = (
            np.random.default_rng(2).integers(-300, 300, len(lsb)).astype(np.int16) & ~np.int16(1)
        ) | lsb
        write_wav(tmp / f"{dev}.wav", SR, x.astype(np.int16))
        audio[dev] = tmp / f"{dev}.wav"
    log_tl = (
        make_timeline(np.random.default_rng(seed + 100), seconds, [SERIAL]) if other_log else tl
    )
    name = write_coolterm_log(tmp, log_tl, dt.datetime(2025, 4, 30, 14, 49, 47))
    # a 9-s session pairs ~7 IPIs: below the default evidence threshold (tested on its own below)
    return tl, {"frame_counts": tmp / "counts.json", "led_px": {SERIAL: tmp / "sync_px"}, "audio": audio,
                "coolterm": tmp / name, "min_paired_ipis": 3}  # fmt: skip


def _truth(tl, k, delay):
    """Frame-quantized true discrepancy (ms) of Arduino IPIs ``k`` on device m (exact clock)."""
    toff = tl.led_off_s[k]
    first = tl.triggerbox_on_s[tl.first_frame_pulse]
    ka = np.ceil((toff + delay) * SR - 1e-9) - np.ceil(first * SR - 1e-9)
    kv = np.ceil((toff - first) * tl.fps - 1e-9)
    return ka / SR * 1000 - (kv - 0.5) / tl.fps * 1000


def test_too_few_ipis_are_insufficient_not_pass(tmp_path):
    tl, kw = _session(tmp_path, delay=0.002)
    n = av_sync_check(session_id="s", **kw)["devices"]["m"]["stats"]["n"]
    assert 3 <= n < 10
    kw.pop("min_paired_ipis")
    res = av_sync_check(session_id="s", **kw)  # default: 10
    assert res["verdict"] == "insufficient" and not res["passed"]
    assert (
        f"only {n} IPI(s) paired" in res["reasons"][0]
        and "sync.av.min_paired_ipis" in res["reasons"][0]
    )
    assert not res["devices"]["m"]["passed"]


def test_known_offset_is_recovered(tmp_path):
    delay = 0.0042
    tl, kw = _session(tmp_path, delay=delay)
    res = av_sync_check(session_id="s", **kw)
    assert res["passed"], res["reasons"]
    d = res["devices"]["m"]
    disc = np.array(d["ipi_discrepancy_ms"])
    truth = _truth(tl, np.array(d["arduino_index"]), delay)
    assert len(disc) >= 5
    assert np.abs(disc - truth).max() < 0.01
    assert abs(d["stats"]["median_ms"] - np.median(truth)) < 1.0
    # each IPI is the offset up to the ±½-frame quantization of the video
    assert np.abs(disc - delay * 1000).max() <= 500 / tl.fps + 0.01
    assert all(np.abs(d["audio_minus_arduino_ms"]) < 0.01)
    json.dumps(res, allow_nan=False)


def test_clock_jump_fails_and_is_located(tmp_path):
    tl, kw = _session(tmp_path, seed=2, jump_after=4.5)
    res = av_sync_check(session_id="s", **kw)
    assert not res["passed"] and res["verdict"] == "fail"
    d = res["devices"]["m"]
    disc = np.array(d["ipi_discrepancy_ms"])
    frames = np.array(d["video_ipi_start_frames"])
    after = frames / tl.fps > 4.5 + 0.05
    assert after.any() and (~after).any()
    assert np.abs(disc[~after]).max() < 500 / tl.fps + 0.01
    assert np.abs(disc[after] + 30.0).max() < 500 / tl.fps + 0.01
    assert abs(d["stats"]["largest_step_ms"] + 30) < 7
    assert any("jumps by" in r for r in res["reasons"])
    info = plot_summary(res, tmp_path / "summary.svg")
    lo, hi = info["audio m"]["ylim"]
    assert lo < -30 and hi > 0  # both levels are in the drift panel
    assert (tmp_path / "summary.svg").read_text().lstrip().startswith("<?xml")


def test_arduino_log_that_matches_nowhere(tmp_path):
    _, kw = _session(tmp_path, other_log=True)
    res = av_sync_check(session_id="s", **kw)
    assert not res["passed"]
    assert any("matches the Arduino log nowhere" in r and "tried" in r for r in res["reasons"])
    plot_summary(res, tmp_path / "s.svg")


def test_leds_that_see_no_flashes(tmp_path):
    _, kw = _session(tmp_path, dark_leds=True)
    res = av_sync_check(session_id="s", **kw)
    assert not res["passed"]
    assert any("no LED flashes found" in r and "0.20" in r for r in res["reasons"])
    write_result(tmp_path / "r.json", res)
    assert json.loads((tmp_path / "r.json").read_text())["verdict"] == "fail"
    plot_summary(res, tmp_path / "s.svg")


def test_a_recording_too_short_for_a_verdict_is_insufficient_not_fail(tmp_path):
    """Pulses not found in a recording that holds fewer IPIs than a verdict needs are no evidence of
    a sync failure; the same dark LEDs in a recording long enough fail (test above)."""
    _, kw = _session(tmp_path, seconds=2.0, dark_leds=True)
    kw.pop("min_paired_ipis")  # default: 10
    res = av_sync_check(session_id="s", **kw)
    assert res["verdict"] == "insufficient" and not res["passed"]
    assert 0 < res["expected_ipis"] < 10
    assert "record longer" in res["reasons"][0]
    assert any("no LED flashes found" in r for r in res["reasons"][1:])
    plot_summary(res, tmp_path / "s.svg")


def test_discrepancy_stats():
    st = discrepancy_stats([1.0, 2.0, 3.0, 10.0], frames=[0, 9000, 18000, 27000], fps=150.0)
    assert st["median_ms"] == 2.5 and st["max_abs_ms"] == 10.0 and st["largest_step_ms"] == 7.0
    sem = np.std([1, 2, 3, 10], ddof=1) / 2
    assert np.allclose(st["ci99_ms"], [4 - 2.58 * sem, 4 + 2.58 * sem])
    assert st["drift_ms_per_min"] > 0
    assert discrepancy_stats([]) == {"n": 0}


@pytest.mark.parametrize("bad", ["counts"])
def test_missing_frame_count_entry(tmp_path, bad):
    from usvflow.io.atomic import InputError

    _, kw = _session(tmp_path, seconds=3.0)
    write_json(kw["frame_counts"], {"total_frame_number_least": 10})
    with pytest.raises(InputError, match="no \\[frames, rate\\] entry"):
        av_sync_check(session_id="s", **kw)


def test_loopbio_frame_times_and_two_sync_cameras(tmp_path):
    delay = 0.002
    tl, kw = _session(tmp_path, seed=4, delay=delay)
    n = tl.n_frames_least
    first = tl.triggerbox_on_s[tl.first_frame_pulse]
    stamps = 1.7e9 + tl.frame_times_s[:n]  # epoch stamps of the frames: their differences are exact
    counts = json.loads(kw["frame_counts"].read_text())
    counts["21241563"] = counts[SERIAL]
    write_json(kw["frame_counts"], counts)
    kw["led_px"]["21241563"] = kw["led_px"][SERIAL]
    res = av_sync_check(session_id="s", frame_times={SERIAL: stamps}, **kw)
    assert res["passed"], res["reasons"]
    assert res["video_timing"] == "frame_time"
    assert set(res["video"]) == {SERIAL, "21241563"}
    d = res["devices"]["m"]
    k = np.array(d["arduino_index"])
    toff = tl.led_off_s[k]
    kv = np.ceil((toff - first) * tl.fps - 1e-9).astype(int)
    ka = np.ceil((toff + delay) * SR - 1e-9) - np.ceil(first * SR - 1e-9)
    want = ka / SR * 1000 - (0.5 * (stamps[kv - 1] + stamps[kv]) - stamps[0]) * 1000
    assert np.abs(np.array(d["ipi_discrepancy_ms"]) - want).max() < 1e-3


def test_cli_av_sync_on_a_session_without_cameras(tmp_path, capsys):
    from usvflow.cli import main

    (tmp_path / "sess" / "video").mkdir(parents=True)
    assert main(["av-sync", str(tmp_path / "sess")]) == 2
    assert "no camera recordings" in capsys.readouterr().err
