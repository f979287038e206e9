"""All channels in one raw int16 memmap (docs/original-pipeline.md step 11), written channel by
channel, plus a JSON sidecar.

File: ``<stamp>_concatenated_audio_<kind>_<sr>_<n>_<nch>_int16.mmap`` - raw little-endian int16,
C order, shape ``(n samples, nch channels)`` (channel-interleaved rows), no header; column ``j`` is the
``j``-th input file. Readers of the original parse the last four ``_`` tokens (``sr``, ``n``, ``nch``,
``int16``). The original loaded all 24 WAVs (~14 GB) into RAM; here memory is one block of rows
whatever the length, in one of two orders (same bytes):

* ``order="rows"`` (default): all inputs are read in step, a block of rows is interleaved and appended,
  so every output byte is written once, sequentially (one pass: read 14 GB, write 14 GB);
* ``order="channels"``: channel by channel, each input copied block by block into its column through
  a window of the output mapped only for that block (``np.memmap`` column-strided writes). Each
  channel pass dirties every page of the file, so the page cache / disk sees up to ``nch`` times the
  file size of writes where memory is tight (cgroup limits on a cluster): kept for parity with the
  issue's wording and for inputs that cannot be open at the same time.

The output is written under a temporary name and renamed when complete; the sidecar
``<same stem>.json`` states shape, dtype, byte order, rate, channel names and source files.

The workflow cannot name its output by the sample count: that number is only known once the audio
has been cropped, and a rule's outputs must be known when the run is planned. With ``fixed=True``
the data and sidecar are written under fixed names, ``<stamp>_concatenated_audio_<kind>.dat`` and
``.json`` (the files the workflow's rules declare and read), and the documented names above are
hard links to the same two files (a symbolic link where the file system has no hard links), so
readers that look for ``*.mmap`` find exactly one, under its documented name. The readers here
accept either name: a name without the shape takes it from its sidecar.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

import numpy as np

from usvflow.io.atomic import InputError, atomic_path, read_json, write_json
from usvflow.io.progress import progress
from usvflow.io.rows import RowReader

from .wav import WavReader, require_pcm16, wav_info

_CH_RE = re.compile(r"^(?P<dev>[a-z]+)_.*?_ch(?P<ch>\d+)(?:_|$)")


def channel_name(path: str | os.PathLike) -> str:
    """``m_250430145009_ch01_cropped_to_video_hpss_filtered.wav`` -> ``m_ch01`` (else the file stem)."""
    stem = Path(path).stem
    m = _CH_RE.match(stem)
    return f"{m['dev']}_ch{int(m['ch']):02d}" if m else stem


def memmap_name(stamp: str, kind: str, sample_rate: int, n_samples: int, n_channels: int) -> str:
    return f"{stamp}_concatenated_audio_{kind}_{sample_rate}_{n_samples}_{n_channels}_int16.mmap"


def fixed_memmap_name(stamp: str, kind: str) -> str:
    """The workflow's fixed name of the data (known before the audio is cropped)."""
    return f"{stamp}_concatenated_audio_{kind}.dat"


def sidecar_path(mmap_path: str | os.PathLike) -> Path:
    return Path(mmap_path).with_suffix(".json")


def documented_path(path: str | os.PathLike) -> Path:
    """The documented ``.mmap`` name of a memmap given by either name (a fixed name: its sidecar's
    ``file``)."""
    path = Path(path)
    if path.suffix == ".mmap":
        return path
    side = sidecar_path(path)
    if not side.exists():
        raise InputError(side, "sidecar not found")
    name = read_json(side).get("file")
    if not name:
        raise InputError(side, "no 'file' entry naming the memmap")
    return path.with_name(name)


def write_memmap(
    wavs_in_column_order,
    out_dir: str | os.PathLike,
    stamp: str,
    kind: str = "hpss_filtered",
    block: int = 1 << 18,
    order: str = "rows",
    fixed: bool = False,
) -> Path:
    """Write the mono int16 WAVs as the columns of one memmap; returns its path (the documented
    name; with ``fixed``, the data go to :func:`fixed_memmap_name` and the documented names are
    links to it, see the module docstring).

    All inputs must be mono 16-bit PCM of the same rate and length (InputError naming the first file
    that differs). The caller fixes the column order (the original: sorted file names, i.e.
    ``m_..._ch01 .. m_..._ch12, s_..._ch01 .. s_..._ch12``). ``order``: ``"rows"`` (all inputs
    in step, one sequential write) or ``"channels"`` (column by column); see the module docstring.
    Memory: ``block`` rows x channels x 2 bytes.
    """
    if order not in ("rows", "channels"):
        raise ValueError(f"order must be 'rows' or 'channels', got {order!r}")
    wavs = [Path(p) for p in wavs_in_column_order]
    if not wavs:
        raise ValueError("write_memmap needs at least one WAV")
    infos = [wav_info(p) for p in wavs]
    for info in infos:
        require_pcm16(info)
    first = infos[0]
    for info in infos:
        if info.n_channels != 1:
            raise InputError(info.path, f"expected a mono WAV, found {info.n_channels} channels")
        if info.sample_rate != first.sample_rate:
            raise InputError(
                info.path,
                f"sample rate {info.sample_rate} Hz differs from "
                f"{first.sample_rate} Hz of {Path(first.path).name}",
            )
        if info.n_samples != first.n_samples:
            raise InputError(
                info.path,
                f"{info.n_samples} samples, but {Path(first.path).name} has "
                f"{first.n_samples} (all channels must have equal length)",
            )
    names = [channel_name(p) for p in wavs]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise InputError(wavs[names.index(dup[0])], f"duplicate channel name(s) {dup}")
    sr, n, nch = first.sample_rate, first.n_samples, len(wavs)
    documented = Path(out_dir) / memmap_name(stamp, kind, sr, n, nch)
    target = Path(out_dir) / fixed_memmap_name(stamp, kind) if fixed else documented
    with atomic_path(target) as tmp:
        if order == "rows":
            _write_rows(tmp, wavs, sr, n, block)
        else:
            _write_channels(tmp, wavs, sr, n, block)
        write_json(
            sidecar_path(target),
            {
                "file": documented.name,
                "shape": [n, nch],
                "dtype": "int16",
                "byte_order": "little",
                "order": "C (samples x channels, channel-interleaved rows)",
                "sample_rate": sr,
                "n_samples": n,
                "n_channels": nch,
                "channels": names,
                "source_files": [p.name for p in wavs],
                "kind": kind,
                "stamp": stamp,
                **({"fixed_name": target.name} if fixed else {}),
            },
        )
    if fixed:
        _publish_documented(target, documented)
    return documented


def _publish_documented(fixed: Path, documented: Path) -> None:
    """Link the documented names of the data and sidecar to the fixed-name files; remove the
    documented names of an earlier run of the same stamp and kind (another sample count)."""
    stem = fixed.stem  # <stamp>_concatenated_audio_<kind>
    shape_re = re.compile(re.escape(stem) + r"_\d+_\d+_\d+_int16\.(mmap|json)$")
    for old in fixed.parent.iterdir():
        if shape_re.match(old.name) and old.stem != documented.stem:
            old.unlink()
    for src, dst in ((fixed, documented), (sidecar_path(fixed), sidecar_path(documented))):
        tmp = dst.with_name(f".{dst.name}.link")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        try:
            os.link(src, tmp)
        except OSError:  # no hard links on this file system
            os.symlink(src.name, tmp)
        os.replace(tmp, dst)


def _write_rows(tmp: Path, wavs: list[Path], sr: int, n: int, block: int) -> None:
    with contextlib.ExitStack() as stack, open(tmp, "wb") as fh:
        readers = [stack.enter_context(WavReader(p, n_channels=1, sample_rate=sr)) for p in wavs]
        buf = np.empty((min(block, max(n, 1)), len(wavs)), "<i2")
        for a in progress(range(0, n, block), desc=f"memmap ({len(wavs)} ch)", unit="block"):
            b = min(a + block, n)
            rows = buf[: b - a]
            for j, r in enumerate(readers):
                rows[:, j] = r.read(a, b)
            fh.write(rows.tobytes())
        fh.flush()
        os.fsync(fh.fileno())


def _write_channels(tmp: Path, wavs: list[Path], sr: int, n: int, block: int) -> None:
    nch = len(wavs)
    row_bytes = 2 * nch
    with open(tmp, "wb") as fh:  # sparse file of the final size
        fh.truncate(n * row_bytes)
    for j, p in enumerate(progress(wavs, desc="memmap (by channel)", unit="ch")):
        with WavReader(p, n_channels=1, sample_rate=sr) as r:
            for a in range(0, n, block):
                b = min(a + block, n)
                # map only rows [a, b) of the output (np.memmap aligns the offset itself)
                mm = np.memmap(
                    tmp, dtype="<i2", mode="r+", offset=a * row_bytes, shape=(b - a, nch)
                )
                mm[:, j] = r.read(a, b)
                del mm  # unmapped: resident memory stays one block
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())


def parse_memmap_name(path: str | os.PathLike) -> dict:
    """``{"sample_rate", "n_samples", "n_channels", "dtype"}`` from the last four ``_`` tokens (of
    the documented name; a fixed ``.dat`` name: of the name its sidecar gives)."""
    path = Path(path)
    if path.suffix == ".dat":
        path = documented_path(path)
    if path.suffix != ".mmap":
        raise InputError(path, "not a .mmap file")
    tok = path.stem.split("_")
    try:
        sr, n, nch, dtype = int(tok[-4]), int(tok[-3]), int(tok[-2]), tok[-1]
        np.dtype(dtype)
    except (IndexError, ValueError, TypeError):
        raise InputError(
            path, "name does not end in _<sr>_<n_samples>_<n_channels>_<dtype>.mmap"
        ) from None
    return {"sample_rate": sr, "n_samples": n, "n_channels": nch, "dtype": dtype}


def open_memmap(
    path: str | os.PathLike, mode: str = "r", require_sidecar: bool = False
) -> np.memmap:
    """Open a concatenated-audio memmap as ``(n_samples, n_channels)``, cross-checking name, size and
    sidecar (if present, or required).

    Every page a ``np.memmap`` touches stays in the process's resident set until the kernel needs the
    memory back; a step that reads a whole session through it shows a resident size that grows with
    the session. Steps that read many row ranges use :func:`open_memmap_reader` instead.
    """
    n, nch, dt = _checked_shape(Path(path), require_sidecar)
    if n == 0 or nch == 0:
        return np.zeros((n, nch), dt)
    return np.memmap(path, dtype=dt, mode=mode, shape=(n, nch))


def open_memmap_reader(path: str | os.PathLike, require_sidecar: bool = False) -> RowReader:
    """:func:`open_memmap`'s checks, then a :class:`~usvflow.io.rows.RowReader` (row ranges read
    with ``pread``; nothing stays mapped)."""
    n, nch, dt = _checked_shape(Path(path), require_sidecar)
    return RowReader(path, n, nch, dt)


def _checked_shape(path: Path, require_sidecar: bool) -> tuple[int, int, np.dtype]:
    """``(n, nch, dtype)`` of a memmap after checking its name, size and sidecar."""
    meta = parse_memmap_name(path)
    dt = np.dtype(meta["dtype"]).newbyteorder("<")
    n, nch = meta["n_samples"], meta["n_channels"]
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    if size != n * nch * dt.itemsize:
        raise InputError(
            path,
            f"size {size} bytes does not match the name ({n} x {nch} {dt.name} = "
            f"{n * nch * dt.itemsize} bytes)",
        )
    side = sidecar_path(path)
    if side.exists():
        info = read_json(side)
        expect = {"shape": [n, nch], "dtype": dt.name, "sample_rate": meta["sample_rate"]}
        for key, value in expect.items():
            if info.get(key) != value:
                raise InputError(
                    side, f"{key} {info.get(key)!r} does not match {path.name} ({value!r})"
                )
        if "channels" in info and len(info["channels"]) != nch:
            raise InputError(side, f"{len(info['channels'])} channel names for {nch} channels")
    elif require_sidecar:
        raise InputError(side, "sidecar not found")
    return n, nch, dt
