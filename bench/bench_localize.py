"""Built-in USV localization: USVs per second and accuracy, against a plain one-stage SRP-PHAT.

Synthetic calls of every simulated type emitted at random points of the arena and propagated to the
24 simulated microphones (delays, 1/r attenuation, 10 LSB noise). Timed on one core:

(a) ``usvflow.usv.localize.localize``: envelope SRP on a 1-cm grid, then the GCC on a 1-mm grid
    around the best point;
(b) the reference: plain SRP-PHAT (full band, the GCC itself) on a 2-mm grid over the whole arena at
    the true source height (so favoured: no height search).

    python bench/bench_localize.py [n_usvs]
"""

from __future__ import annotations

import sys
import time

import numpy as np

from usvflow.simulate.calls import draw_call, waveform
from usvflow.simulate.geometry import ARENA_SIDE_M, microphone_positions
from usvflow.usv.localize import _grid, _srp, gcc_phat, localize

SR, C = 250_000, 343.0
MICS = microphone_positions()
HALF = ARENA_SIDE_M / 2


def clip(rng):
    call = draw_call(rng)
    src = np.array([*rng.uniform(-HALF + 0.03, HALF - 0.03, 2), rng.uniform(0.015, 0.05)])
    n = int((call.duration_s + 0.02) * SR)
    t = np.arange(n) / SR
    d = np.linalg.norm(MICS - src, axis=1)
    x = np.stack(
        [3000 * 0.3 / d[j] * waveform(call, t - 0.01 - d[j] / C) for j in range(24)], axis=1
    )
    return (x + rng.normal(0, 10, x.shape)).astype(np.float32), src


def reference(x, z):
    max_lag = int(np.ceil(1.0 / C * SR)) + 2
    g = gcc_phat(x[: int(0.05 * SR)], SR, max_lag, 30e3, 120e3, dynamic_db=200.0).real.astype(
        np.float32
    )
    pts = _grid(np.array([-HALF, -HALF]), np.array([HALF, HALF]), 0.002, [z])
    return pts[int(np.argmax(_srp(g, pts, MICS, SR, C, max_lag)))]


def run(n: int = 20) -> dict:
    rng = np.random.default_rng(0)
    clips = [clip(rng) for _ in range(n)]
    bounds = ((-HALF, HALF), (-HALF, HALF))
    t = time.perf_counter()
    ours = [localize(x, SR, MICS, bounds)[0] for x, _ in clips]
    t_ours = time.perf_counter() - t
    t = time.perf_counter()
    ref = [reference(x, s[2]) for x, s in clips]
    t_ref = time.perf_counter() - t
    e_ours = np.array([np.linalg.norm(o[:2] - s[:2]) for o, (_, s) in zip(ours, clips)])
    e_ref = np.array([np.linalg.norm(o[:2] - s[:2]) for o, (_, s) in zip(ref, clips)])
    res = {"usv_per_s": n / t_ours, "usv_per_s_ref": n / t_ref, "speedup": t_ref / t_ours,
           "median_err_mm": 1e3 * np.median(e_ours), "median_err_ref_mm": 1e3 * np.median(e_ref),
           "within_1cm": float(np.mean(e_ours < 0.01)), "within_1cm_ref": float(np.mean(e_ref < 0.01))}  # fmt: skip
    print(f"{n} synthetic USVs (all call types), 24 microphones, 250 kHz")
    print(f"  localize (ours)          : {res['usv_per_s']:6.2f} USVs/s, median error {res['median_err_mm']:.1f} mm, "
          f"{100 * res['within_1cm']:.0f} % within 1 cm")  # fmt: skip
    print(f"  plain SRP-PHAT, 2-mm grid: {res['usv_per_s_ref']:6.2f} USVs/s, median error {res['median_err_ref_mm']:.1f} mm, "
          f"{100 * res['within_1cm_ref']:.0f} % within 1 cm")  # fmt: skip
    print(f"  ratio ours / reference   : {res['speedup']:6.2f} x faster")
    return res


if __name__ == "__main__":
    run(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
