"""The detector's evaluation protocol: leave-one-recording-out on the labelled real recordings, a
simulated family and pure noise (``usvflow evaluate-detections --protocol``)."""

import json
from pathlib import Path

import numpy as np
import pytest

from usvflow.cli import main
from usvflow.usv.protocol import (
    DEFAULT_REAL,
    GRID_DB,
    GRID_FILLGAP,
    find_labelled,
    iou_of_pairs,
    loro_real,
)

REAL = Path(__file__).resolve().parents[1] / "data" / "usv-audio"


def test_labelled_recordings_found():
    assert DEFAULT_REAL == REAL
    recs = find_labelled([REAL])
    assert [k for k, _, _ in recs] == ["1/rec_1.wav", "2/rec_2.wav", "3/rec_3.wav"]


def test_iou_of_pairs():
    iou = iou_of_pairs([(0.0, 1.0), (2.0, 2.5), (5, 6)], [(0.0, 0.5), (2.0, 3.0)])
    np.testing.assert_allclose(sorted(iou), [0.5, 0.5])


def test_leave_one_recording_out_on_real_data():
    r = loro_real(find_labelled([REAL]))
    assert [f["held_out"] for f in r["folds"]] == ["1/rec_1.wav", "2/rec_2.wav", "3/rec_3.wav"]
    # the operating point is chosen on the other recordings only, from the grid
    assert all(f["thr_high_db"] in GRID_DB for f in r["folds"])
    assert all(f["segment_fillgap"] in GRID_FILLGAP for f in r["folds"])
    h = r["held_out"]
    assert h.n_labels == 96
    # 1.000 / 1.000 today (one call split by a broadband burst before gap bridging: 0.995 / 0.984)
    assert h.f1 >= 0.99 and h.f1_iou >= 0.98, h
    assert r["fixed_pooled"].f1 >= 0.98
    assert r["iou"].size == h.tp and np.median(r["iou"]) > 0.8


def test_operating_point_follows_the_labelling_convention(tmp_path):
    """Recordings whose labels count two syllables 22 ms apart as one call: the default gap filling
    (15 ms) splits them; chosen on the other recordings, 25 or 35 ms scores each held-out one whole."""
    import soundfile as sf

    fs = 250_000
    for r in range(3):
        rng = np.random.default_rng(r)
        x = rng.standard_normal(2 * fs) * 20
        labels = []
        for k in range(5):
            t0 = 0.2 + 0.35 * k
            for j, (f0, f1) in enumerate([(50e3, 60e3), (75e3, 85e3)]):
                a, n = int((t0 + j * 0.052) * fs), int(0.03 * fs)
                t = np.arange(n) / fs
                x[a : a + n] += (
                    400
                    * np.hanning(n)
                    * np.sin(2 * np.pi * (f0 * t + 0.5 * (f1 - f0) / 0.03 * t**2))
                )
            labels.append((t0, t0 + 0.082))
        d = tmp_path / str(r)
        d.mkdir()
        sf.write(d / f"rec_{r}.wav", np.round(x).astype(np.int16), fs, subtype="PCM_16")
        np.savetxt(d / f"gt_{r}.csv", labels, delimiter=",", fmt="%.4f")
    out = loro_real(find_labelled([tmp_path]))
    assert out["fixed_pooled"].precision < 0.6  # the defaults: two detections per labelled call
    assert all(f["segment_fillgap"] >= 0.025 for f in out["folds"])
    assert out["held_out"].f1 == 1.0


@pytest.mark.slow
def test_protocol_cli_prints_all_three_parts(tmp_path, capsys):
    out = tmp_path / "p.json"
    assert main(["evaluate-detections", "--protocol", "--sim-sessions", "1", "--sim-seconds", "2",
                 "--noise-sessions", "1", "--noise-seconds", "3", "--hpss-channels", "1",
                 "--json", str(out)]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "HELD-OUT POOLED" in text and "SIMULATED FAMILY" in text and "PURE NOISE" in text
    assert "REAL NOISE, SIMULATED CALLS" in text
    res = json.loads(out.read_text())
    assert res["real_noise"]["pooled"]["n_detectable"] >= 50
    assert res["real_more_noise"]["4"]["score"]["f1_iou"] >= 0.92
    assert res["real"]["held_out"]["f1"] >= 0.98
    assert (
        res["simulated"]["pooled"]["precision"] >= 0.99
        and res["simulated"]["pooled"]["recall"] >= 0.95
    )
    assert res["noise"]["per_channel_minute"] == 0.0
    assert "IoU of matched pairs" in text.split("SIMULATED FAMILY")[1]
    assert res["simulated"]["pooled"]["iou"]["median"] > 0.9


def test_simulated_calls_in_real_noise(tmp_path):
    """Calls of the simulator's model added to the label-free stretches of amvoc 1-3 (real noise,
    ~150 LSB rms above 30 kHz): found at >= 3x that noise (recall 0.988, P 1.000 on the protocol's
    10 copies), matched tightly (median IoU 0.98); the injection is reproducible, and a detection on
    a labelled real call is not counted as false."""
    from usvflow.usv.protocol import inject_into_real

    recs = find_labelled([REAL])
    r = inject_into_real(recs, rounds=4)
    p = r["pooled"]
    assert p["n_detectable"] >= 25 and p["recall"] >= 0.95 and p["precision"] >= 0.98, p
    assert np.median(r["iou"]) > 0.9
    assert all(120 < row["noise_rms_lsb"] < 200 for row in r["recordings"])
    again = inject_into_real(recs, rounds=4)
    assert again["pooled"] == p and np.array_equal(again["iou"], r["iou"])
    # the score moves with the detector: a 40-dB threshold misses faint added calls
    fewer = inject_into_real(recs, rounds=4, params={"thr_high_db": 40.0})
    assert fewer["pooled"]["recall"] < p["recall"]


def test_real_calls_in_more_real_noise():
    """amvoc 1-3 with their own background added (noise rms x2 and x4): F1 stays >= 0.95 and
    IoU>0.5 F1 >= 0.92 (protocol: 0.991 / 0.981 at x2, 0.957 / 0.939 at x4). Followed along their
    contours, the calls' faint ends keep the IoU: without that (edge_max_s 0) the x4 IoU>0.5 F1
    is 0.903 and the median IoU 0.78 against 0.84. Reproducible."""
    from usvflow.usv.protocol import degrade_real

    recs = find_labelled([REAL])
    r = degrade_real(recs, factors=(2.0, 4.0))
    x2, x4 = r[2.0], r[4.0]
    assert x2["n"] == x4["n"] == 9
    assert x2["score"]["f1"] >= 0.98 and x2["score"]["f1_iou"] >= 0.97, x2
    assert x4["score"]["f1"] >= 0.95 and x4["score"]["f1_iou"] >= 0.92, x4
    # more noise costs faint calls: recall falls from x2 to x4
    assert x4["score"]["recall"] < x2["score"]["recall"]
    plain = degrade_real(recs, factors=(4.0,), params={"edge_max_s": 0})[4.0]
    assert plain["score"]["f1"] == x4["score"]["f1"]
    assert plain["score"]["f1_iou"] + 0.02 < x4["score"]["f1_iou"]
    assert plain["iou"]["median"] + 0.03 < x4["iou"]["median"]
    assert degrade_real(recs, factors=(4.0,))[4.0] == x4
