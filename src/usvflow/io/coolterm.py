"""The CoolTerm capture of the Arduino sync-pulse generator.

The Arduino prints each inter-pulse interval (the LOW time after each 250 ms LED pulse, an integer
number of milliseconds) over serial; CoolTerm captures it to ``sync/CoolTerm Capture (…) <date>.txt``.
The file has 3 header lines, then one integer per line. As in usv-playpen, the first file in ``sync/``
whose name contains ``CoolTerm`` is the log.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from usvflow.io.atomic import InputError, read_text

__all__ = ["HEADER_LINES", "find_coolterm_log", "read_ipis"]

HEADER_LINES = 3


def read_ipis(path: str | os.PathLike) -> np.ndarray:
    """Arduino inter-pulse intervals (ms, int64) from a CoolTerm capture.

    Skips the first 3 lines, blank lines and surrounding whitespace (CRLF is fine). A line that is not
    a non-negative integer raises :class:`InputError` naming the file and line number, as does a file
    without any interval.
    """
    path = Path(path)
    text = read_text(path, "a CoolTerm capture")
    values: list[int] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if lineno <= HEADER_LINES:
            continue
        s = line.strip().strip("\x00")
        if not s:
            continue
        if not s.isascii() or not s.isdigit():
            raise InputError(
                path, f"line {lineno}: expected an integer interval in ms, got {s[:60]!r}"
            )
        values.append(int(s))
    if not values:
        raise InputError(path, f"no inter-pulse intervals after the {HEADER_LINES} header lines")
    return np.asarray(values, dtype=np.int64)


def find_coolterm_log(sync_dir: str | os.PathLike) -> Path:
    """The first file (sorted by name) in ``sync_dir`` whose name contains ``CoolTerm``."""
    sync_dir = Path(sync_dir)
    if not sync_dir.is_dir():
        raise InputError(sync_dir, "sync directory not found")
    for p in sorted(sync_dir.iterdir()):
        if "CoolTerm" in p.name and p.is_file():
            return p
    raise InputError(
        sync_dir, "no CoolTerm capture file (a name containing 'CoolTerm') in this directory"
    )
