"""Concatenation of a group's SpikeGLX recordings for spike sorting, and the day's changepoints JSON
(docs/original-pipeline.md steps 1-2).

:func:`concatenate_recordings` joins the ``.bin`` files of one probe, in the sessions sheet's order,
byte for byte (in-kernel ``copy_file_range`` where the OS has it, else large-block copies) into
``concatenated_<YYYYMMDD>_imec<N>.ap.bin`` and writes its ``.ap.meta`` (the first session's meta with
``fileSizeBytes``/``fileTimeSecs`` of the whole; ``fileSHA1`` dropped, it would describe the first
file only). Every input is checked first; on a bad input nothing is written.

:func:`changepoints` builds the day's ``changepoints_info_<YYYYMMDD>_imec<N>.json`` from scratch from
the recordings' sizes and their E/V verdicts, so that it is the same however often it is rebuilt (the
original shifted the tracking offsets again on every concatenation run). Keys per recording
``<session>.imec<N>`` (the ``.bin`` name without ``.ap.bin``):

* ``session_start_end``: ``[first, end)`` samples of this recording in the concatenated file;
* ``file_duration_samples``: samples of this recording;
* ``tracking_start_end``: the tracking window in concatenated-file samples, ``null`` unless the E/V
  check passed; ``tracking_start_end_in_file``: the same in the recording's own samples;
* ``largest_camera_break_duration``: samples (``null`` without an E/V result);
* ``sample_rate`` (calibrated rate used), ``ev_sync_passed``, ``ev_sync_problem``,
  ``duration_difference_ms``;
* ``root_directory``, ``session_id``, ``total_num_channels`` (= ``nSavedChans``, the columns of the
  file; the original's ``acqApLfSy`` sum is wrong for channel subsets), ``headstage_sn``,
  ``imec_probe_sn``.
"""

from __future__ import annotations

import os
from pathlib import Path

from usvflow.io.atomic import InputError, atomic_path
from usvflow.io.progress import progress
from usvflow.io.spikeglx import (
    SpikeGLXMeta,
    calibrated_rate,
    n_samples,
    parse_meta,
    read_meta,
    write_meta,
)

__all__ = [
    "changepoints",
    "check_group",
    "concatenate_recordings",
    "copy_concatenated",
    "recording_key",
]

FSYNC = True
_BLOCK = 64 * 1024 * 1024


def recording_key(bin_path: str | os.PathLike) -> str:
    """``<name>.imec<N>`` of ``<name>.imec<N>.ap.bin`` (the changepoints key)."""
    name = Path(bin_path).name
    for suffix in (".ap.bin", ".lf.bin", ".bin"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def check_group(
    recordings: list[tuple[str | os.PathLike, str | os.PathLike]],
) -> list[tuple[SpikeGLXMeta, int]]:
    """Parse and check ``[(bin, meta), ...]`` of one probe; return ``[(meta, n_samples), ...]``.

    Raises :class:`InputError` for a missing or truncated ``.bin``, one that disagrees with its meta,
    or recordings that differ in saved channels (count, subset) or stream type.
    """
    if not recordings:
        raise InputError(None, "no recordings to concatenate")
    out = []
    first = None
    for b, m in recordings:
        meta = parse_meta(m)
        n = n_samples(b, meta)
        if first is None:
            first = (meta, b)
        else:
            ref, rb = first
            if meta.n_saved_chans != ref.n_saved_chans or meta.saved_channels != ref.saved_channels:
                raise InputError(
                    b,
                    f"saves {meta.n_saved_chans} channels (snsSaveChanSubset={meta.raw.get('snsSaveChanSubset')!r}) "
                    f"but {rb} saves {ref.n_saved_chans} "
                    f"(snsSaveChanSubset={ref.raw.get('snsSaveChanSubset')!r}): recordings of one group must "
                    "have the same channels to be concatenated",
                )
            if meta.type_this != ref.type_this:
                raise InputError(
                    b, f"stream type {meta.type_this} differs from {ref.type_this} of {rb}"
                )
        out.append((meta, n))
    return out


def copy_concatenated(sources: list[str | os.PathLike], dst_fh) -> int:
    """Append the bytes of ``sources`` to ``dst_fh`` (a binary file opened with ``buffering=0``)."""
    total = 0
    bar = progress(total=sum(os.path.getsize(s) for s in sources), desc="concatenate", unit="B",
                   unit_scale=True)  # fmt: skip
    for src in sources:
        with open(src, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            left = size
            if hasattr(os, "copy_file_range"):
                try:
                    while left > 0:
                        k = os.copy_file_range(fh.fileno(), dst_fh.fileno(), min(left, 1 << 30))
                        if k == 0:
                            break
                        left -= k
                        bar.update(k)
                except OSError:
                    pass  # e.g. across file systems on old kernels: fall back to a plain copy
            if left > 0:
                fh.seek(size - left)
                dst_fh.seek(0, os.SEEK_END)
                buf = bytearray(min(_BLOCK, max(left, 1)))
                mv = memoryview(buf)
                while left > 0:
                    r = fh.readinto(mv[: min(len(buf), left)])
                    if not r:
                        raise InputError(src, "file shrank while it was being copied")
                    dst_fh.write(mv[:r])
                    left -= r
                    bar.update(r)
            total += size
            dst_fh.seek(0, os.SEEK_END)
    bar.close()
    return total


def concatenate_recordings(
    recordings: list[tuple[str | os.PathLike, str | os.PathLike]],
    out_bin: str | os.PathLike,
    out_meta: str | os.PathLike,
    fsync: bool | None = None,
) -> dict:
    """Join ``[(bin, meta), ...]`` (in order) into ``out_bin`` + ``out_meta``; return a summary.

    Both outputs are written atomically; nothing is written when an input is bad (see
    :func:`check_group`). The concatenated meta's ``fileTimeSecs`` is the total samples divided by
    the first meta's sampling rate (what SpikeGLX itself writes).
    """
    checked = check_group(recordings)
    fsync = FSYNC if fsync is None else fsync
    out_bin, out_meta = Path(out_bin), Path(out_meta)
    for b, _ in recordings:
        if Path(b).resolve() == out_bin.resolve():
            raise InputError(b, "is also the concatenation's output")
    total_n = sum(n for _, n in checked)
    nch = checked[0][0].n_saved_chans
    with atomic_path(out_bin) as tmp:
        with open(tmp, "wb", buffering=0) as fh:
            written = copy_concatenated([b for b, _ in recordings], fh)
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        if written != total_n * nch * 2:
            raise InputError(out_bin, f"wrote {written} bytes, expected {total_n * nch * 2}")
        raw = read_meta(recordings[0][1])
        raw.pop("fileSHA1", None)
        raw["fileSizeBytes"] = str(written)
        raw["fileTimeSecs"] = repr(total_n / checked[0][0].sample_rate)
        newline = "\r\n" if b"\r\n" in Path(recordings[0][1]).read_bytes()[:4096] else "\n"
        write_meta(out_meta, raw, newline=newline)
    return {
        "n_recordings": len(recordings),
        "n_samples": total_n,
        "n_saved_chans": nch,
        "bytes": written,
        "session_samples": [n for _, n in checked],
    }


def changepoints(recordings: list[dict], calibrated_rates: dict | None = None) -> dict:
    """The day's changepoints dict (see the module docstring) for one probe's recordings in order.

    Each item: ``{"session_id", "root_directory", "bin", "meta", "ev"}`` where ``ev`` is the session's
    E/V verdict dict (:class:`usvflow.sync.ev.EVResult`) or ``None`` when the session has no video.
    Recordings are checked as for the concatenation (so their sizes are the real ones).
    """
    checked = check_group([(r["bin"], r["meta"]) for r in recordings])
    out: dict = {}
    cum = 0
    for r, (meta, n) in zip(recordings, checked):
        key = recording_key(r["bin"])
        if key in out:
            raise InputError(r["bin"], f"recording name {key!r} occurs twice in the group")
        ev = r.get("ev")
        passed = bool(ev and ev.get("passed"))
        tse = ev.get("tracking_start_end") if ev else None
        if ev is not None and ev.get("n_samples") not in (None, n):
            raise InputError(
                r["bin"],
                f"has {n} samples but its E/V result says {ev.get('n_samples')}: the E/V check is stale",
            )
        problem = "session has no video: no E/V check" if ev is None else ev.get("problem")
        out[key] = {
            "session_start_end": [cum, cum + n],
            "tracking_start_end": [tse[0] + cum, tse[1] + cum] if passed else None,
            "tracking_start_end_in_file": list(tse) if passed else None,
            "largest_camera_break_duration": None
            if ev is None
            else ev.get("largest_camera_break_duration"),
            "file_duration_samples": n,
            "sample_rate": calibrated_rate(meta, calibrated_rates or {}),
            "ev_sync_passed": passed,
            "ev_sync_problem": problem,
            "duration_difference_ms": None if ev is None else ev.get("duration_difference_ms"),
            "root_directory": str(r["root_directory"]),
            "session_id": r["session_id"],
            "total_num_channels": meta.n_saved_chans,
            "headstage_sn": meta.headstage_sn,
            "imec_probe_sn": meta.probe_sn,
        }
        cum += n
    return out
