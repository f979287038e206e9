"""Curation of per-channel detections into the session's USV summary (usvflow.usv.curate)."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from usvflow.audio.memmap import memmap_name, sidecar_path
from usvflow.io.atomic import InputError
from usvflow.usv.curate import (
    CONFIDENCE_COLUMN,
    FEATURE_COLUMNS,
    SUMMARY_COLUMNS,
    CurateParams,
    annotation_channel,
    curate,
    curate_session,
    load_detections,
    read_summary,
    usv_measures,
    watershed_merge,
)
from usvflow.usv.detect import write_das_csv

SR = 250_000
CHANNELS = [f"{d}_ch{c:02d}" for d in "ms" for c in range(1, 13)]


def dets(rows):
    return (
        pd.DataFrame(rows, columns=["start", "stop", "ch"])
        .sort_values("start")
        .reset_index(drop=True)
    )


# ------------------------------------------------------------------------------------ merge


def test_channels_of_one_call_merge_into_one_usv():
    rows = [(1.000 + 0.0003 * c, 1.050 + 0.0002 * c, c) for c in range(10)]
    out = watershed_merge(dets(rows))
    assert len(out) == 1
    assert out[0]["chs"] == list(range(10))
    # times are the detections' envelope at the half-coverage level, not quantised to a grid
    assert out[0]["start"] == pytest.approx(1.0015, abs=1e-3)
    assert out[0]["stop"] == pytest.approx(1.0518, abs=1e-3)


def test_silence_separates_usvs():
    rows = [(1.0, 1.02, c) for c in range(3)] + [(1.0205, 1.04, c) for c in range(3)]
    out = watershed_merge(dets(rows))
    assert [u["chs"] for u in out] == [[0, 1, 2], [0, 1, 2]]
    assert out[0]["stop"] <= out[1]["start"]


def test_a_bridging_channel_does_not_chain_two_calls():
    # two calls heard on 10 channels each, 30 ms apart; one channel's detection bridges them
    rows = [(1.00, 1.05, c) for c in range(10)] + [(1.08, 1.12, c) for c in range(10)]
    rows.append((1.00, 1.12, 11))
    out = watershed_merge(dets(rows))
    assert len(out) == 2
    assert out[0]["start"] == pytest.approx(1.00) and out[0]["stop"] == pytest.approx(
        1.05, abs=1.1e-3
    )
    assert out[1]["start"] == pytest.approx(1.08, abs=1.1e-3) and out[1]["stop"] == pytest.approx(
        1.12
    )
    assert 11 in out[0]["chs"] and 11 in out[1]["chs"]


def test_shallow_valleys_and_low_peaks_are_not_split():
    # valley of 6 channels between peaks of 10: 6 >= 0.5 * 10, one USV
    rows = [(1.00, 1.05, c) for c in range(10)] + [(1.06, 1.10, c) for c in range(4)]
    rows += [(1.05, 1.10, c) for c in range(4, 10)] + [(1.00, 1.10, c) for c in range(10, 12)]
    assert len(watershed_merge(dets(rows))) == 1
    # peaks below peak_min (8 channels) are never split
    rows = (
        [(1.00, 1.05, c) for c in range(5)] + [(1.08, 1.12, c) for c in range(5)] + [(1.0, 1.12, 7)]
    )
    assert len(watershed_merge(dets(rows))) == 1
    assert len(watershed_merge(dets(rows), CurateParams(peak_min=3))) == 2


def test_no_detection_no_usv():
    assert watershed_merge(dets([])) == []


# ------------------------------------------------------------------------------------ measures


def tone(n, f, amp, phase=0.0):
    t = np.arange(n) / SR
    return amp * np.sin(2 * np.pi * f * t + phase) * np.hanning(n)


def test_amplitude_channels_use_absolute_values_without_int16_overflow():
    mm = np.zeros((SR // 10, 24), np.int16)
    mm[1000:1100, 1] = 30000
    mm[1050, 3] = -32768  # |−32768| must not wrap to −32768
    mm[1000:1100, 5] = 20000  # largest mean |x|... not quite: channel 1 is
    m = usv_measures(mm, SR, 1000 / SR, 1100 / SR, [1, 3, 5])
    assert m["peak_amp_ch"] == 3
    assert m["max_amplitude"] == 32768
    assert m["mean_amp_ch"] == 1


def test_acoustic_features_of_a_sweep():
    n = int(0.04 * SR)
    t = np.arange(n) / SR
    f0, f1 = 50e3, 80e3
    sweep = 3000 * np.sin(2 * np.pi * (f0 * t + 0.5 * (f1 - f0) / 0.04 * t**2))
    rng = np.random.default_rng(0)
    mm = rng.normal(0, 20, (SR // 5, 4))
    a = SR // 10
    mm[a : a + n, 2] += sweep
    mm = np.round(mm).astype(np.int16)
    m = usv_measures(mm, SR, a / SR, (a + n) / SR, [2])
    assert m["mean_amp_ch"] == 2
    assert m["min_freq_hz"] == pytest.approx(f0, abs=1.5e3)
    assert m["max_freq_hz"] == pytest.approx(f1, abs=1.5e3)
    assert m["mean_freq_hz"] == pytest.approx(65e3, abs=2e3)
    assert 50e3 <= m["peak_freq_hz"] <= 80e3
    # band power of the sweep over white noise of 20 LSB: amplitude 3000 -> ~ 40 dB
    assert 30 < m["snr_db"] < 50


# ------------------------------------------------------------------------------------ whole curation


def session(tmp_path, calls, noise_bursts=(), n=SR, seed=0):
    """A memmap + annotation CSVs; calls: (t0, dur, f, chans); noise_bursts: (t0, dur, chans), each a
    detection of independent stationary noise on several channels, or on one channel a detection that
    holds only a 0.4-ms pip (what the spectral correlation and the variance reject)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 5, (n, 24))
    per_ch = {c: [] for c in range(24)}
    for t0, dur, f, chans in calls:
        a, m = int(t0 * SR), int(dur * SR)
        for c in chans:
            x[a : a + m, c] += tone(m, f, 2000)
            per_ch[c].append((t0, t0 + dur))
    for t0, dur, chans in noise_bursts:
        a, m = int(t0 * SR), int(dur * SR)
        for c in chans:
            if len(chans) > 1:
                x[a : a + m, c] += rng.normal(0, 300, m)
            else:
                k = int(0.0004 * SR)
                x[a + m // 2 : a + m // 2 + k, c] += tone(k, 60e3, 3000)
            per_ch[c].append((t0, t0 + dur))
    mm_path = tmp_path / memmap_name("250430145009", "hpss_filtered", SR, n, 24)
    np.round(x).astype("<i2").tofile(mm_path)
    sidecar_path(mm_path).write_text(json.dumps({"shape": [n, 24], "dtype": "int16", "sample_rate": SR,
                                                 "channels": CHANNELS}))  # fmt: skip
    csvs = []
    for c in range(24):
        dev, ch = ("m", c + 1) if c < 12 else ("s", c - 11)
        path = (
            tmp_path
            / f"{dev}_250430145009_ch{ch:02d}_cropped_to_video_hpss_filtered_annotations.csv"
        )
        write_das_csv(sorted(per_ch[c]), path)
        csvs.append(path)
    return mm_path, csvs


def test_session_summary_keeps_calls_and_rejects_broadband_noise(tmp_path):
    calls = [(0.10, 0.03, 60e3, range(0, 9)), (0.30, 0.05, 75e3, range(8, 20)), (0.55, 0.02, 45e3, [4]),
             (0.70, 0.04, 90e3, range(12, 24))]  # fmt: skip
    bursts = [(0.43, 0.06, [1, 9, 17]), (0.85, 0.06, [6])]
    mm, csvs = session(tmp_path, calls, bursts)
    out = tmp_path / "S_usv_summary.csv"
    svg = tmp_path / "S_usv_signal_correlation_histogram.svg"
    df, stats = curate_session(csvs, mm, out, svg)
    assert list(df.columns) == SUMMARY_COLUMNS + FEATURE_COLUMNS + [CONFIDENCE_COLUMN]
    assert stats["n_merged"] == 6 and stats["n_kept"] == 4
    assert stats["rejected"]["correlation"] == 1 and stats["rejected"]["variance"] == 1
    back = read_summary(out)
    assert list(back["usv_id"]) == ["0000", "0001", "0002", "0003"]
    assert out.read_text().splitlines()[1].startswith("0000,")
    np.testing.assert_allclose(back["start"], [c[0] for c in calls], atol=1e-3)
    np.testing.assert_allclose(back["duration"], [c[1] for c in calls], atol=2e-3)
    assert back["chs_detected"][2] == "[4]" and back["chs_count"][1] == 12
    assert back["emitter"].isna().all()
    np.testing.assert_allclose(back["mean_freq_hz"], [c[2] for c in calls], atol=1e3)
    assert svg.read_text().lstrip().startswith("<?xml") and "<svg" in svg.read_text()


def test_fixed_cuts_keep_every_call_the_percentile_rule_drops_some(tmp_path):
    calls = [(0.05 + 0.06 * i, 0.03, 50e3 + 2e3 * i, range(i % 12, i % 12 + 10)) for i in range(15)]
    mm, csvs = session(tmp_path, calls)
    det = load_detections(csvs, CHANNELS)
    from usvflow.audio.memmap import open_memmap

    m = open_memmap(mm)
    df, _ = curate(det, m, SR)
    assert len(df) == 15
    df6, st = curate(det, m, SR, CurateParams(noise_corr_percentile=6))
    assert (
        len(df6) == 14 and st["rejected"]["correlation"] == 1
    )  # the original's rule: 6 % always go


def test_zero_and_one_usv(tmp_path):
    mm, csvs = session(tmp_path, [])
    out = tmp_path / "a.csv"
    df, stats = curate_session(csvs, mm, out, tmp_path / "a.svg")
    assert len(df) == 0 and stats["n_merged"] == 0
    assert out.read_text().splitlines() == [
        ",".join(SUMMARY_COLUMNS + FEATURE_COLUMNS + [CONFIDENCE_COLUMN])
    ]
    assert (tmp_path / "a.svg").exists()
    one = tmp_path / "one"
    one.mkdir()
    # a single USV heard on one channel whose variance would fail the cut: no filtering with one USV
    mm, csvs = session(one, [], noise_bursts=[(0.5, 0.06, [3])])
    df, stats = curate_session(csvs, mm, one / "b.csv", one / "b.svg")
    assert len(df) == 1 and not stats["filtered"]
    assert df["chs_detected"][0] == "[3]" and df["peak_amp_ch"][0] == 3


def test_noise_filter_off_keeps_everything_and_still_measures(tmp_path):
    mm, csvs = session(
        tmp_path, [(0.2, 0.03, 60e3, range(5))], noise_bursts=[(0.6, 0.06, [1, 2, 3])]
    )
    df, stats = curate_session(
        csvs, mm, tmp_path / "s.csv", params={"filter_putative_noise": False}
    )
    assert len(df) == 2 and not stats["filtered"]
    assert df["mean_amp_ch"].tolist()[0] in range(5)
    assert math.isfinite(df["signal_correlation"][1])


def test_bad_inputs_name_the_file(tmp_path):
    mm, csvs = session(tmp_path, [(0.2, 0.03, 60e3, range(5))])
    odd = tmp_path / "x_250430145009_ch13_cropped_to_video_hpss_filtered_annotations.csv"
    write_das_csv([], odd)
    with pytest.raises(InputError, match=odd.name):
        curate_session([*csvs, odd], mm, tmp_path / "s.csv")
    sidecar_path(mm).unlink()
    with pytest.raises(InputError, match="sidecar"):
        curate_session(csvs, mm, tmp_path / "s.csv")
    assert not (tmp_path / "s.csv").exists()
    with pytest.raises(ValueError, match="unknown"):
        CurateParams.from_mapping({"peak_minimum": 3})


def test_detection_confidence_reaches_the_summary(tmp_path):
    """A USV's detection_confidence is the highest confidence of the detections that make it (the
    built-in detector's CSV column); DAS's files have none, so it is empty there."""
    names = [
        f"m_250430145009_ch{c:02d}_cropped_to_video_hpss_filtered_annotations.csv"
        for c in (1, 2, 3)
    ]
    frames = [
        pd.DataFrame(
            {"start_seconds": [1.0, 2.0], "stop_seconds": [1.05, 2.03], "confidence": [0.7, 0.55]}
        ),
        pd.DataFrame({"start_seconds": [1.001], "stop_seconds": [1.049], "confidence": [0.93]}),
        pd.DataFrame({"start_seconds": [2.001], "stop_seconds": [2.031], "confidence": [0.61]}),
    ]
    paths = [write_das_csv(f, tmp_path / n) for f, n in zip(frames, names)]
    det = load_detections(paths, CHANNELS)
    assert det["confidence"].tolist() == [0.7, 0.93, 0.55, 0.61]
    out = watershed_merge(det)
    assert [u[CONFIDENCE_COLUMN] for u in out] == [0.93, 0.61]
    das = [
        write_das_csv([(a, b) for a, b in f[["start_seconds", "stop_seconds"]].to_numpy()], p)
        for f, p in zip(frames, paths)
    ]
    det = load_detections(das, CHANNELS)
    assert det["confidence"].isna().all()
    assert all(math.isnan(u[CONFIDENCE_COLUMN]) for u in watershed_merge(det))


def test_annotation_channel_mapping():
    assert (
        annotation_channel(
            "m_250430145009_ch01_cropped_to_video_hpss_filtered_annotations.csv", CHANNELS
        )
        == 0
    )
    assert (
        annotation_channel(
            "s_250430145009_ch12_cropped_to_video_hpss_filtered_annotations.csv", CHANNELS
        )
        == 23
    )
    assert annotation_channel("notes.csv", CHANNELS) is None
