"""Call-type classifier: accuracy on simulated calls, training and inference speed (CPU).

Training material: :func:`usvflow.simulate.calltypes.simulate_labelled_spectrograms` (the simulator's
call types rendered in noise, detector-like onset/stop errors, clicks, tones, bout neighbours).

(a) 6 types (flat, up_ramp, down_ramp, step, trill, complex): ``N`` calls per type (seed 1); held-out
    test split accuracy (never used for training or early stopping), and the accuracy on an
    independent simulated set (seed 2, ``N // 2`` per type) — "train on one cohort, classify another";
(b) the source document's 3-class setting (trill, complex, flat), same protocol (it reported ~0.55
    on rendered plot images of real rat calls);
(c) spectrogram extraction from a memmap (calls/s) against scipy.signal.spectrogram of the same
    windows (reference), and classification throughput (calls/s).

    python bench/bench_calltypes.py [N_per_type] [max_epochs] [out.json]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.signal import spectrogram as scipy_spectrogram

from usvflow.simulate.calltypes import simulate_labelled_spectrograms
from usvflow.usv.calltypes import (
    TrainParams,
    confusion,
    load_model,
    metrics,
    predict_proba,
    train_arrays,
)
from usvflow.usv.spectrogram import SpecParams, spectrograms_from_memmap

FS = 250_000


def _fit(classes, n, epochs, out):
    p = SpecParams()
    x, lab = simulate_labelled_spectrograms(n, classes, seed=1, params=p)
    cls = sorted(classes)
    y = np.asarray([cls.index(c) for c in lab])
    t = time.perf_counter()
    rep = train_arrays(x, y, cls, p, out, TrainParams(max_epochs=epochs, seed=0))
    train_s = time.perf_counter() - t
    xi, li = simulate_labelled_spectrograms(max(3, n // 2), classes, seed=2, params=p)
    m = load_model(out)
    t = time.perf_counter()
    pred = predict_proba(m, xi).argmax(1)
    infer_s = time.perf_counter() - t
    yi = np.asarray([m.classes.index(c) for c in li])
    indep = metrics(confusion(yi, pred, len(m.classes)), m.classes)
    return {
        "classes": cls, "n_per_class": n, "heldout_accuracy": rep["accuracy"], "heldout_n": rep["n"],
        "heldout_confusion": rep["confusion_matrix"], "independent_accuracy": indep["accuracy"],
        "independent_n": indep["n"], "independent_confusion": indep["confusion_matrix"],
        "best_epoch": rep["best_epoch"], "epochs_run": rep["epochs_run"], "train_s": train_s,
        "s_per_epoch": train_s / rep["epochs_run"], "classify_calls_per_s": len(xi) / infer_s,
        "per_class_heldout": rep["per_class"],
    }  # fmt: skip


def _extraction(n_calls=300):
    rng = np.random.default_rng(0)
    secs = n_calls * 0.2 + 1
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"x_concatenated_audio_hpss_filtered_{FS}_{int(secs * FS)}_24_int16.mmap"
        mm = np.memmap(path, dtype="<i2", mode="w+", shape=(int(secs * FS), 24))
        for a in range(0, mm.shape[0], FS):
            mm[a : a + FS] = rng.integers(-300, 300, size=mm[a : a + FS].shape, dtype=np.int16)
        mm.flush()
        mm = np.memmap(path, dtype="<i2", mode="r", shape=(int(secs * FS), 24))
        starts = 0.1 + 0.2 * np.arange(n_calls)
        ch = rng.integers(0, 24, n_calls)
        p = SpecParams()
        t = time.perf_counter()
        spectrograms_from_memmap(mm, FS, starts, starts + 0.05, ch, p)
        ours = time.perf_counter() - t
        t = time.perf_counter()
        for s0, c in zip(starts, ch):
            a = int(s0 * FS)
            scipy_spectrogram(np.asarray(mm[a : a + int(p.duration_s * FS), c], float), FS, nperseg=p.n_fft,
                              noverlap=p.n_fft - 390)  # fmt: skip
        ref = time.perf_counter() - t
    return {
        "calls": n_calls,
        "ours_calls_per_s": n_calls / ours,
        "scipy_calls_per_s": n_calls / ref,
    }


def run(n=400, epochs=40, out_json=None):
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        res["six_types"] = _fit(["flat", "up_ramp", "down_ramp", "step", "trill", "complex"], n, epochs,
                                Path(tmp) / "m6")  # fmt: skip
        r = res["six_types"]
        print(
            f"6 types, {n}/type: held-out accuracy {r['heldout_accuracy']:.4f} (n={r['heldout_n']}), "
            f"independent set {r['independent_accuracy']:.4f} (n={r['independent_n']}); "
            f"{r['s_per_epoch']:.1f} s/epoch, {r['epochs_run']} epochs; {r['classify_calls_per_s']:.0f} calls/s"
        )
        print("   confusion (held-out; rows true, cols predicted", r["classes"], "):")
        for row in r["heldout_confusion"]:
            print("   ", row)
        res["three_types"] = _fit(["trill", "complex", "flat"], n, epochs, Path(tmp) / "m3")
        r = res["three_types"]
        print(
            f"3 types (seed's trill/complex/flat): held-out {r['heldout_accuracy']:.4f} (n={r['heldout_n']}), "
            f"independent {r['independent_accuracy']:.4f} (n={r['independent_n']}); seed reported ~0.55"
        )
        for row in r["heldout_confusion"]:
            print("   ", row)
    res["extraction"] = e = _extraction()
    print(
        f"spectrograms from a memmap: {e['ours_calls_per_s']:.0f} calls/s vs scipy.signal.spectrogram "
        f"{e['scipy_calls_per_s']:.0f} calls/s (ratio {e['ours_calls_per_s'] / e['scipy_calls_per_s']:.2f})"
    )
    if out_json:
        Path(out_json).write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    a = sys.argv[1:]
    run(int(a[0]) if a else 400, int(a[1]) if len(a) > 1 else 40, a[2] if len(a) > 2 else None)
