"""E-phys throughput: concatenation against ``cat``, sync-word extraction against a plain read.

Writes ``K`` SpikeGLX-like recordings (385 int16 channels, ``MB`` MiB each, with metas) in a temporary
folder, then times, best of ``REPEATS``:

(a) ``cat f1 .. fK > out`` (coreutils; in-kernel copy on recent versions) against
    :func:`usvflow.ephys.concat.concatenate_recordings` (checks, ``copy_file_range`` copy, meta),
    both without fsync (page cache), and both followed by an fsync of the output; each run writes a
    new file after a ``sync`` (so one run's writeback does not slow the next);
(b) a plain sequential read of one recording (``readinto`` of 32 MiB blocks) against
    :func:`usvflow.sync.ev.extract_sync_word` on the same file (reads everything, keeps one column).

Goal (issues 5 and 6): both ratios >= 0.8. Files are read from the page cache (just written), so
the references are memory-bandwidth bound: the hardest case for the Python side.

    python bench/bench_concat.py [MiB per recording] [recordings]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from _timing import best_time, plain_read

from usvflow.ephys.concat import concatenate_recordings
from usvflow.io.spikeglx import write_meta
from usvflow.simulate.ephys import np1_meta
from usvflow.sync.ev import extract_sync_word

NCH = 385
REPEATS = 5


def _write(folder: Path, k: int, mib: int) -> list[tuple[Path, Path]]:
    rng = np.random.default_rng(0)
    block = rng.integers(-300, 300, size=(1 << 20) // 2, dtype=np.int16).tobytes()  # 1 MiB
    n = (mib << 20) // (2 * NCH)
    size = n * NCH * 2
    out = []
    for i in range(k):
        b = folder / f"2025043{i}_120000.imec0.ap.bin"
        with open(b, "wb") as fh:
            left = size
            while left:
                w = min(left, len(block))
                fh.write(block[:w])
                left -= w
        m = b.with_suffix(".meta")
        write_meta(m, np1_meta(b.stem, "imec0", NCH - 1, n, "23280196", "1", 0))
        out.append((b, m))
    return out


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def run(mib: int = 256, k: int = 3) -> dict:
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        tmp = Path(tmp)
        recs = _write(tmp, k, mib)
        total = sum(b.stat().st_size for b, _ in recs)
        out_cat, out_ours = tmp / "cat.bin", tmp / "concatenated_20250430_imec0.ap.bin"
        cat_cmd = "cat " + " ".join(f"'{b}'" for b, _ in recs) + f" > '{out_cat}'"

        def cat(fsync=False):
            subprocess.run(cat_cmd, shell=True, check=True)
            if fsync:
                _fsync(out_cat)

        def ours(fsync=False):
            concatenate_recordings(recs, out_ours, out_ours.with_suffix(".meta"), fsync=fsync)

        plain_read(recs[0][0])  # warm the page cache
        res = {}

        def clean():
            for p in (out_cat, out_ours):
                if p.exists():
                    p.unlink()
            os.sync()

        for fs in (False, True):
            t_cat = best_time(lambda fs=fs: cat(fs), REPEATS, clean)
            t_ours = best_time(lambda fs=fs: ours(fs), REPEATS, clean)
            tag = "fsync" if fs else "page cache"
            res[f"concat_{tag}"] = t_cat / t_ours
            print(f"concatenation ({tag}): {k} x {mib} MiB: cat {total / t_cat / 1e9:.2f} GB/s, "
                  f"usvflow {total / t_ours / 1e9:.2f} GB/s, ratio {t_cat / t_ours:.2f} (goal >= 0.8)")  # fmt: skip
        cat()
        ours()
        assert out_cat.read_bytes() == out_ours.read_bytes()

        b, m = recs[0]
        npy = tmp / "sync.npy"
        t_read = best_time(lambda: plain_read(b), REPEATS)
        t_sync = best_time(lambda: extract_sync_word(b, m, npy), REPEATS)
        size = b.stat().st_size
        res["sync_word"] = t_read / t_sync
        print(f"sync word: {mib} MiB: plain read {size / t_read / 1e9:.2f} GB/s, extraction "
              f"{size / t_sync / 1e9:.2f} GB/s, ratio {t_read / t_sync:.2f} (goal >= 0.8)")  # fmt: skip
    return res


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    run(*args)
