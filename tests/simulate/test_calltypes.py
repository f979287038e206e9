"""Labelled simulated calls for the call-type classifier: the simulator's types stay distinguishable,
clips are processed like the workflow's memmap, summaries from ground truth have the documented columns."""

import json

import numpy as np
import pytest

from usvflow.simulate.calls import COMPLEX_MIN_TURN_S, draw_call
from usvflow.simulate.calltypes import as_processed, render_clip, summary_from_truth
from usvflow.usv.curate import FEATURE_COLUMNS, SUMMARY_COLUMNS


def test_complex_turns_are_slower_than_trills():
    rng = np.random.default_rng(0)
    for _ in range(200):
        c = draw_call(rng, "complex")
        dur = c.duration_s
        n_turns = int(c.params["n_turns"])
        assert 2 <= n_turns <= 6
        nominal = dur / (n_turns + 1)
        assert nominal >= min(COMPLEX_MIN_TURN_S, dur / 3) - 1e-12
        # contour extrema (sign changes of the slope) are at least half a nominal spacing apart
        t = np.linspace(0, dur, 4000)
        d = np.diff(c.frequency(t))
        turns = t[1:-1][np.sign(d[1:]) != np.sign(d[:-1])]
        if turns.size > 1:
            assert np.diff(turns).min() >= 0.45 * nominal


def test_processed_clip_has_no_energy_below_the_high_pass():
    rng = np.random.default_rng(1)
    x, on, off, info = render_clip(rng, "flat", p_next_call=0, p_click=0, p_tone=0)
    assert 0.015 <= on <= 0.025 and off > on
    y = as_processed(x, rng)
    assert y.shape == x.shape
    f = np.fft.rfftfreq(y.size, 1 / 250000)
    p = np.abs(np.fft.rfft(y)) ** 2
    assert p[f < 25e3].sum() < 1e-3 * p[f > 30e3].sum()


def test_summary_from_truth(tmp_path):
    mic_amp = [1.0] * 24
    mic_amp[13] = 10.0
    usv = {"id": 0, "type": "trill", "outside_video": False, "loudest_mic": 13, "mic_delay_s": [0.002] * 24,
           "t_start_video_s": 0.5, "duration_s": 0.04, "mic_amp": mic_amp, "f_mean_hz": 6e4, "f_min_hz": 5e4,
           "f_max_hz": 7e4, "peak_amp": 900.0}  # fmt: skip
    truth = {
        "audio": {
            "usvs": [
                usv,
                {**usv, "outside_video": True},
                {**usv, "type": "flat", "t_start_video_s": 1.0},
            ]
        }
    }
    (tmp_path / "t.json").write_text(json.dumps(truth))
    df = summary_from_truth(tmp_path / "t.json")
    # the curated summary's columns in its order (no noise measures), then the truth
    cols = [c for c in df.columns if c != "call_type_true"]
    assert cols[: len(SUMMARY_COLUMNS)] == SUMMARY_COLUMNS and df.columns[-1] == "call_type_true"
    assert set(cols) == set(SUMMARY_COLUMNS + FEATURE_COLUMNS) - {
        "signal_correlation",
        "signal_variance",
    }
    assert df["usv_id"].tolist() == ["0000", "0001"] and df["call_type_true"].tolist() == [
        "trill",
        "flat",
    ]
    assert df["start"].tolist() == pytest.approx([0.502, 1.002])
    assert df["stop"].tolist() == pytest.approx([0.542, 1.042])
    assert df["mean_amp_ch"].tolist() == [13, 13] and df["chs_detected"][0] == "[13]"
