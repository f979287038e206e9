"""End-to-end: the audio chain (split, crop, HPSS, high-pass, memmap) and per-channel USV detection
on a simulated session."""

import json

import numpy as np
import pytest
import soundfile as sf
import yaml

from .conftest import snakemake

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def audio_run(tmp_path_factory):
    from usvflow.simulate.cohort import simulate_cohort

    out = tmp_path_factory.mktemp("audio_cohort")
    simulate_cohort(out, sessions=1, seconds=2.0, seed=11, calibration=False, calls_per_minute=400)
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    cfg["stages"] = ["video", "audio", "usv"]
    (out / "config.yaml").write_text(yaml.safe_dump(cfg))
    snakemake(out, config=out / "config.yaml")
    sid = (out / "sessions.tsv").read_text().splitlines()[1].split("\t")[0]
    return out, sid, json.loads((out / "truth" / sid / "ground_truth.json").read_text())


def test_crop_indices_equal_truth(audio_run):
    out, sid, truth = audio_run
    info = json.loads(
        (out / "Data" / sid / "audio" / "audio_triggerbox_sync_info.json").read_text()
    )
    for dev in ("m", "s"):
        crop = truth["audio"]["crop"][dev]
        assert info[dev]["start_first_recorded_frame"] == crop["start_first_recorded_frame"]
        assert info[dev]["end_last_recorded_frame"] == crop["end_last_recorded_frame"]
        assert info[dev]["duration_samples"] == crop["duration_samples"]


def test_devices_share_one_time_base(audio_run):
    out, sid, _ = audio_run
    crop = out / "Data" / sid / "audio" / "cropped_to_video"
    edges = {}
    lengths = set()
    for dev in ("m", "s"):
        wavs = sorted(crop.glob(f"{dev}_*_cropped_to_video.wav"))
        assert len(wavs) == 12
        for w in wavs:
            lengths.add(sf.info(w).frames)
        x = sf.read(sorted(crop.glob(f"{dev}_*_ch02_cropped_to_video.wav"))[0], dtype="int16")[0]
        lsb = (x & 1).astype(np.int8)
        edges[dev] = np.flatnonzero(np.diff(lsb) > 0) + 1
    assert len(lengths) == 1, "all 24 channels must have one length"
    assert len(edges["m"]) == len(edges["s"]) > 0
    assert np.abs(edges["m"] - edges["s"]).max() <= 1


def test_memmap_round_trip(audio_run):
    from usvflow.audio.memmap import open_memmap

    out, sid, _ = audio_run
    folder = out / "Data" / sid / "audio" / "hpss_filtered"
    mm = open_memmap(sorted(folder.glob("*.mmap"))[0])
    wavs = sorted(folder.glob("*_hpss_filtered.wav"))
    assert mm.shape[1] == len(wavs) == 24
    for j in (0, 5, 12, 23):
        x = sf.read(wavs[j], dtype="int16")[0]
        assert np.array_equal(mm[:, j], x)
    side = json.loads(sorted(folder.glob("*_int16.json"))[0].read_text())
    assert side["shape"] == list(mm.shape)


def test_detections_find_the_simulated_calls(audio_run):
    import pandas as pd

    out, sid, truth = audio_run
    ann = out / "Data" / sid / "audio" / "das_annotations"
    csvs = sorted(ann.glob("*_cropped_to_video_hpss_filtered_annotations.csv"))
    assert len(csvs) == 24
    assert csvs[0].read_text().splitlines()[0] == ",name,start_seconds,stop_seconds,confidence"
    by_channel = {}
    for c in csvs:
        dev, _, ch = c.name.split("_")[:3]
        by_channel[(dev, int(ch[2:]))] = pd.read_csv(c, index_col=0)
    calls = [u for u in truth["audio"]["usvs"] if not u["outside_video"] and u["peak_amp"] >= 300]
    assert calls, "the simulated session should hold loud calls inside the video"
    found = 0
    for u in calls:
        j = u["loudest_mic"]
        det = by_channel[("m", j + 1) if j < 12 else ("s", j - 11)]
        a, b = u["t_start_video_s"], u["t_stop_video_s"] + 0.003  # + the propagation delay (< 3 ms)
        found += bool(((det.start_seconds < b) & (det.stop_seconds > a)).any())
    assert found / len(calls) >= 0.95, (found, len(calls))


def test_usv_summary_matches_the_truth(audio_run):
    from usvflow.usv.curate import (
        CONFIDENCE_COLUMN,
        FEATURE_COLUMNS,
        SUMMARY_COLUMNS,
        read_summary,
    )
    from usvflow.usv.score import score_intervals

    out, sid, truth = audio_run
    audio = out / "Data" / sid / "audio"
    summ = read_summary(audio / f"{sid}_usv_summary.csv")
    assert list(summ.columns) == SUMMARY_COLUMNS + FEATURE_COLUMNS + [CONFIDENCE_COLUMN]
    # the built-in detector's confidence, carried to the summary: at least its operating point's 0.5
    assert summ[CONFIDENCE_COLUMN].between(0.5, 1.0).all()
    calls = [u for u in truth["audio"]["usvs"] if not u["outside_video"]]
    assert len(calls) >= 5
    lab = np.array([[u["t_start_video_s"], u["t_stop_video_s"]] for u in calls])
    sc = score_intervals(summ[["start", "stop"]].to_numpy(), lab)
    assert sc.precision >= 0.95 and sc.recall >= 0.95, sc
    assert abs(sc.median_onset_error_s) <= 0.005 and abs(sc.median_offset_error_s) <= 0.005, sc
    # the acoustic features describe the calls: mean frequency of the matched calls within 3 kHz
    from usvflow.usv.score import match_intervals

    pairs = match_intervals(summ[["start", "stop"]].to_numpy(), lab)
    err = [summ["mean_freq_hz"][i] - calls[j]["f_mean_hz"] for i, j in pairs]
    assert np.median(np.abs(err)) < 3e3, err
    svg = (audio / f"{sid}_usv_signal_correlation_histogram.svg").read_text()
    assert "<svg" in svg
