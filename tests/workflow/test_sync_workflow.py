"""End-to-end A/V sync check (stage `sync`) on simulated sessions: one with a known audio/video offset
and an NI-DAQ recording, one whose audio clocks jump by 30 ms mid-recording."""

import json

import numpy as np
import pytest
import yaml

from .conftest import snakemake

pytestmark = pytest.mark.slow

DELAY_S = 0.004
JUMP_AFTER_S, JUMP_S = 4.5, 0.03


@pytest.fixture(scope="module")
def sync_run(tmp_path_factory):
    from usvflow.simulate.cohort import simulate_cohort

    out = tmp_path_factory.mktemp("sync_cohort")
    simulate_cohort(
        out, sessions=2, seconds=9.0, seed=5, calibration=False, calls_per_minute=0,
        session_options=[{"timeline": {"led_audio_delay_s": DELAY_S}, "nidq": True},
                         {"timeline": {"audio_jump_after_s": JUMP_AFTER_S, "audio_jump_s": JUMP_S}}],
    )  # fmt: skip
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    cfg["stages"] = ["sync"]
    cfg["sync"]["av"]["nidq"] = {"enabled": True}
    cfg["sync"]["av"]["min_paired_ipis"] = 3  # 9-s sessions pair ~7 IPIs
    (out / "config.yaml").write_text(yaml.safe_dump(cfg))
    raw_before = {p: p.stat().st_size for p in (out / "Data").rglob("*") if p.is_file()}
    snakemake(out, config=out / "config.yaml")
    sids = [line.split("\t")[0] for line in (out / "sessions.tsv").read_text().splitlines()[1:]]
    return out, sids, raw_before


def _load(out, sid):
    res = json.loads((out / "Data" / sid / "sync" / f"{sid}_av_sync.json").read_text())
    truth = json.loads((out / "truth" / sid / "ground_truth.json").read_text())
    return res, truth


def _truth_ms(truth, k, delay, dev="m"):
    """Frame-quantized true discrepancy of Arduino IPIs k: true audio time of the LED-off edge in the
    cropped audio minus the midpoint of the last lit and first dark video frame."""
    tl = truth["timeline"]
    toff = np.asarray(tl["led_on_s"])[k] + tl["led_high_s"]
    first, fps = tl["first_frame_s"], tl["fps"]
    start = truth["audio"]["crop"]["m"][
        "start_first_recorded_frame"
    ]  # m: exact clock, the time base
    ka = np.ceil((toff + delay) * 250000 - 1e-9) - start
    kv = np.ceil((toff - first) * fps - 1e-9)
    return ka / 250.0 - (kv - 0.5) / fps * 1000


def test_offset_session_passes_with_the_simulated_offset(sync_run):
    out, sids, _ = sync_run
    res, truth = _load(out, sids[0])
    assert res["verdict"] == "pass", res["reasons"]
    half_frame = 500 / truth["timeline"]["fps"]
    for dev in ("m", "s"):
        d = res["devices"][dev]
        disc = np.asarray(d["ipi_discrepancy_ms"])
        want = _truth_ms(truth, np.asarray(d["arduino_index"]), DELAY_S)
        assert len(disc) >= 5
        assert np.abs(disc - want).max() < 0.02  # s is resampled onto m's time base (< 1 sample)
        assert abs(d["stats"]["median_ms"] - np.median(want)) < 1.0
        assert np.abs(disc - DELAY_S * 1000).max() <= half_frame + 0.02
        assert set(d["frame_discrepancy"]) <= {0, 1}
    assert res["cross_device"]["m-s"]["max_abs_ms"] < 0.01
    # NIDQ sees the LED without the audio delay
    nd = np.asarray(res["nidq"]["ipi_discrepancy_ms"])
    assert len(nd) >= 5 and np.abs(nd).max() <= half_frame + 0.02
    arr = np.load(out / "Data" / sids[0] / "sync" / "nidq_ipi_data.npy")
    assert arr.shape == (2, res["nidq"]["n_ipis"]) and arr.dtype == np.float64
    px = out / "Data" / sids[0] / "sync" / f"sync_px_21372315-{truth['video']['date_joint']}"
    assert px.stat().st_size == truth["timeline"]["n_frames_least"] * 9
    side = json.loads(px.with_name(px.name + ".json").read_text())
    assert side["pixels"] == truth["video"]["led_pixels"]["21372315"]


def test_jump_session_fails_and_shows_the_jump(sync_run):
    out, sids, _ = sync_run
    res, truth = _load(out, sids[1])
    assert res["verdict"] == "fail"
    fps = truth["timeline"]["fps"]
    d = res["devices"]["m"]
    disc = np.asarray(d["ipi_discrepancy_ms"])
    after = np.asarray(d["video_ipi_start_frames"]) / fps > JUMP_AFTER_S
    assert after.any() and (~after).any()
    assert np.abs(disc[~after]).max() <= 500 / fps + 0.02
    assert np.abs(disc[after] + JUMP_S * 1000).max() <= 500 / fps + 0.1
    assert any("jumps by" in r for r in res["reasons"])
    svg = (out / "Data" / sids[1] / "sync" / f"{sids[1]}_summary.svg").read_text()
    assert "FAIL" in svg and "Camera frame number" in svg


def test_no_file_is_deleted(sync_run):
    out, _, raw_before = sync_run
    for p, size in raw_before.items():
        assert p.is_file() and p.stat().st_size == size, p


def test_fail_on_mismatch_fails_the_gate_rule(sync_run):
    out, sids, _ = sync_run
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    cfg["sync"]["fail_on_mismatch"] = True
    strict = out / "strict.yaml"
    strict.write_text(yaml.safe_dump(cfg))
    proc = snakemake(out, "--keep-going", config=strict, check=False)
    assert proc.returncode != 0
    sync0, sync1 = (out / "Data" / s / "sync" for s in sids)
    assert (sync0 / f"{sids[0]}_av_sync.passed").is_file()
    assert not (sync1 / f"{sids[1]}_av_sync.passed").exists()
    assert (sync1 / f"{sids[1]}_av_sync.json").is_file()  # the verdict and the figure stay
    assert (sync1 / f"{sids[1]}_summary.svg").is_file()
    assert (
        "jumps by" in (out / "Data" / sids[1] / "logs" / f"av_sync_gate_{sids[1]}.log").read_text()
    )


def test_a_minute_of_ipis_recovers_the_raw_offset(tmp_path_factory):
    """Each IPI sees the LED only at frame resolution (±3.3 ms at 150 fps); over a minute (~50 IPIs of
    random phase) the median and mean discrepancy recover the simulated 4 ms audio delay itself."""
    from usvflow.simulate.cohort import simulate_cohort

    out = tmp_path_factory.mktemp("sync_minute")
    simulate_cohort(out, sessions=1, seconds=60.0, seed=5, calibration=False, calls_per_minute=0,
                    session_options=[{"timeline": {"led_audio_delay_s": DELAY_S}}])  # fmt: skip
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    cfg["stages"] = ["sync"]
    (out / "config.yaml").write_text(yaml.safe_dump(cfg))
    snakemake(out, config=out / "config.yaml")
    sid = (out / "sessions.tsv").read_text().splitlines()[1].split("\t")[0]
    res = json.loads((out / "Data" / sid / "sync" / f"{sid}_av_sync.json").read_text())
    for dev in ("m", "s"):
        st = res["devices"][dev]["stats"]
        assert st["n"] >= 40
        assert abs(st["median_ms"] - 1e3 * DELAY_S) <= 1.0, st
        assert st["ci99_ms"][0] <= 1e3 * DELAY_S <= st["ci99_ms"][1], st
    assert res["passed"]
