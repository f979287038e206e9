"""Row ranges of large binary files (memmaps, SpikeGLX ``.bin``) read without mapping them.

A ``np.memmap`` keeps every page it has touched in the process's resident set until the kernel needs
the memory back, so a step that reads a whole 14 GB memmap or a 28 GB ``.bin`` through one shows a
resident size that grows with the recording (and counts against a cluster job's memory limit).
:class:`RowReader` reads the rows asked for with ``preadv`` into a new array instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .atomic import InputError


class RowReader:
    """Read-only ``(n_rows, n_columns)`` access to a headerless C-order binary file by plain reads.

    ``r[a:b]`` gives rows ``a..b-1`` (all columns) and ``r[a:b, cols]`` a selection of columns, as
    new arrays (numpy's slice clipping; row steps other than 1 are refused). Resident memory is what
    was read; nothing of the file stays mapped.
    """

    def __init__(self, path: str | os.PathLike, n: int, nch: int, dtype, offset: int = 0):
        self.path = Path(path)
        self.shape = (int(n), int(nch))
        self.dtype = np.dtype(dtype)
        self.ndim = 2
        self.offset = int(offset)
        self._fh = open(self.path, "rb", buffering=0)  # closed with the reader (or when collected)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):
        cols = slice(None)
        if isinstance(key, tuple):
            if len(key) != 2:
                raise IndexError(
                    f"{self.path.name}: expected [rows] or [rows, channels], got {key!r}"
                )
            key, cols = key
        if not isinstance(key, slice):
            raise TypeError(f"{self.path.name}: rows must be a slice, got {type(key).__name__}")
        a, b, step = key.indices(self.shape[0])
        if step != 1:
            raise IndexError(f"{self.path.name}: row step {step} is not supported")
        rows = self.read(a, max(a, b))
        return rows[:, cols]

    def read(self, a: int, b: int) -> np.ndarray:
        """Rows ``[a, b)`` (inside the file) as a new ``(b - a, n_channels)`` array."""
        n, nch = self.shape
        if not 0 <= a <= b <= n:
            raise IndexError(f"{self.path.name}: rows [{a}, {b}) outside [0, {n})")
        out = np.empty((b - a, nch), self.dtype)
        view = memoryview(out.reshape(-1).view(np.uint8))
        pos, off = self.offset + a * nch * self.dtype.itemsize, 0
        while off < len(view):
            got = os.preadv(self._fh.fileno(), [view[off:]], pos + off)
            if got <= 0:
                raise InputError(self.path, f"unexpected end of file reading rows [{a}, {b})")
            off += got
        return out

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> RowReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
