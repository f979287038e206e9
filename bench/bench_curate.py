"""USV curation throughput (USVs per second, x real time) and memory, against the original's approach.

A synthetic 24-channel int16 memmap at 250 kHz (5 LSB noise, three calls per second, each heard on
4-24 channels with its own delays) and the matching per-channel detections. Timed on one core:

(a) ``usvflow.usv.curate.curate``: region-by-region watershed merge, one USV window read from the
    memmap at a time, noise measures and acoustic features;
(b) the reference, as the original does it (docs/original-pipeline.md step 13): every channel's
coverage mask over the
    whole session on the 1-ms grid, all detections merged at once, then per USV the int16 window,
    ``librosa.stft`` of the detecting channels and the correlation/variance (no acoustic features).

Peak traced memory of (a) at two session lengths shows that it does not grow with the recording.

    python bench/bench_curate.py [seconds]
"""

from __future__ import annotations

import math
import sys
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
from _timing import best_time

from usvflow.usv.curate import curate

FS = 250_000
N_CH = 24


def synth(seconds: float, folder: Path, seed: int = 0):
    rng = np.random.default_rng(seed)
    n = int(seconds * FS)
    path = folder / f"bench_{int(seconds)}.mmap"
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.int16, shape=(n, N_CH))
    block = FS
    for a in range(0, n, block):
        b = min(n, a + block)
        mm[a:b] = np.round(rng.normal(0, 5, (b - a, N_CH))).astype(np.int16)
    rows = []
    for t0 in np.arange(0.1, seconds - 0.2, 1 / 3):
        d = rng.uniform(0.01, 0.1)
        f0, f1 = rng.uniform(40e3, 100e3, 2)
        m = int(d * FS)
        tt = np.arange(m) / FS
        call = np.sin(2 * np.pi * (f0 * tt + 0.5 * (f1 - f0) / d * tt**2)) * np.hanning(m)
        chans = rng.choice(N_CH, int(rng.integers(4, N_CH + 1)), replace=False)
        for c in chans:
            lag = int(rng.integers(0, 500))
            a = int(t0 * FS) + lag
            mm[a : a + m, c] += np.round(rng.uniform(200, 3000) * call).astype(np.int16)
            rows.append((a / FS + 0.001, (a + m) / FS - 0.001, int(c)))
    mm.flush()
    det = (
        pd.DataFrame(rows, columns=["start", "stop", "ch"])
        .sort_values("start")
        .reset_index(drop=True)
    )
    return np.load(path, mmap_mode="r"), det


def reference(det: pd.DataFrame, mm: np.ndarray, sr: float, bin_ms: float = 1.0):
    """The original's approach: whole-session masks, then librosa per USV."""
    import librosa
    from scipy.signal import find_peaks

    dt = bin_ms / 1000
    t0, t1 = det.start.min(), det.stop.max()
    nb = math.ceil((t1 - t0) / dt) + 2
    masks = np.zeros((N_CH, nb), bool)
    for s, e, c in det.itertuples(index=False):
        masks[c, int((s - t0) / dt) : math.ceil((e - t0) / dt)] = True
    cov = masks.sum(0).astype(np.int32)
    act = np.flatnonzero(np.diff(np.concatenate([[0], (cov > 0).astype(np.int8), [0]])))
    usvs = []
    for a, b in zip(act[::2], act[1::2]):
        pc = np.concatenate([[0], cov[a:b], [0]])
        peaks, _ = find_peaks(pc, height=8)
        cuts = [a]
        for p, q in zip(peaks[:-1], peaks[1:]):
            v = p + int(np.argmin(pc[p : q + 1]))
            if pc[v] < 0.5 * min(pc[p], pc[q]):
                cuts.append(a + v - 1)
        cuts.append(b)
        for lo, hi in zip(cuts[:-1], cuts[1:]):
            lvl = 0.5 * cov[lo:hi].max()
            idx = np.flatnonzero(cov[lo:hi] >= lvl)
            left, right = lo + idx[0], lo + idx[-1]
            chs = np.flatnonzero(masks[:, left : right + 1].any(1))
            usvs.append((t0 + left * dt, t0 + (right + 1) * dt, chs))
    lower = int(30000 / (sr / 512))
    out = []
    for s, e, chs in usvs:
        w = mm[int(s * sr) : math.ceil(e * sr), :]
        peak = int(np.argmax(np.max(w, 0)))
        mean = int(np.argmax(np.mean(np.abs(w), 0)))
        if len(chs) > 1:
            S = np.abs(librosa.stft(w[:, chs].astype(np.float32).T, n_fft=512))
            c = np.corrcoef(S[:, lower:, :].reshape(len(chs), -1))
            val = float(np.mean(c[np.triu_indices(len(chs), 1)]))
        else:
            P = np.abs(librosa.stft(w[:, chs[0]].astype(np.float32), n_fft=512)) ** 2
            val = float(np.var(P / P.max()))
        out.append((s, e, peak, mean, val))
    return out


def run(seconds: float = 60.0, repeat: int = 2) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        mm, det = synth(seconds, Path(tmp))
        t_ours = best_time(lambda: curate(det, mm, FS), repeat)
        df, _ = curate(det, mm, FS)
        t_ref = best_time(lambda: reference(det, mm, FS), repeat)
        n_ref = len(reference(det, mm, FS))
        peaks = {}
        for secs in (seconds / 4, seconds):
            m2, d2 = synth(secs, Path(tmp), seed=1)
            tracemalloc.start()
            curate(d2, m2, FS)
            peaks[secs] = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
    res = {"seconds": seconds, "detections": len(det), "usvs": len(df), "usvs_ref": n_ref,
           "usv_per_s": len(df) / t_ours, "usv_per_s_ref": n_ref / t_ref, "speedup": t_ref / t_ours,
           "x_realtime": seconds / t_ours, "peak_mb": peaks}  # fmt: skip
    print(
        f"synthetic {seconds:.0f} s x {N_CH} ch, {len(det)} detections -> {len(df)} USVs (reference: {n_ref})"
    )
    print(
        f"  curate (ours)           : {res['usv_per_s']:8.1f} USVs/s, {res['x_realtime']:6.1f} x real time"
    )
    print(f"  original's approach     : {res['usv_per_s_ref']:8.1f} USVs/s (no acoustic features)")
    print(f"  ratio ours / original   : {res['speedup']:8.2f} x")
    print(
        "  peak traced memory      : "
        + ", ".join(f"{v:.1f} MiB at {k:.0f} s" for k, v in peaks.items())
    )
    return res


if __name__ == "__main__":
    run(float(sys.argv[1]) if len(sys.argv) > 1 else 60.0)
