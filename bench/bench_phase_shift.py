"""ADC phase-shift copy throughput: ``usvflow.ephys.phase_shift.phase_shift_copy`` (SpikeInterface's
``phase_shift`` computation in chunks, int16 rounding, sync word copied) on 1 and 2 threads, against
SpikeInterface's own ``phase_shift`` driven the same way and a plain read of the same file.

Writes one NP1.0-like recording (384 AP channels + the sync word, ``SECONDS`` s at 30 kHz) and times,
best of ``REPEATS``, each copy as wall and CPU seconds (× real time per core = recording seconds per
CPU second: the figure that holds on a loaded machine) and a plain sequential read. The outputs are
compared byte for byte.

    python bench/bench_phase_shift.py [seconds]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _timing import best_time, plain_read

from usvflow.ephys.phase_shift import phase_shift_copy
from usvflow.io.spikeglx import parse_meta, write_meta
from usvflow.simulate.ephys import np1_meta

SECONDS = 10.0
REPEATS = 2


def _spikeinterface_copy(b, m, out, chunk=65536, margin=4096):
    """SpikeInterface's lazy ``phase_shift`` read chunk by chunk (what this step used before)."""
    import spikeinterface.core as sc
    from spikeinterface.preprocessing import astype, phase_shift

    from usvflow.ephys.phase_shift import adc_sample_shifts

    meta = parse_meta(m)
    rec = sc.BinaryRecordingExtractor(
        file_paths=[str(b)],
        sampling_frequency=float(meta.sample_rate),
        dtype="int16",
        num_channels=meta.n_saved_chans,
        time_axis=0,
    )
    n, n_ap = rec.get_num_samples(), meta.n_ap
    ap = astype(rec.select_channels(rec.channel_ids[:n_ap]), "float64")
    sh = phase_shift(
        ap,
        margin_ms=margin * 1000.0 / meta.sample_rate,
        inter_sample_shift=adc_sample_shifts(meta),
        dtype="float64",
    )
    with open(out, "wb") as fh:
        for a in range(0, n, chunk):
            b_ = min(n, a + chunk)
            o = np.empty((b_ - a, meta.n_saved_chans), np.int16)
            o[:, :n_ap] = np.clip(
                np.rint(sh.get_traces(start_frame=a, end_frame=b_)), -32768, 32767
            )
            o[:, n_ap:] = rec.get_traces(start_frame=a, end_frame=b_)[:, n_ap:]
            fh.write(o.tobytes())


def _cpu_timed(fn, *args):
    t, c = time.perf_counter(), time.process_time()
    fn(*args)
    return time.perf_counter() - t, time.process_time() - c


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
        mib = b.stat().st_size / 2**20
        print(f"phase-shift copy, 385 ch x {seconds:g} s ({mib:.0f} MiB):")
        cases = {
            "ours, 1 thread": lambda o: phase_shift_copy(b, m, o, tmp / "o.meta", workers=1),
            "ours, 2 threads": lambda o: phase_shift_copy(b, m, o, tmp / "o.meta", workers=2),
            "SpikeInterface phase_shift": lambda o: _spikeinterface_copy(b, m, o),
        }
        outs = {}
        for name, fn in cases.items():
            out = tmp / f"{len(outs)}.bin"
            wall, cpu = min(_cpu_timed(fn, out) for _ in range(REPEATS))
            outs[name] = out.read_bytes()
            print(
                f"  {name}: {wall:.2f} s wall ({seconds / wall:.2f}x real time), {cpu:.2f} CPU s "
                f"({seconds / cpu:.2f}x real time per core)"
            )
        same = len({hash(v) for v in outs.values()}) == 1
        t_read = best_time(lambda: plain_read(b), REPEATS)
        print(f"  outputs identical: {same}; plain read {t_read:.2f} s")


if __name__ == "__main__":
    run(*(float(x) for x in sys.argv[1:2]))
