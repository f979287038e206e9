"""Blockwise 16-bit PCM WAV reading and atomic writing (the streamed audio stages' own I/O).

Nothing here holds a whole file in memory: :class:`WavReader` reads any sample range (zero-padded
outside the file, which is what the STFT and FIR stages need at the borders) with plain ``seek`` +
``read`` (no ``mmap``, so resident memory stays the size of a block), and :class:`WavWriter` appends
blocks to a temporary file beside the target and renames it into place only when the ``with`` block
ends without an error (a failed or killed step leaves no partial WAV at the documented path).

Bad input stops with :class:`usvflow.io.atomic.InputError` naming the file and the problem: not a
RIFF/WAVE file, not 16-bit integer PCM, no ``fmt``/``data`` chunk, a data chunk cut short
(truncated file), the wrong channel count or sample rate when the caller states what it expects.
"""

from __future__ import annotations

import contextlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from usvflow.io.atomic import InputError, atomic_path

_PCM = 1
_EXTENSIBLE = 0xFFFE
_HEADER_BYTES = 44


@dataclass(frozen=True)
class WavInfo:
    """Where the samples of a 16-bit PCM WAV are and what they are."""

    path: Path
    sample_rate: int
    n_channels: int
    n_samples: int  # per channel ("frames" in WAV terms)
    data_offset: int  # byte offset of the first sample

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.sample_rate


def wav_info(path: str | os.PathLike) -> WavInfo:
    """Parse the RIFF chunks of ``path``; InputError (naming the file) if it is not usable 16-bit PCM."""
    path = Path(path)
    try:
        size = path.stat().st_size
        fh = open(path, "rb")
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    with fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise InputError(path, "not a RIFF/WAVE file")
        fmt = None
        pos = 12
        while pos + 8 <= size:
            fh.seek(pos)
            cid, csize = struct.unpack("<4sI", fh.read(8))
            body = pos + 8
            if cid == b"fmt ":
                raw = fh.read(min(csize, 40))
                if len(raw) < 16:
                    raise InputError(path, "fmt chunk too short")
                tag, nch, rate, _, align, bits = struct.unpack("<HHIIHH", raw[:16])
                if tag == _EXTENSIBLE and len(raw) >= 26:
                    tag = struct.unpack("<H", raw[24:26])[0]  # first two bytes of the sub-format GUID
                fmt = (tag, nch, rate, align, bits)
            elif cid == b"data":
                if fmt is None:
                    raise InputError(path, "data chunk before the fmt chunk")
                tag, nch, rate, align, bits = fmt
                if tag != _PCM or bits != 16:
                    raise InputError(path, f"not 16-bit integer PCM (format tag {tag}, {bits} bits)")
                if nch < 1 or align != 2 * nch:
                    raise InputError(path, f"inconsistent fmt chunk ({nch} channels, block align {align})")
                if rate <= 0:
                    raise InputError(path, f"invalid sample rate {rate}")
                available = size - body
                if csize > available:
                    raise InputError(
                        path,
                        f"truncated: the data chunk declares {csize // align} samples per channel, "
                        f"the file holds {available // align}",
                    )
                return WavInfo(path, int(rate), int(nch), int(csize // align), body)
            pos = body + csize + (csize & 1)  # chunks are word aligned
        raise InputError(path, "no fmt chunk" if fmt is None else "no data chunk")


def check_format(info: WavInfo, *, sample_rate: int | None = None, n_channels: int | None = None) -> None:
    """InputError naming the file if its rate or channel count is not the expected one."""
    if n_channels is not None and info.n_channels != n_channels:
        raise InputError(info.path, f"expected {n_channels} channel(s), found {info.n_channels}")
    if sample_rate is not None and info.sample_rate != sample_rate:
        raise InputError(info.path,
                         f"expected a sample rate of {sample_rate} Hz, found {info.sample_rate} Hz")


class WavReader:
    """Random-access block reader of a 16-bit PCM WAV (``with WavReader(p) as r: r.read(a, b)``)."""

    def __init__(self, path: str | os.PathLike, *, n_channels: int | None = None,
                 sample_rate: int | None = None):
        self.info = wav_info(path)
        check_format(self.info, sample_rate=sample_rate, n_channels=n_channels)
        self._fh = open(self.info.path, "rb")

    @property
    def n_samples(self) -> int:
        return self.info.n_samples

    @property
    def sample_rate(self) -> int:
        return self.info.sample_rate

    def read(self, start: int, stop: int, out: np.ndarray | None = None) -> np.ndarray:
        """Samples ``[start, stop)`` as int16, zeros where the range lies outside the file.

        Mono files give shape ``(n,)``, multichannel ``(n, channels)``. ``out`` (int16, that shape)
        avoids an allocation per block.
        """
        nch = self.info.n_channels
        n = max(0, stop - start)
        shape = (n,) if nch == 1 else (n, nch)
        if out is None:
            out = np.empty(shape, np.int16)
        elif out.shape != shape or out.dtype != np.int16:
            raise ValueError(f"out must be int16 of shape {shape}")
        lo, hi = max(start, 0), min(stop, self.info.n_samples)
        if hi <= lo:
            out[...] = 0
            return out
        out[: lo - start] = 0
        out[hi - start:] = 0
        dest = out[lo - start: hi - start]
        self._fh.seek(self.info.data_offset + 2 * nch * lo)
        view = memoryview(dest.reshape(-1).view(np.uint8))
        got = self._fh.readinto(view)
        if got != view.nbytes:
            raise InputError(self.info.path, "truncated while reading (file changed on disk?)")
        if not np.little_endian:  # pragma: no cover - WAV is little-endian
            dest.byteswap(inplace=True)
        return out

    def blocks(self, block: int):
        """Yield ``(start, samples)`` for consecutive blocks covering the file."""
        for a in range(0, self.info.n_samples, block):
            yield a, self.read(a, min(a + block, self.info.n_samples))

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> "WavReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class WavWriter:
    """Append int16 blocks to a WAV that appears at ``path`` only when the ``with`` block succeeds."""

    def __init__(self, path: str | os.PathLike, sample_rate: int, n_channels: int = 1):
        self.path = Path(path)
        self.sample_rate = int(sample_rate)
        self.n_channels = int(n_channels)
        self.n_samples = 0
        self._stack: contextlib.ExitStack | None = None
        self._fh = None

    def __enter__(self) -> "WavWriter":
        self._stack = contextlib.ExitStack()
        try:
            tmp = self._stack.enter_context(atomic_path(self.path))
            self._fh = self._stack.enter_context(open(tmp, "wb"))
            self._fh.write(self._header(0))
        except BaseException:
            self._stack.close()
            raise
        return self

    def _header(self, n_samples: int) -> bytes:
        align = 2 * self.n_channels
        data_bytes = n_samples * align
        return struct.pack(
            "<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + data_bytes, b"WAVE", b"fmt ", 16, _PCM,
            self.n_channels, self.sample_rate, self.sample_rate * align, align, 16, b"data", data_bytes,
        )

    def write(self, samples: np.ndarray) -> None:
        """Append samples (int16; shape ``(n,)`` for mono, ``(n, channels)`` otherwise)."""
        a = np.asarray(samples)
        if a.dtype != np.int16:
            raise TypeError(f"WavWriter takes int16 samples, got {a.dtype}")
        mono = self.n_channels == 1
        if (mono and a.ndim != 1) or (not mono and a.shape[1:] != (self.n_channels,)):
            raise ValueError(f"samples of shape {a.shape} do not fit {self.n_channels} channel(s)")
        if (self.n_samples + len(a)) * 2 * self.n_channels + 36 > 0xFFFFFFFF:
            raise ValueError(f"{self.path}: more than 4 GiB of samples do not fit a RIFF WAV")
        self._fh.write(np.ascontiguousarray(a, dtype="<i2").tobytes())
        self.n_samples += len(a)

    def __exit__(self, exc_type, exc, tb):
        stack = self._stack
        if exc_type is None:
            try:  # fill in the sizes, then close and rename (ExitStack: file first, then atomic_path)
                self._fh.seek(0)
                self._fh.write(self._header(self.n_samples))
                self._fh.flush()
                os.fsync(self._fh.fileno())
            except BaseException as err:
                stack.__exit__(type(err), err, err.__traceback__)
                raise
        return stack.__exit__(exc_type, exc, tb)


def write_wav(path: str | os.PathLike, sample_rate: int, samples: np.ndarray) -> None:
    """Write a whole int16 array atomically (tests and small files)."""
    a = np.asarray(samples)
    with WavWriter(path, sample_rate, 1 if a.ndim == 1 else a.shape[1]) as w:
        w.write(a)


def read_wav(path: str | os.PathLike) -> tuple[int, np.ndarray]:
    """Read a whole file (tests and small files): ``(sample_rate, int16 samples)``."""
    with WavReader(path) as r:
        return r.sample_rate, r.read(0, r.n_samples)


def stream_over_array(x, stream) -> np.ndarray:
    """Run a streaming step on an in-memory int16 array (tests, small inputs).

    ``stream(read, n)`` must yield ``(start, block)`` pairs like the file versions do; ``read(lo, hi)``
    returns samples ``lo..hi`` of ``x``, zero outside it.
    """
    x = np.asarray(x, dtype=np.int16)
    n = len(x)

    def read(lo, hi):
        buf = np.zeros(hi - lo, np.int16)
        s, e = max(lo, 0), min(hi, n)
        if e > s:
            buf[s - lo: e - lo] = x[s:e]
        return buf

    out = np.empty(n, np.int16)
    for a, blk in stream(read, n):
        out[a: a + len(blk)] = blk
    return out
