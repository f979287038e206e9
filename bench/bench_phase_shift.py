"""ADC phase-shift copy throughput: ``usvflow.ephys.phase_shift.phase_shift_copy`` (SpikeInterface's
``phase_shift`` in chunks, int16 rounding, sync word copied) against a plain read of the same file.

Writes one NP1.0-like recording (384 AP channels + the sync word, ``SECONDS`` s at 30 kHz) and times,
best of ``REPEATS``, the copy (as × real time of the recording) and a plain sequential read.

    python bench/bench_phase_shift.py [seconds]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from _timing import best_time, plain_read

from usvflow.ephys.phase_shift import phase_shift_copy
from usvflow.io.spikeglx import write_meta
from usvflow.simulate.ephys import np1_meta

SECONDS = 10.0
REPEATS = 2


def run(seconds: float = SECONDS) -> None:
    n = int(seconds * 30000)
    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parent) as tmp:
        tmp = Path(tmp)
        b, m = tmp / "r.imec0.ap.bin", tmp / "r.imec0.ap.meta"
        rng = np.random.default_rng(0)
        with open(b, "wb") as fh:
            for a in range(0, n, 30000):
                k = min(30000, n - a)
                fh.write(rng.integers(-200, 200, (k, 385), dtype=np.int16).tobytes())
        write_meta(m, np1_meta("20250430_145017", "imec0", 384, n, "1", "1", 0), newline="\r\n")
        out = tmp / "o.bin"
        t_copy = best_time(lambda: phase_shift_copy(b, m, out, tmp / "o.meta"), REPEATS)
        t_read = best_time(lambda: plain_read(b), REPEATS)
        mib = b.stat().st_size / 2**20
        print(
            f"phase-shift copy, 385 ch x {seconds:g} s ({mib:.0f} MiB): {t_copy:.2f} s = "
            f"{seconds / t_copy:.2f}x real time; plain read {t_read:.2f} s ({t_read / t_copy:.3f}x of its speed)"
        )


if __name__ == "__main__":
    run(*(float(x) for x in sys.argv[1:2]))
