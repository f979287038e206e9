"""E-phys/video synchronization check (docs/original-pipeline.md step 1), streamed.

The Loopbio triggerbox pulses every camera frame into the Neuropixels sync word (the last saved
column of a SpikeGLX ``.bin``, ``SY0``). The check:

1. :func:`extract_sync_word` copies that column out of the interleaved ``.bin`` in one sequential,
   chunked pass into ``<session>_imec<N>_sync_ch_data.npy`` (int16, shape ``(n_samples,)``);
2. :func:`rising_edges` finds the pulse onsets (first high sample) on a configured bit of the word,
   or on any rising change of the whole word (the original's behaviour), chunk by chunk;
3. :func:`tracking_window`: the largest gap between onsets is the ~2.3 s break before the first
   recorded frame; the tracking window runs from the onset of frame 0 to the onset of the pulse after
   the last common frame (``N`` frame periods). The break must be **at least**
   ``min_largest_break_s`` long (the original's test is inverted: it required ``< 2 s`` and so
   rejected every real session);
4. :func:`ev_sync_check` compares the e-phys duration of the window, at the headstage's calibrated
   rate, with the video's ``total_video_time_least`` against the tolerance and returns a verdict with
   every number it used and, on failure, what was tried. It keeps the onsets of the ``N`` frames and
   of the pulse after them (``*_frame_onsets.npy``): the split of sorted spikes maps every spike to
   the video frame with the nearest onset on the probe's own clock.

Raw ``.bin`` files are only read.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from usvflow.io.atomic import InputError, atomic_open
from usvflow.io.rows import RowReader
from usvflow.io.spikeglx import SpikeGLXMeta, calibrated_rate, n_samples, parse_meta

from ..io.config import setting_default

__all__ = [
    "EVResult",
    "ev_sync_check",
    "extract_sync_word",
    "read_sync_word",
    "rising_edges",
    "tracking_window",
]

#: bytes read per chunk by the streaming passes
CHUNK_BYTES = 32 * 1024 * 1024


def _as_meta(meta) -> SpikeGLXMeta:
    return meta if isinstance(meta, SpikeGLXMeta) else parse_meta(meta)


def _npy_header(fh, n: int) -> None:
    np.lib.format.write_array_header_1_0(
        fh, {"descr": "<i2", "fortran_order": False, "shape": (int(n),)}
    )


def extract_sync_word(
    bin_path: str | os.PathLike,
    meta: SpikeGLXMeta | str | os.PathLike,
    out_npy: str | os.PathLike,
    chunk_bytes: int = CHUNK_BYTES,
) -> int:
    """Copy the sync-word column of ``bin_path`` into ``out_npy`` (int16, ``(n_samples,)``); return n.

    One sequential pass in chunks of about ``chunk_bytes`` (memory does not grow with the file). The
    ``.bin`` is checked against its meta first (truncated mid-sample or disagreeing with
    ``fileSizeBytes`` raises :class:`InputError`); a stream without a sync channel raises too.
    """
    meta = _as_meta(meta)
    bin_path = Path(bin_path)
    if meta.sync_channel_index is None:
        raise InputError(
            meta.path, f"no sync channel saved (snsApLfSy={meta.raw.get('snsApLfSy')!r})"
        )
    n = n_samples(bin_path, meta)
    nch = meta.n_saved_chans
    col = meta.sync_channel_index
    per = max(1, chunk_bytes // (2 * nch))
    buf = np.empty(per * nch, dtype=np.int16)
    done = 0
    with open(bin_path, "rb", buffering=0) as src, atomic_open(out_npy, "wb") as out:
        _npy_header(out, n)
        mv = memoryview(buf).cast("B")
        while done < n:
            m = min(per, n - done)
            want = m * nch * 2
            got = 0
            while got < want:
                r = src.readinto(mv[got:want])
                if not r:
                    raise InputError(
                        bin_path,
                        f"file ended after {done + got // (2 * nch)} of {n} samples while reading",
                    )
                got += r
            out.write(np.ascontiguousarray(buf[: m * nch].reshape(m, nch)[:, col]).tobytes())
            done += m
    return n


class SyncWordFile:
    """A ``*_sync_ch_data.npy`` read by plain reads: ``len()`` and ``[a:b]`` slices (new arrays).
    Unlike a memory map, the pages read do not stay resident, so memory does not grow with the file."""

    def __init__(self, npy: str | os.PathLike, n: int, offset: int):
        self._rows = RowReader(npy, n, 1, np.int16, offset=offset)

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, key) -> np.ndarray:
        return self._rows[key, 0]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """The whole sync word (read at once)."""
        out = self[:]
        return out if dtype is None else out.astype(dtype)


def read_sync_word(npy: str | os.PathLike) -> SyncWordFile:
    """Open a ``*_sync_ch_data.npy`` (int16, 1-D) for chunked reading; raises :class:`InputError` if
    it is not one."""
    try:
        arr = np.load(npy, mmap_mode="r")
    except FileNotFoundError:
        raise InputError(npy, "file not found") from None
    except ValueError as exc:
        raise InputError(npy, f"not a .npy file ({exc})") from None
    if arr.ndim != 1 or arr.dtype != np.int16:
        raise InputError(npy, f"expected a 1-D int16 sync word, found {arr.dtype} {arr.shape}")
    n, offset = len(arr), int(arr.offset)
    del arr
    return SyncWordFile(npy, n, offset)


def rising_edges(word, bit: int | None = None, chunk: int = 1 << 20) -> np.ndarray:
    """Onsets (index of the first high sample) of the pulses on ``word``, computed in chunks.

    ``bit`` selects one bit of the 16-bit word; ``None`` takes any rising change of the word's value
    (read as unsigned), as the original does. Sample 0 is never an onset (nothing precedes it).
    """
    if bit is not None and not 0 <= bit <= 15:
        raise ValueError(f"bit {bit} is not 0..15")
    n = len(word)
    out = []
    prev = None
    for a in range(0, n, chunk):
        x = np.asarray(word[a : a + chunk]).view(np.uint16)
        if bit is not None:
            x = (x >> np.uint16(bit)) & np.uint16(1)
        if prev is not None:
            x = np.concatenate([[prev], x])
            off = a
        else:
            off = 1
        idx = np.flatnonzero(x[1:] > x[:-1]) + off
        out.append(idx)
        prev = x[-1]
    return np.concatenate(out).astype(np.int64) if out else np.zeros(0, dtype=np.int64)


@dataclass
class Window:
    start: int | None  # first high sample of the frame-0 pulse
    end: int | None  # first high sample of the pulse after the last common frame
    largest_break: int  # samples between the onsets around the largest gap (0 if < 2 onsets)
    first_frame_pulse: int | None  # index into the onsets of frame 0
    problem: str | None


def tracking_window(onsets: np.ndarray, n_frames: int) -> Window:
    """Tracking window from the pulse onsets: frame 0 is the pulse after the largest gap."""
    onsets = np.asarray(onsets, dtype=np.int64)
    if len(onsets) < 2:
        return Window(
            None,
            None,
            0,
            None,
            f"found {len(onsets)} pulse onset(s); at least 2 are needed to find a break",
        )
    gaps = np.diff(onsets)
    hop = int(np.argmax(gaps)) + 1
    big = int(gaps.max())
    if hop + n_frames >= len(onsets):
        return Window(
            None, None, big, hop,
            f"{len(onsets) - hop} pulse(s) from the largest break on, but {n_frames} frames need "
            f"{n_frames + 1} (the recording ends before the tracking does)",
        )  # fmt: skip
    return Window(int(onsets[hop]), int(onsets[hop + n_frames]), big, hop, None)


@dataclass
class EVResult:
    """The E/V verdict of one session and probe (JSON keys of ``<session>_imec<N>_ev_sync.json``)."""

    session_id: str
    probe: str
    bin: str
    n_samples: int
    n_saved_chans: int
    sync_channel_index: int
    headstage_sn: str | None
    imec_probe_sn: str | None
    sample_rate_meta: float
    sample_rate: float  # rate used (calibrated if the headstage is in the table)
    sample_rate_source: str  # "calibrated" or "imSampRate"
    triggerbox_bit: int | None
    n_pulse_onsets: int
    largest_camera_break_duration: int  # samples
    largest_break_s: float
    min_largest_break_s: float
    tracking_start_end: list | None  # samples of this session's file
    total_frame_number_least: int
    total_video_time_least: float
    ephys_duration_s: float | None
    duration_difference_ms: float | None  # e-phys minus video
    tolerance_ms: float
    passed: bool
    problem: str | None
    #: onsets (samples of this file) of frames 0..N-1 and of the pulse after the last frame; not in JSON
    frame_onsets: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("frame_onsets")
        return d


def ev_sync_check(
    sync_word,
    meta: SpikeGLXMeta | str | os.PathLike,
    frame_counts: dict,
    *,
    session_id: str,
    probe: str,
    bin_path: str = "",
    calibrated_rates: dict | None = None,
    triggerbox_bit: int | None = None,
    min_largest_break_s: float | None = None,
    tolerance_ms: float = 12.0,
) -> EVResult:
    """Check one session's probe against its video (see the module docstring).

    ``sync_word`` is the 1-D sync column (array or memmap), ``frame_counts`` the session's
    ``camera_frame_count_dict.json`` (``total_frame_number_least``, ``total_video_time_least``).
    Never raises for a bad sync word: the verdict says what was tried and why it failed.
    """
    min_largest_break_s = setting_default("sync.ev.min_largest_break_s", min_largest_break_s)
    meta = _as_meta(meta)
    try:
        n_frames = int(frame_counts["total_frame_number_least"])
        video_s = float(frame_counts["total_video_time_least"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(
            None,
            f"camera frame counts lack total_frame_number_least/total_video_time_least ({exc})",
        ) from None
    rate = calibrated_rate(meta, calibrated_rates or {})
    source = "imSampRate"
    if meta.headstage_sn is not None and calibrated_rates:
        if meta.headstage_sn in {str(k).strip() for k in calibrated_rates}:
            source = "calibrated"
    onsets = rising_edges(sync_word, triggerbox_bit)
    what = (
        "any rising change of the sync word"
        if triggerbox_bit is None
        else f"bit {triggerbox_bit} of the sync word"
    )
    win = tracking_window(onsets, n_frames)
    problem = None if win.problem is None else f"{win.problem} (pulses read on {what})"
    break_s = win.largest_break / rate
    ephys_s = diff_ms = None
    if problem is None and break_s < min_largest_break_s:
        problem = (
            f"largest break between pulses is {break_s:.3f} s, shorter than min_largest_break_s="
            f"{min_largest_break_s} s: no recording-start break found (pulses read on {what})"
        )
    if problem is None:
        ephys_s = (win.end - win.start) / rate
        diff_ms = (ephys_s - video_s) * 1000.0
        if not abs(diff_ms) <= tolerance_ms:
            problem = (
                f"e-phys duration {ephys_s:.6f} s and video duration {video_s:.6f} s differ by "
                f"{diff_ms:.3f} ms, more than the {tolerance_ms} ms tolerance (rate {rate} Hz, {source})"
            )
    ok = win.start is not None and problem is None
    return EVResult(
        session_id=session_id,
        probe=probe,
        bin=str(bin_path),
        n_samples=int(len(sync_word)),
        n_saved_chans=meta.n_saved_chans,
        sync_channel_index=int(meta.sync_channel_index),
        headstage_sn=meta.headstage_sn,
        imec_probe_sn=meta.probe_sn,
        sample_rate_meta=float(meta.sample_rate),
        sample_rate=float(rate),
        sample_rate_source=source,
        triggerbox_bit=triggerbox_bit,
        n_pulse_onsets=int(len(onsets)),
        largest_camera_break_duration=int(win.largest_break),
        largest_break_s=float(break_s),
        min_largest_break_s=float(min_largest_break_s),
        tracking_start_end=None if win.start is None else [win.start, win.end],
        total_frame_number_least=n_frames,
        total_video_time_least=video_s,
        ephys_duration_s=ephys_s,
        duration_difference_ms=diff_ms,
        tolerance_ms=float(tolerance_ms),
        passed=bool(ok),
        problem=problem,
        frame_onsets=None
        if win.start is None
        else onsets[win.first_frame_pulse : win.first_frame_pulse + n_frames + 1],  # fmt: skip
    )
