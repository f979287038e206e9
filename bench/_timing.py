"""Timing helpers shared by the benchmarks (imported as a sibling module: bench/ is on sys.path when a
benchmark runs, alone or through bench/run.py)."""

from __future__ import annotations

import time


def best_time(fn, repeat: int = 3, before=None, keep: bool = False):
    """Best wall time (s) of ``repeat`` calls of ``fn``; ``before`` runs untimed before each call
    (remove an output, flush dirty pages). ``keep``: return ``(seconds, result of the last call)``."""
    best, out = float("inf"), None
    for _ in range(repeat):
        if before is not None:
            before()
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return (best, out) if keep else best


def plain_read(path, block: int = 32 << 20) -> None:
    """Read a file sequentially into one reused buffer: the reference 'disk/page-cache speed'."""
    buf = bytearray(block)
    with open(path, "rb", buffering=0) as fh:
        while fh.readinto(buf):
            pass
