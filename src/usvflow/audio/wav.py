"""Streamed 16-bit PCM WAV input and output.

The audio chain never holds a whole recording in memory: a 20-minute session is 300 M samples per
channel. This module reads WAV files block by block (consecutive files as one stream), reads sample
ranges of a file at random positions, and writes WAV files block by block.

* :func:`wav_info` reads the header (libsndfile must accept the file, and the RIFF chunks are
  parsed here to find the sample data); a file whose ``data`` chunk is shorter than its header
  claims (a truncated copy, an interrupted recording) is an :class:`~usvflow.io.atomic.InputError`
  naming the file.
* :func:`iter_blocks` yields ``(n, channels)`` int16 blocks of one or more files joined in time.
* :class:`WavReader` reads ``[a, b)`` sample ranges, zero-filled outside the file (optionally
  checking the channel count and sample rate the caller expects), with plain ``seek`` + ``read``
  (no ``mmap``, so resident memory stays the size of a block).
* :class:`WavWriter` writes int16 PCM_16 blockwise to a temporary name and renames it over the
  target when closed without error (removed on error); :class:`OutputSet` does the same for a group
  of outputs that must appear together or not at all.

Files past 4 GiB: a RIFF WAV counts its bytes in 32 bits, so a ``data`` chunk stops at 4 GiB (a
12-channel Avisoft file at 250 kHz passes it after 11.9 minutes, a mono channel after 2.4 hours).
The reader accepts RF64 (EBU Tech 3306: ``RF64`` header, 64-bit sizes in a ``ds64`` chunk) and
plain RIFF files whose size fields were left at ``0xFFFFFFFF``. The writer writes a classic 44-byte
RIFF header while the data fits, and RF64 when it does not: from the start when the expected length
(``frames_hint``) says so, otherwise by inserting the ``ds64`` chunk when the file is finished.
* :func:`read_wav`, :func:`write_wav` and :func:`stream_over_array` handle whole in-memory arrays
  (tests, small inputs).

Both attribute vocabularies are accepted: ``samplerate``/``channels``/``frames`` (soundfile names)
and ``sample_rate``/``n_channels``/``n_samples``.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from ..io.atomic import InputError, temporary_name, write_json

BLOCK = 1 << 20  # samples per block (per channel) of the streamed readers
#: ``fsync`` every finished output before it is renamed into place (durable atomic outputs). Costs
#: the disk write time inside the step; the benchmark measures both settings.
FSYNC = True
_PCM, _EXTENSIBLE = 1, 0xFFFE
_RIFF_HEADER, _RF64_HEADER = 44, 80  # bytes before the samples in the files WavWriter writes
_NO_SIZE = b"\xff\xff\xff\xff"  # a 32-bit size field that defers to the ds64 chunk
_MOVE_BLOCK = 1 << 26


def _insert_ds64_room(fh, header: int, data_bytes: int) -> None:
    """Move ``data_bytes`` of samples that start at ``header`` forward by the size of a ``ds64``
    chunk (from the end backwards, in blocks), so that an RF64 header fits before them."""
    shift = _RF64_HEADER - _RIFF_HEADER
    end = data_bytes
    while end > 0:
        start = max(0, end - _MOVE_BLOCK)
        fh.seek(header + start)
        buf = fh.read(end - start)
        fh.seek(header + start + shift)
        fh.write(buf)
        end = start


@dataclass(frozen=True)
class WavInfo:
    """What the header of a WAV file says (and where its samples are)."""

    path: str
    samplerate: int
    channels: int
    frames: int
    subtype: str  # "PCM_16", "PCM_24", "FLOAT", ... (as soundfile names it)
    data_offset: int  # byte offset of the first sample
    block_align: int  # bytes per frame

    @property
    def seconds(self) -> float:
        return self.frames / self.samplerate

    # aliases (sample_rate / n_channels / n_samples vocabulary)
    @property
    def sample_rate(self) -> int:
        return self.samplerate

    @property
    def n_channels(self) -> int:
        return self.channels

    @property
    def n_samples(self) -> int:
        return self.frames

    @property
    def duration_s(self) -> float:
        return self.seconds


def _subtype(tag: int, bits: int) -> str:
    if tag == _PCM:
        return {8: "PCM_U8", 16: "PCM_16", 24: "PCM_24", 32: "PCM_32"}.get(bits, f"PCM_{bits}")
    if tag == 3:
        return {32: "FLOAT", 64: "DOUBLE"}.get(bits, f"FLOAT_{bits}")
    return f"FORMAT_0x{tag:04X}"


def _parse_riff(path: Path, size: int) -> tuple[int, int, int, int, str, int, int]:
    """(rate, channels, block_align, data_offset, subtype, declared_data_bytes, available_bytes)."""
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[8:12] != b"WAVE" or head[:4] not in (b"RIFF", b"RF64"):
            raise InputError(path, "not a WAV file (no RIFF/WAVE header)")
        rf64 = head[:4] == b"RF64"
        ds64_data = None
        fmt = None
        pos = 12
        while True:
            fh.seek(pos)
            ch = fh.read(8)
            if len(ch) < 8:
                break
            cid, csize = ch[:4], struct.unpack("<I", ch[4:])[0]
            body = pos + 8
            if cid == b"ds64":
                ds = fh.read(24)
                if len(ds) == 24:
                    ds64_data = struct.unpack("<Q", ds[8:16])[0]
            elif cid == b"fmt ":
                f = fh.read(min(csize, 40))
                if len(f) < 16:
                    raise InputError(path, "truncated WAV header: the fmt chunk is incomplete")
                tag, nch, rate, _, align, bits = struct.unpack("<HHIIHH", f[:16])
                if tag == _EXTENSIBLE and len(f) >= 26:
                    tag = struct.unpack("<H", f[24:26])[0]
                fmt = (tag, nch, rate, align, bits)
            elif cid == b"data":
                if fmt is None:
                    raise InputError(path, "malformed WAV header: data chunk before the fmt chunk")
                tag, nch, rate, align, bits = fmt
                declared = csize
                if rf64 and csize == 0xFFFFFFFF and ds64_data is not None:
                    declared = ds64_data
                available = max(0, size - body)
                if not rf64 and csize == 0xFFFFFFFF:  # length never written (unfinished recording)
                    declared = available
                return rate, nch, align, body, _subtype(tag, bits), declared, available
            pos = body + csize + (csize & 1)
            if pos > size:
                break
        if fmt is None:
            raise InputError(path, "truncated or malformed WAV header: no fmt chunk")
        raise InputError(path, "truncated or malformed WAV file: no data chunk")


def wav_info(path: str | os.PathLike) -> WavInfo:
    """Header of a WAV file; :class:`InputError` naming the file if it is unreadable or truncated."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    rate, nch, align, offset, subtype, declared, available = _parse_riff(path, size)
    if nch < 1 or align < 1 or rate < 1:
        raise InputError(
            path, f"malformed WAV header ({nch} channels, block align {align}, rate {rate} Hz)"
        )
    try:
        info = sf.info(str(path))
    except Exception as exc:  # libsndfile refuses it
        raise InputError(path, f"cannot read the WAV header ({exc})") from None
    if info.samplerate != rate or info.channels != nch:
        raise InputError(path, f"inconsistent WAV header ({info.samplerate} Hz/{info.channels} ch by libsndfile, "
                               f"{rate} Hz/{nch} ch in the fmt chunk)")  # fmt: skip
    if declared > available:
        raise InputError(
            path,
            f"truncated WAV: the header claims {declared // align} frames but the file holds only "
            f"{available // align} ({available} of {declared} data bytes)",
        )
    return WavInfo(
        str(path), int(rate), int(nch), int(declared // align), subtype, int(offset), int(align)
    )


def require_pcm16(info: WavInfo) -> None:
    if info.subtype != "PCM_16":
        raise InputError(info.path, f"sample format {info.subtype}, expected 16-bit PCM")


def check_format(
    info: WavInfo, *, sample_rate: int | None = None, n_channels: int | None = None
) -> None:
    """InputError naming the file if its rate or channel count is not the expected one."""
    if n_channels is not None and info.channels != n_channels:
        raise InputError(info.path, f"expected {n_channels} channel(s), found {info.channels}")
    if sample_rate is not None and info.samplerate != sample_rate:
        raise InputError(
            info.path, f"expected a sample rate of {sample_rate} Hz, found {info.samplerate} Hz"
        )


def _read_into(fh, out: np.ndarray, path) -> None:
    view = memoryview(out).cast("B")
    got = fh.readinto(view)
    if got != view.nbytes:
        raise InputError(path, f"unexpected end of file ({got} of {view.nbytes} bytes read)")


def iter_blocks(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    channels: int | Sequence[int] | None = None,
    block: int = BLOCK,
    start: int = 0,
    stop: int | None = None,
) -> Iterator[np.ndarray]:
    """Stream int16 samples ``[start, stop)`` of consecutive files as one recording.

    Yields ``(n, n_channels)`` arrays (all channels), ``(n, len(channels))`` for a list of
    0-based ``channels``, or ``(n,)`` for one int channel; ``n <= block`` (blocks end at file
    borders). Every file must be 16-bit PCM with the channel count of the first.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    infos = [wav_info(p) for p in paths]
    for inf in infos:
        require_pcm16(inf)
        if inf.channels != infos[0].channels:
            raise InputError(
                inf.path, f"{inf.channels} channels, but {infos[0].path} has {infos[0].channels}"
            )
    total = sum(i.frames for i in infos)
    stop = total if stop is None else min(stop, total)
    nch = infos[0].channels
    if channels is not None and not isinstance(channels, (int, np.integer)):
        channels = list(channels)
    base = 0
    for inf in infos:
        a, b = max(start - base, 0), min(stop - base, inf.frames)
        if a < b:
            with open(inf.path, "rb") as fh:
                fh.seek(inf.data_offset + a * inf.block_align)
                for k in range(a, b, block):
                    n = min(block, b - k)
                    buf = np.empty((n, nch), dtype="<i2")
                    _read_into(fh, buf, inf.path)
                    if channels is None:
                        yield buf
                    elif isinstance(channels, (int, np.integer)):
                        yield np.ascontiguousarray(buf[:, channels])
                    else:
                        yield buf[:, channels]
        base += inf.frames
        if base >= stop:
            break


class WavReader:
    """Random access to int16 samples of one WAV file; ranges outside the file read as zeros.

    ``with WavReader(p) as r: r.read(a, b)``. ``n_channels``/``sample_rate``, when given, are checked
    (InputError naming the file otherwise).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        n_channels: int | None = None,
        sample_rate: int | None = None,
    ):
        self.info = wav_info(path)
        require_pcm16(self.info)
        check_format(self.info, sample_rate=sample_rate, n_channels=n_channels)
        self.path = Path(path)
        self._fh = open(self.path, "rb")

    @property
    def frames(self) -> int:
        return self.info.frames

    @property
    def n_samples(self) -> int:
        return self.info.frames

    @property
    def sample_rate(self) -> int:
        return self.info.samplerate

    @property
    def samplerate(self) -> int:
        return self.info.samplerate

    @property
    def channels(self) -> int:
        return self.info.channels

    @property
    def n_channels(self) -> int:
        return self.info.channels

    def read(self, a: int, b: int, out: np.ndarray | None = None) -> np.ndarray:
        """Samples ``[a, b)`` as int16: ``(b - a,)`` for mono, ``(b - a, channels)`` otherwise.

        Zeros where the range lies outside the file. ``out`` (int16, that shape) avoids an
        allocation per block.
        """
        nch = self.info.channels
        n = max(b - a, 0)
        shape = (n,) if nch == 1 else (n, nch)
        if out is None:
            out = np.empty(shape, np.int16)
        elif out.shape != shape or out.dtype != np.int16:
            raise ValueError(f"out must be int16 of shape {shape}")
        lo, hi = max(a, 0), min(b, self.info.frames)
        if hi <= lo:
            out[...] = 0
            return out
        out[: lo - a] = 0
        out[hi - a :] = 0
        dest = out[lo - a : hi - a]
        self._fh.seek(self.info.data_offset + lo * self.info.block_align)
        _read_into(self._fh, dest.reshape(-1).view(np.uint8), self.path)
        if not np.little_endian:  # pragma: no cover - WAV is little-endian
            dest.byteswap(inplace=True)
        return out

    def blocks(self, block: int = BLOCK):
        """Yield ``(start, samples)`` for consecutive blocks covering the file."""
        for a in range(0, self.info.frames, block):
            yield a, self.read(a, min(a + block, self.info.frames))

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> WavReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _tmp_name(target: Path) -> Path:
    return temporary_name(target)


class WavWriter:
    """Write an int16 PCM_16 WAV block by block.

    With ``atomic=True`` (default) the samples go to a temporary name beside ``path`` that is
    renamed over ``path`` by :meth:`close` (or on leaving a ``with`` block without error) and
    removed on error. With ``atomic=False`` ``path`` itself is written (used by :class:`OutputSet`,
    which renames its temporary files itself). The finished file is ``fsync``'ed before the rename
    when :data:`FSYNC` is set (the default).

    ``WavWriter(path, rate, channels)`` positionally, or with the keywords ``samplerate``/``channels``
    or ``sample_rate``/``n_channels``.
    """

    #: the most data bytes a RIFF header can count (the RIFF size field holds data + 36)
    MAX_DATA = 0xFFFFFFFF - 36

    def __init__(
        self,
        path: str | os.PathLike,
        samplerate: int | None = None,
        channels: int | None = None,
        atomic: bool = True,
        *,
        sample_rate: int | None = None,
        n_channels: int | None = None,
        frames_hint: int | None = None,
    ):
        if samplerate is None:
            samplerate = sample_rate
        elif sample_rate is not None and int(sample_rate) != int(samplerate):
            raise TypeError("WavWriter: samplerate and sample_rate disagree")
        if samplerate is None:
            raise TypeError("WavWriter: missing the sample rate")
        if channels is None:
            channels = 1 if n_channels is None else n_channels
        elif n_channels is not None and int(n_channels) != int(channels):
            raise TypeError("WavWriter: channels and n_channels disagree")
        self.target = Path(path)
        self.samplerate, self.channels = int(samplerate), int(channels)
        self.atomic = atomic
        self.path = _tmp_name(self.target) if atomic else self.target
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.frames = 0
        # RF64 from the start when the expected length does not fit a RIFF header
        self.rf64 = frames_hint is not None and 2 * self.channels * int(frames_hint) > self.MAX_DATA
        self._fh = open(self.path, "w+b")  # read back when RF64 room is made
        self._fh.write(self._header(0))
        self.closed = False

    # aliases (sample_rate / n_channels / n_samples vocabulary)
    @property
    def sample_rate(self) -> int:
        return self.samplerate

    @property
    def n_channels(self) -> int:
        return self.channels

    @property
    def n_samples(self) -> int:
        return self.frames

    def _header(self, data_bytes: int) -> bytes:
        """The header before the samples: 44 bytes (RIFF) or 80 bytes (RF64, with ``ds64``)."""
        align = 2 * self.channels
        fmt = b"fmt " + struct.pack(
            "<IHHIIHH", 16, _PCM, self.channels, self.samplerate, self.samplerate * align, align, 16
        )
        if not self.rf64:
            riff = struct.pack("<I", 36 + data_bytes)
            return b"RIFF" + riff + b"WAVE" + fmt + b"data" + struct.pack("<I", data_bytes)
        riff_size = _RF64_HEADER - 8 + data_bytes
        ds64 = b"ds64" + struct.pack("<IQQQI", 28, riff_size, data_bytes, data_bytes // align, 0)
        return b"RF64" + _NO_SIZE + b"WAVE" + ds64 + fmt + b"data" + _NO_SIZE

    def write(self, samples: np.ndarray) -> None:
        """Append ``(n,)`` (mono) or ``(n, channels)`` samples; values must already be int16."""
        a = np.asarray(samples)
        if a.dtype != np.int16:
            raise TypeError(f"WavWriter.write expects int16 samples, got {a.dtype}")
        if a.ndim == 1:
            a = a[:, None]
        if a.shape[1] != self.channels:
            raise ValueError(f"{a.shape[1]} channels written to a {self.channels}-channel WAV")
        a = np.ascontiguousarray(a, dtype="<i2")
        self._fh.write(memoryview(a).cast("B"))
        self.frames += len(a)

    def write_zeros(self, n: int) -> None:
        """Append ``n`` frames of silence without writing them: the file system keeps a hole that
        reads back as zeros."""
        n = int(n)
        if n < 0:
            raise ValueError(f"write_zeros: negative frame count {n}")
        self._fh.seek(2 * self.channels * n, os.SEEK_CUR)
        self._fh.truncate()  # the file ends after the hole even if nothing follows it
        self.frames += n

    def finish(self) -> None:
        """Write the final header and close the file (no rename)."""
        if self.closed:
            return
        data_bytes = 2 * self.channels * self.frames
        if not self.rf64 and data_bytes > self.MAX_DATA:
            self._fh.flush()
            _insert_ds64_room(self._fh, _RIFF_HEADER, data_bytes)
            self.rf64 = True
        self._fh.seek(0)
        self._fh.write(self._header(data_bytes))
        self._fh.flush()
        if FSYNC:
            os.fsync(self._fh.fileno())
        self._fh.close()
        self.closed = True

    def close(self) -> None:
        """Finish the file and (atomic mode) rename it over the target."""
        self.finish()
        if self.atomic and self.path.exists():
            os.replace(self.path, self.target)

    def abort(self) -> None:
        """Close and remove the temporary (or, non-atomic, the written) file."""
        if not self.closed:
            self._fh.close()
            self.closed = True
        self.path.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False


class OutputSet:
    """Outputs that appear together or not at all.

    Every output is written to a temporary name beside its target; :meth:`commit` renames them all
    (after every one was finished), :meth:`discard` removes them. As a context manager it commits on
    success and discards on error::

        with OutputSet() as out:
            w = out.wav(target, 250000)
            w.write(...)
            write_json(out.path(json_target), data)
    """

    def __init__(self):
        self._pending: list[tuple[Path, Path]] = []
        self._writers: list[WavWriter] = []

    def path(self, target: str | os.PathLike) -> Path:
        """A temporary path for ``target``, renamed over it on commit."""
        target = Path(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = _tmp_name(target)
        self._pending.append((tmp, target))
        return tmp

    def wav(
        self,
        target: str | os.PathLike,
        samplerate: int,
        channels: int = 1,
        frames_hint: int | None = None,
    ) -> WavWriter:
        w = WavWriter(
            self.path(target), samplerate, channels, atomic=False, frames_hint=frames_hint
        )
        self._writers.append(w)
        return w

    def json(self, target: str | os.PathLike, data) -> None:
        write_json(self.path(target), data)

    def text(self, target: str | os.PathLike, text: str) -> None:
        with open(self.path(target), "w") as fh:
            fh.write(text)
            fh.flush()
            if FSYNC:
                os.fsync(fh.fileno())

    def commit(self) -> list[Path]:
        for w in self._writers:
            w.finish()
        for tmp, target in self._pending:
            os.replace(tmp, target)
        done = [t for _, t in self._pending]
        self._pending, self._writers = [], []
        return done

    def discard(self) -> None:
        for w in self._writers:
            if not w.closed:
                w._fh.close()
                w.closed = True
        for tmp, _ in self._pending:
            tmp.unlink(missing_ok=True)
        self._pending, self._writers = [], []

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.commit()
        else:
            self.discard()
        return False


def check_same_format(
    infos: Iterable[WavInfo], channels: int | None = None, samplerate: int | None = None
) -> tuple[int, int]:
    """All files 16-bit PCM with one rate and channel count (or the given ones): ``(rate, channels)``."""
    infos = list(infos)
    if not infos:
        raise InputError(None, "no WAV files given")
    rate = samplerate if samplerate is not None else infos[0].samplerate
    nch = channels if channels is not None else infos[0].channels
    first = Path(infos[0].path).name
    for inf in infos:
        require_pcm16(inf)
        if inf.samplerate != rate:
            why = "" if samplerate is not None else f" (as {first})"
            raise InputError(inf.path, f"sample rate {inf.samplerate} Hz, expected {rate} Hz{why}")
        if inf.channels != nch:
            why = "" if channels is not None else f" (as {first})"
            raise InputError(inf.path, f"{inf.channels} channels, expected {nch}{why}")
    return rate, nch


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
            buf[s - lo : e - lo] = x[s:e]
        return buf

    out = np.empty(n, np.int16)
    for a, blk in stream(read, n):
        out[a : a + len(blk)] = blk
    return out
