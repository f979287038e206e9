"""SpikeGLX ``.meta`` / ``.bin`` reading and writing.

A ``.meta`` file is text, one ``key=value`` per line (CRLF on Windows). Keys starting with ``~`` hold
tables written as ``(…)(…)``; they are kept as plain strings. The ``.bin`` is int16, interleaved
sample-major: ``nSavedChans`` values per sample. On an imec stream the sync word (``SY0``) is the last
saved column.

Channel bookkeeping:

* ``acqApLfSy=384,384,1``: AP, LF and SY channels *acquired* (NP1.0; NP2.0 has ``384,0,1``);
* ``snsApLfSy=384,0,1``: those *saved in this file* (an LF file has ``0,384,1``);
* ``snsSaveChanSubset``: ``all`` or ranges in acquisition numbering (AP first, then LF, then SY), e.g.
  ``0:383,768`` (NP1.0: the SY channel is acquisition channel 768) or ``0:384`` (NP2.0).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from usvflow.io.atomic import InputError, atomic_open, read_text

__all__ = [
    "SpikeGLXMeta",
    "calibrated_rate",
    "meta_from_dict",
    "n_samples",
    "open_bin",
    "parse_channel_subset",
    "parse_meta",
    "read_meta",
    "write_meta",
]


def read_meta(path: str | os.PathLike) -> dict[str, str]:
    """Read a SpikeGLX ``.meta`` file into an ordered ``{key: value}`` dict of strings.

    Blank lines are skipped; ``~key`` tables are kept verbatim (key with its ``~``). A non-blank line
    without ``=`` or with an empty key raises :class:`InputError` naming the file and line.
    """
    path = Path(path)
    text = read_text(path, "a .meta file")
    meta: dict[str, str] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(path, f"line {lineno}: not a 'key=value' line: {line[:80]!r}")
        meta[key] = value.strip()
    if not meta:
        raise InputError(path, "empty .meta file")
    return meta


def write_meta(path: str | os.PathLike, meta: dict, newline: str = "\n") -> None:
    """Write ``meta`` as ``key=value`` lines in the dict's order, atomically.

    Values are converted with ``str`` (``True``/``False`` become ``true``/``false`` as SpikeGLX writes
    them). ``newline="\\r\\n"`` writes the Windows line endings SpikeGLX itself uses.
    """
    lines = []
    for key, value in meta.items():
        key = str(key)
        if isinstance(value, bool):
            value = "true" if value else "false"
        value = str(value)
        if not key or "=" in key or any(c in key + value for c in "\r\n"):
            raise ValueError(f"cannot write meta entry {key!r}={value[:40]!r}")
        lines.append(f"{key}={value}")
    with atomic_open(path, "w", newline="") as fh:
        fh.write(newline.join(lines) + newline)


def parse_channel_subset(spec: str, n_acquired: int) -> tuple[int, ...]:
    """Parse ``snsSaveChanSubset`` (``all`` or ``a:b,c,…`` inclusive ranges) into channel indices."""
    spec = spec.strip()
    if spec.lower() == "all":
        return tuple(range(n_acquired))
    out: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition(":")
        a = int(lo)
        b = int(hi) if sep else a
        if b < a or a < 0:
            raise ValueError(f"bad channel range {part!r}")
        out.extend(range(a, b + 1))
    return tuple(out)


def _ints(path, meta: dict, key: str, n: int | None = None) -> tuple[int, ...]:
    try:
        vals = tuple(int(v) for v in meta[key].split(","))
    except KeyError:
        raise InputError(path, f"missing key {key!r}") from None
    except ValueError:
        raise InputError(
            path, f"{key}={meta[key]!r} is not a comma-separated list of integers"
        ) from None
    if n is not None and len(vals) != n:
        raise InputError(path, f"{key}={meta[key]!r} should have {n} fields")
    return vals


def _opt(meta: dict, key: str) -> str | None:
    v = meta.get(key)
    return None if v is None or v == "" else v


@dataclass
class SpikeGLXMeta:
    """The fields of a SpikeGLX ``.meta`` the workflow needs (``raw`` keeps every key)."""

    path: str
    type_this: str  # 'imec', 'nidq' or 'obx'
    n_saved_chans: int
    n_ap: int  # saved AP channels (snsApLfSy)
    n_lf: int
    n_sy: int
    acq_ap: int | None  # acquired (acqApLfSy); None on nidq
    acq_lf: int | None
    acq_sy: int | None
    saved_channels: tuple[int, ...]  # acquisition numbering, one per saved column
    sync_channel_index: int | None  # column of the sync word (last saved column) or None
    sample_rate: float  # imSampRate / niSampRate / obSampRate as written (may be calibrated)
    probe_type: int | None
    probe_pn: str | None
    probe_sn: str | None
    headstage_sn: str | None
    file_size_bytes: int | None
    file_time_secs: float | None
    first_sample: int | None
    raw: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def n_acquired(self) -> int | None:
        """Total acquired channels (``acqApLfSy`` summed; 385 for NP1.0 and NP2.0 AP streams)."""
        if self.acq_ap is None:
            return None
        return self.acq_ap + self.acq_lf + self.acq_sy

    @property
    def total_channels_original(self) -> int | None:
        """What usv-playpen calls the total channels: first + last field of ``acqApLfSy``."""
        if self.acq_ap is None:
            return None
        return self.acq_ap + self.acq_sy


def parse_meta(path: str | os.PathLike) -> SpikeGLXMeta:
    """Read and check a SpikeGLX ``.meta`` file (see :class:`SpikeGLXMeta`)."""
    path = Path(path)
    return meta_from_dict(read_meta(path), path)


def meta_from_dict(m: dict, path: str | os.PathLike | None = None) -> SpikeGLXMeta:
    """Check a ``read_meta`` dict (values as strings); ``path`` only names the file in errors."""
    m = {str(k): str(v) for k, v in m.items()}
    type_this = m.get("typeThis", "imec")
    (n_saved,) = _ints(path, m, "nSavedChans", 1)
    if n_saved <= 0:
        raise InputError(path, f"nSavedChans={n_saved} must be positive")

    if type_this == "nidq":
        rate_key = "niSampRate"
        n_ap = n_lf = n_sy = 0
        acq = (None, None, None)
        if "snsMnMaXaDw" in m:
            counts = _ints(path, m, "snsMnMaXaDw", 4)
            if sum(counts) != n_saved:
                raise InputError(
                    path, f"snsMnMaXaDw={m['snsMnMaXaDw']} does not sum to nSavedChans={n_saved}"
                )
        n_acquired = n_saved
    else:
        rate_key = "obSampRate" if type_this == "obx" else "imSampRate"
        if type_this == "obx":
            n_ap = n_lf = 0
            n_sy = 1
            acq = (None, None, None)
            n_acquired = n_saved
        else:
            n_ap, n_lf, n_sy = _ints(path, m, "snsApLfSy", 3)
            acq = _ints(path, m, "acqApLfSy", 3)
            n_acquired = sum(acq)
            if n_ap + n_lf + n_sy != n_saved:
                raise InputError(
                    path, f"snsApLfSy={m['snsApLfSy']} does not sum to nSavedChans={n_saved}"
                )

    try:
        saved = parse_channel_subset(m.get("snsSaveChanSubset", "all"), n_acquired)
    except ValueError as exc:
        raise InputError(path, f"snsSaveChanSubset={m.get('snsSaveChanSubset')!r}: {exc}") from None
    if len(saved) != n_saved:
        raise InputError(
            path,
            f"snsSaveChanSubset={m.get('snsSaveChanSubset')!r} lists {len(saved)} channels "
            f"but nSavedChans={n_saved}",
        )

    try:
        rate = float(m[rate_key])
    except KeyError:
        raise InputError(path, f"missing key {rate_key!r}") from None
    except ValueError:
        raise InputError(path, f"{rate_key}={m[rate_key]!r} is not a number") from None
    if not rate > 0:
        raise InputError(path, f"{rate_key}={m[rate_key]!r} must be positive")

    def num(key, conv):
        v = _opt(m, key)
        if v is None:
            return None
        try:
            return conv(v)
        except ValueError:
            raise InputError(path, f"{key}={v!r} is not a number") from None

    probe_type = num("imDatPrb_type", int)
    if probe_type is None and type_this == "imec":
        probe_type = 0  # phase 3B files predate imDatPrb_type; they are NP1.0
    return SpikeGLXMeta(
        path=str(path) if path is not None else "<meta>",
        type_this=type_this,
        n_saved_chans=n_saved,
        n_ap=n_ap,
        n_lf=n_lf,
        n_sy=n_sy,
        acq_ap=acq[0],
        acq_lf=acq[1],
        acq_sy=acq[2],
        saved_channels=saved,
        sync_channel_index=n_saved - 1 if n_sy > 0 else None,
        sample_rate=rate,
        probe_type=probe_type if type_this == "imec" else None,
        probe_pn=_opt(m, "imDatPrb_pn"),
        probe_sn=_opt(m, "imDatPrb_sn"),
        headstage_sn=_opt(m, "imDatHs_sn"),
        file_size_bytes=num("fileSizeBytes", int),
        file_time_secs=num("fileTimeSecs", float),
        first_sample=num("firstSample", int),
        raw=m,
    )


def _as_meta(meta) -> SpikeGLXMeta:
    if isinstance(meta, SpikeGLXMeta):
        return meta
    if isinstance(meta, dict):
        return meta_from_dict(meta)
    return parse_meta(meta)


def n_samples(bin_path: str | os.PathLike, meta: SpikeGLXMeta | str | os.PathLike) -> int:
    """Samples per channel in ``bin_path``, from its size.

    Raises :class:`InputError` naming the ``.bin`` when it is missing, when its size is not a multiple
    of ``2 * nSavedChans`` (truncated mid-sample) or when it disagrees with the meta's ``fileSizeBytes``.
    ``meta`` is a parsed :class:`SpikeGLXMeta`, a :func:`read_meta` dict or the ``.meta`` file's path.
    """
    meta = _as_meta(meta)
    bin_path = Path(bin_path)
    try:
        size = bin_path.stat().st_size
    except FileNotFoundError:
        raise InputError(bin_path, "file not found") from None
    frame = 2 * meta.n_saved_chans
    if size % frame:
        raise InputError(
            bin_path,
            f"size {size} bytes is not a multiple of 2 x nSavedChans = {frame} "
            f"(truncated mid-sample: {size % frame} stray bytes)",
        )
    if meta.file_size_bytes is not None and meta.file_size_bytes != size:
        raise InputError(
            bin_path,
            f"size {size} bytes disagrees with fileSizeBytes={meta.file_size_bytes} in {meta.path}",
        )
    return size // frame


def open_bin(
    bin_path: str | os.PathLike, meta: SpikeGLXMeta | str | os.PathLike, mode: str = "r"
) -> np.memmap:
    """Memory-map ``bin_path`` as int16 of shape ``(n_samples, nSavedChans)`` (checked as in :func:`n_samples`)."""
    meta = _as_meta(meta)
    n = n_samples(bin_path, meta)
    if n == 0:
        return np.zeros((0, meta.n_saved_chans), dtype=np.int16)  # type: ignore[return-value]
    return np.memmap(bin_path, dtype=np.int16, mode=mode, shape=(n, meta.n_saved_chans))


def calibrated_rate(meta: SpikeGLXMeta | str | os.PathLike, table: dict) -> float:
    """The headstage's calibrated rate from ``table`` (``{headstage_sn: rate}``), else ``imSampRate``.

    Keys are compared as strings, so an ini/YAML table with integer keys works too.
    """
    meta = _as_meta(meta)
    if meta.headstage_sn is not None and table:
        lookup = {str(k).strip(): v for k, v in table.items()}
        if meta.headstage_sn in lookup:
            return float(lookup[meta.headstage_sn])
    return float(meta.sample_rate)
