"""Step 15b-d: inter-pulse intervals (IPIs) of the Arduino LED train in video, audio and NI-DAQ, and their
alignment with the Arduino's own log.

The Arduino holds the LEDs ON for 250 ms, then OFF for a random ``250..1499`` ms (the IPI, printed to
the CoolTerm log). Each stream sees the same train on its own clock:

* **video** (:func:`video_ipi_candidates`): per frame a brightness ``b`` (median over the 3 LEDs of the
  RGB mean, fallback the max over LEDs, robust to a cable hiding one LED); ``r = 1 - b[1:]/b[:-1]``;
  for each threshold of the sweep ``0.99 .. 0.20`` an OFF event is a frame whose ``r > thr`` after a
  steady frame (``|r| < thr``), an ON event likewise with ``r < -thr``; opposite events closer than
  ``min_duration`` frames are removed in pairs (glitches), then the second of two same-type events is
  dropped. An IPI runs from the first dark frame to the first bright frame after it (the original's
  ``ipi_frames = neg - pos - 1`` frames). The original stops at the first threshold whose event
  counts balance; here every candidate is matched against the Arduino log and the best match wins.
* **audio** (:func:`audio_ipis`): the LSB of the sync channel, streamed; an IPI runs from a falling
  edge (first low sample) to the next rising edge: ``(rise - fall) * 1000 / sr`` ms.
* **NI-DAQ** (:func:`nidq_ipis`): the digital word (last saved channel), triggerbox and sync bits;
  the video window is found on the triggerbox bit like the audio crop (largest break, ``N`` frames).

:func:`match_to_arduino` slides a measured IPI sequence (ms) along the Arduino log and counts, for each
offset, the IPIs that agree within the tolerance. Unlike the original (which requires every IPI to
agree and ravels multiple matching offsets together, B14) the best offset is accepted when it is unique
and enough IPIs agree, so a single faulty IPI (a clock jump) is located instead of hiding the rest.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from usvflow.audio.crop import iter_bit_edges, level_changes
from usvflow.io.atomic import InputError
from usvflow.io.rows import RowReader
from usvflow.io.spikeglx import n_samples as spikeglx_n_samples
from usvflow.io.spikeglx import parse_meta

from ..io.config import setting_default

__all__ = [
    "AudioIPIs",
    "Match",
    "VideoIPIs",
    "audio_ipis",
    "brightness",
    "filter_events_by_duration",
    "find_events",
    "lsb_edges",
    "match_to_arduino",
    "nidq_ipis",
    "pair_events",
    "threshold_sweep",
    "validate_sequence",
    "video_ipi_candidates",
]

#: fewest agreeing IPIs for an alignment with the Arduino log
MIN_MATCHED = 3
#: with fewer agreeing IPIs than this, every overlapping IPI must agree (random IPIs agree within 12 ms
#: with p ~ 0.02, so 4 chance agreements at one offset are ~1e-7 events)
MIN_MATCHED_PARTIAL = 4
#: more LSB edges than this per sample is noise, not the LED train
MAX_EDGE_DENSITY = 1.0 / 64
OFF, ON = 1, -1


# ------------------------------------------------------------------------------ video


def brightness(px: np.ndarray, how: str = "median") -> np.ndarray:
    """Per-frame LED brightness of ``(N, 3, 3)`` intensities: RGB mean, then median (or max) over LEDs."""
    px = np.asarray(px)
    if px.ndim != 3 or px.shape[1:] != (3, 3):
        raise ValueError(f"LED intensities must have shape (N, 3, 3), got {px.shape}")
    m = px.astype(np.float64).mean(axis=2)
    if how == "median":
        return np.median(m, axis=1) + 1e-6
    if how == "max":
        return m.max(axis=1) + 1e-6
    raise ValueError(f"how must be 'median' or 'max', got {how!r}")


def threshold_sweep(upper: float = 1.0) -> np.ndarray:
    """The original's sweep ``np.arange(0.2, upper, 0.01)[::-1]`` (0.99 .. 0.20 for ``upper = 1``)."""
    return np.round(np.arange(0.2, upper, 0.01)[::-1], 10)


def find_events(b: np.ndarray, thr: float) -> tuple[np.ndarray, np.ndarray]:
    """Frames where the LED goes OFF and ON: the first frame showing the new state.

    ``r[j] = 1 - b[j+1]/b[j]``; OFF at frame ``j + 2`` where ``|r[j]| < thr`` and ``r[j+1] > thr``, ON
    where ``r[j+1] < -thr`` (the original's ``pos + 2`` and ``neg + 1``).
    """
    b = np.asarray(b, dtype=np.float64)
    if len(b) < 3:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    r = 1.0 - b[1:] / b[:-1]
    steady = np.abs(r[:-1]) < thr
    off = np.flatnonzero(steady & (r[1:] > thr)) + 2
    on = np.flatnonzero(steady & (r[1:] < -thr)) + 2
    return off.astype(np.int64), on.astype(np.int64)


def _merge(off: np.ndarray, on: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    frames = np.r_[off, on].astype(np.int64)
    kinds = np.r_[np.full(len(off), OFF), np.full(len(on), ON)].astype(np.int8)
    order = np.lexsort((kinds, frames))
    return frames[order], kinds[order]


def filter_events_by_duration(
    frames: np.ndarray, kinds: np.ndarray, min_duration: int
) -> tuple[np.ndarray, np.ndarray]:
    """Remove both events of any opposite-type pair closer than ``min_duration`` frames (LED glitches)."""
    keep_f: list[int] = []
    keep_k: list[int] = []
    for f, k in zip(frames.tolist(), kinds.tolist()):
        if keep_f and keep_k[-1] != k and f - keep_f[-1] < min_duration:
            keep_f.pop()
            keep_k.pop()
            continue
        keep_f.append(f)
        keep_k.append(k)
    return np.asarray(keep_f, np.int64), np.asarray(keep_k, np.int8)


def validate_sequence(frames: np.ndarray, kinds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop the second of consecutive same-type events (the sequence then alternates)."""
    if len(kinds) == 0:
        return frames, kinds
    keep = np.r_[True, kinds[1:] != kinds[:-1]]
    # a run of equal kinds keeps its first element only
    return frames[keep], kinds[keep]


def pair_events(frames: np.ndarray, kinds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(off, on)`` of every complete IPI of an alternating sequence (leading ON / trailing OFF dropped)."""
    f, k = frames, kinds
    if len(k) and k[0] == ON:
        f, k = f[1:], k[1:]
    if len(k) and k[-1] == OFF:
        f, k = f[:-1], k[:-1]
    return f[k == OFF], f[k == ON]


@dataclass
class VideoIPIs:
    """The IPIs found in one camera's LED intensities with one brightness measure and threshold."""

    start_frames: np.ndarray  # first frame with the LED off
    end_frames: np.ndarray  # first frame with the LED on again
    ipi_ms: np.ndarray  # round(frames * 1000 / fps)
    threshold: float
    how: str  # "median" or "max"

    @property
    def ipi_frames(self) -> np.ndarray:
        return self.end_frames - self.start_frames


def video_ipi_candidates(
    px: np.ndarray, fps: float, upper: float = 1.0, min_duration: int = 35
) -> Iterator[VideoIPIs]:
    """IPI sequences for every (brightness measure, threshold) of the sweep that yields at least one IPI.

    Median brightness first, then the max over LEDs; thresholds from high to low; a sequence equal to
    the previous candidate's is not repeated.
    """
    thresholds = threshold_sweep(upper)
    for how in ("median", "max"):
        b = brightness(px, how)
        last = None
        for thr in thresholds:
            off, on = find_events(b, float(thr))
            f, k = filter_events_by_duration(*_merge(off, on), min_duration)
            f, k = validate_sequence(f, k)
            start, end = pair_events(f, k)
            if len(start) == 0:
                continue
            key = (start.tobytes(), end.tobytes())
            if key == last:
                continue
            last = key
            ms = np.rint((end - start) * 1000.0 / fps).astype(np.int64)
            yield VideoIPIs(start, end, ms, float(thr), how)


# ------------------------------------------------------------------------------ audio / digital words


def lsb_edges(
    blocks: Iterable[np.ndarray],
    bit: int = 0,
    max_density: float | None = MAX_EDGE_DENSITY,
    name=None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Falling and rising edges of ``bit`` in a stream of 1-D integer blocks: ``(falls, rises, n)``.

    A fall is the index of the first low sample after a high one, a rise the first high sample after a
    low one; ``n`` is the number of samples. More edges than ``max_density * n + 1000`` raise
    :class:`InputError` (the bit is noise, not a pulse train).
    """
    falls: list[np.ndarray] = []
    rises: list[np.ndarray] = []
    count = base = 0
    for fi, ri, base in iter_bit_edges(blocks, bit):
        falls.append(fi)
        rises.append(ri)
        count += len(fi) + len(ri)
        if max_density is not None and count > max_density * base + 1000:
            raise InputError(
                name,
                f"bit {bit} changes {count} times in the first {base} samples: noise, not the LED pulse train "
                "(is the sync channel / bit right?)",
            )
    cat = lambda a: np.concatenate(a).astype(np.int64) if a else np.zeros(0, np.int64)  # noqa: E731
    return cat(falls), cat(rises), base


def _pair_low(falls: np.ndarray, rises: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Complete low periods: each fall with the first rise after it (a rise before the first fall and
    a fall without a later rise are incomplete)."""
    if len(falls) == 0 or len(rises) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    j = np.searchsorted(rises, falls, side="right")
    ok = j < len(rises)
    f, r = falls[ok], rises[j[ok]]
    if len(f) == 0:  # every fall after the last rise (a recording that ends in a low period)
        return f, r
    # alternating edges: each rise closes exactly one fall
    keep = np.r_[r[1:] != r[:-1], True]
    return f[keep], r[keep]


@dataclass
class AudioIPIs:
    """The LED-off periods in the LSB of one audio file."""

    start_samples: np.ndarray  # first low sample
    end_samples: np.ndarray  # first high sample after it
    sample_rate: float
    n_samples: int
    path: str | None = None

    @property
    def ipi_ms(self) -> np.ndarray:
        return (self.end_samples - self.start_samples) * 1000.0 / self.sample_rate


def audio_ipis(
    wav: str | os.PathLike | np.ndarray, sample_rate: float | None = None, block: int = 1 << 20
) -> AudioIPIs:
    """LED-off periods in the LSB of a mono 16-bit WAV (streamed) or of an int16 array (``sample_rate``)."""
    if isinstance(wav, np.ndarray):
        if sample_rate is None:
            raise ValueError("sample_rate is needed for an array")
        blocks = (wav[k : k + block] for k in range(0, len(wav), block))
        name = None
    else:
        from usvflow.audio.wav import iter_blocks, wav_info

        info = wav_info(wav)
        if info.channels != 1:
            raise InputError(wav, f"{info.channels} channels; the sync channel file must be mono")
        sample_rate = float(info.samplerate)
        blocks = iter_blocks(wav, channels=0, block=block)
        name = str(wav)
    falls, rises, n = lsb_edges(blocks, 0, name=name)
    s, e = _pair_low(falls, rises)
    return AudioIPIs(s, e, float(sample_rate), int(n), name)


def _nidq_word_blocks(bin_path, n_ch: int, n: int, block: int) -> Iterator[np.ndarray]:
    with RowReader(bin_path, n, n_ch, np.int16) as rows:
        for k in range(0, n, block):
            yield np.ascontiguousarray(rows[k : k + block, -1]).view(np.uint16)


def nidq_ipis(
    bin_path: str | os.PathLike,
    n_frames: int,
    sample_rate: float | None = None,
    n_channels: int | None = None,
    triggerbox_bit: int | None = None,
    sync_bit: int | None = None,
    min_break_periods: float = 10.0,
    block: int = 1 << 18,
) -> dict:
    """IPIs of the sync bit of a NI-DAQ recording inside its video window (step 15d).

    ``n_channels``/``sample_rate`` default to the ``.meta`` beside the ``.bin`` (``nSavedChans``,
    ``niSampRate``; a calibrated ``sample_rate`` overrides the meta). The digital word is the last saved
    channel. Video window: first high sample of the triggerbox pulse ending the largest break (frame 0)
    to the pulse ``n_frames`` later. Returns ``{"ipi_ms", "start_samples" (relative to frame 0),
    "end_samples", "frame0_sample", "end_sample", "sample_rate", "largest_break_samples"}``.
    """
    sync_bit = setting_default("sync.av.nidq.sync_bit", sync_bit)
    triggerbox_bit = setting_default("sync.av.nidq.triggerbox_bit", triggerbox_bit)
    bin_path = Path(bin_path)
    meta_path = bin_path.with_suffix(".meta")
    if meta_path.is_file():
        meta = parse_meta(meta_path)
        n = spikeglx_n_samples(bin_path, meta)
        n_ch = meta.n_saved_chans if n_channels is None else int(n_channels)
        if n_ch != meta.n_saved_chans:
            raise InputError(
                bin_path,
                f"{meta_path.name} says nSavedChans={meta.n_saved_chans}, config says {n_ch}",
            )
        rate = float(meta.sample_rate if sample_rate is None else sample_rate)
    else:
        if n_channels is None or sample_rate is None:
            raise InputError(bin_path, f"no {meta_path.name}: give n_channels and sample_rate")
        n_ch, rate = int(n_channels), float(sample_rate)
        size = bin_path.stat().st_size
        if size % (2 * n_ch):
            raise InputError(
                bin_path, f"size {size} bytes is not a multiple of 2 x {n_ch} channels"
            )
        n = size // (2 * n_ch)
    # one pass over the word: edges of both bits
    tb_r: list[np.ndarray] = []
    sy_f: list[np.ndarray] = []
    sy_r: list[np.ndarray] = []
    prev = None
    base = 0
    for w in _nidq_word_blocks(bin_path, n_ch, n, block):
        tb = (w & (1 << triggerbox_bit)).astype(bool)
        sy = (w & (1 << sync_bit)).astype(bool)
        if prev is None:
            prev = (tb[0], sy[0])
        tb_r.append(level_changes(tb, prev[0], base)[1])
        f, r = level_changes(sy, prev[1], base)
        sy_f.append(f)
        sy_r.append(r)
        prev = (tb[-1], sy[-1])
        base += len(w)
    cat = lambda a: np.concatenate(a).astype(np.int64) if a else np.zeros(0, np.int64)  # noqa: E731
    edges, falls, rises = cat(tb_r), cat(sy_f), cat(sy_r)
    if len(edges) < 2:
        raise InputError(
            bin_path,
            f"{len(edges)} triggerbox pulse(s) on bit {triggerbox_bit} of the digital word",
        )
    gaps = np.diff(edges)
    hop = int(np.argmax(gaps)) + 1
    period = float(np.median(gaps))
    if gaps[hop - 1] < min_break_periods * period:
        raise InputError(bin_path, f"no break in the triggerbox pulses on bit {triggerbox_bit} (largest gap "
                         f"{int(gaps[hop - 1])} samples, frame period {period:g}): recording start not found")  # fmt: skip
    if hop + n_frames >= len(edges):
        raise InputError(
            bin_path, f"{len(edges) - hop} triggerbox pulses after the break, need {n_frames + 1}"
        )
    start, end = int(edges[hop]), int(edges[hop + n_frames])
    s, e = _pair_low(falls, rises)
    inside = (s >= start) & (e <= end)
    s, e = s[inside], e[inside]
    return {
        "ipi_ms": (e - s) * 1000.0 / rate,
        "start_samples": s - start,
        "end_samples": e - start,
        "frame0_sample": start,
        "end_sample": end,
        "sample_rate": rate,
        "largest_break_samples": int(gaps[hop - 1]),
    }


# ------------------------------------------------------------------------------ Arduino log


@dataclass
class Match:
    """Alignment of a measured IPI sequence with the Arduino log: measured ``i`` is Arduino ``offset + i``."""

    accepted: bool
    offset: int | None
    n_measured: int
    n_arduino: int
    n_overlap: int
    n_matched: int
    second_best: int  # agreeing IPIs at the next best offset
    n_offsets: int  # offsets tried
    diff_ms: np.ndarray = field(repr=False)  # measured - Arduino (NaN outside the overlap)
    reason: str = ""

    @property
    def arduino_index(self) -> np.ndarray:
        """Arduino index of every measured IPI (-1 outside the log)."""
        if self.offset is None:
            return np.full(self.n_measured, -1, np.int64)
        k = np.arange(self.n_measured) + self.offset
        return np.where((k >= 0) & (k < self.n_arduino), k, -1)

    def summary(self) -> dict:
        d = np.abs(self.diff_ms[np.isfinite(self.diff_ms)])
        return {
            "accepted": self.accepted,
            "arduino_offset": self.offset,
            "n_measured": self.n_measured,
            "n_arduino": self.n_arduino,
            "n_overlap": self.n_overlap,
            "n_matched": self.n_matched,
            "second_best_matched": self.second_best,
            "offsets_tried": self.n_offsets,
            "max_abs_diff_ms": float(d.max()) if len(d) else None,
            "reason": self.reason,
        }


def match_to_arduino(
    measured_ms, arduino_ms, tolerance_ms: float = 12.0, min_fraction: float = 0.8
) -> Match:
    """Slide ``measured_ms`` along ``arduino_ms``; the offset with the most IPIs within tolerance wins.

    Offsets may let the sequences overlap only partly (a log that starts late or ends early). Accepted
    when the best offset is unique, at least :data:`MIN_MATCHED` IPIs agree and either every
    overlapping IPI agrees or at least :data:`MIN_MATCHED_PARTIAL` do and they are ``min_fraction`` of
    the overlap. ``reason`` says why not.
    """
    v = np.asarray(measured_ms, dtype=np.float64)
    a = np.asarray(arduino_ms, dtype=np.float64)
    nv, na = len(v), len(a)
    empty = Match(False, None, nv, na, 0, 0, 0, 0, np.full(nv, np.nan))
    if nv == 0:
        empty.reason = "no IPIs measured"
        return empty
    if na == 0:
        empty.reason = "the Arduino log holds no IPIs"
        return empty
    # counts[o + nv - 1]: agreeing IPIs at offset o (measured i <-> Arduino o + i), o in [-(nv-1), na-1]
    counts = np.zeros(nv + na - 1, np.int64)
    for i in range(nv):
        ok = np.abs(a - v[i]) <= tolerance_ms
        counts[nv - 1 - i : nv - 1 - i + na] += ok
    offsets = np.arange(-(nv - 1), na)
    overlap = np.minimum(nv, na - offsets) - np.maximum(0, -offsets)
    best = int(np.argmax(counts))
    n_best = int(counts[best])
    ties = int(np.sum(counts == n_best))
    second = int(np.max(np.delete(counts, best))) if len(counts) > 1 else 0
    o = int(offsets[best])
    idx = np.arange(nv) + o
    inside = (idx >= 0) & (idx < na)
    diff = np.full(nv, np.nan)
    diff[inside] = v[inside] - a[idx[inside]]
    ov = int(overlap[best])
    m = Match(False, o, nv, na, ov, n_best, second, len(offsets), diff)
    if n_best < MIN_MATCHED or (n_best < ov and n_best < 0.25 * ov):
        m.offset = None
        m.diff_ms = np.full(nv, np.nan)
        m.reason = (f"matches the Arduino log nowhere: tried {len(offsets)} offsets of {nv} measured IPIs along "
                    f"{na} logged ones; at best {n_best} of {ov} overlapping IPIs agree within {tolerance_ms:g} ms "
                    f"(chance level ~2 %; need {MIN_MATCHED} and {min_fraction:.0%})")  # fmt: skip
    elif ties > 1:
        m.offset = None
        m.diff_ms = np.full(nv, np.nan)
        m.reason = f"ambiguous: {ties} offsets along the Arduino log match {n_best} IPIs each"
    elif n_best < ov and (n_best < MIN_MATCHED_PARTIAL or n_best < min_fraction * ov):
        m.reason = (f"only {n_best} of {ov} overlapping IPIs agree with the Arduino log within {tolerance_ms:g} ms "
                    f"at the best offset {o} (need all, or >= {MIN_MATCHED_PARTIAL} and {min_fraction:.0%})")  # fmt: skip
    else:
        m.accepted = True
    return m
