"""ADC phase-shift correction of a Neuropixels AP recording, written as a copy (never in place).

A Neuropixels probe digitises its channels with multiplexed ADCs: the channels of one ADC are sampled
one after the other within each sample period, so channel ``c`` is sampled ``s_c`` sample periods
after the first channel of its ADC. With ``n`` channels per ADC and a cycle of ``k`` slots
(NP1.0: 12 and 13; NP2.0: 16 and 16), channel ``c`` belongs to ADC ``2 * floor(c / 2n) + c % 2`` and
is the ``j``-th channel of that ADC, ``s_c = j / k`` (the layout used by probeinterface/SpikeInterface
and IBL).

:func:`adc_sample_shifts` gives these delays from the ``.meta``; on the real NP1.0, NP1.0-subset and
NP2.0 metas they equal probeinterface's (``adc_sample_order / cycle``). :func:`phase_shift_copy`
delays every AP channel by ``s_c`` samples (``y_c[t] = x_c[t - s_c]``, a band-limited fractional
delay by FFT) as SpikeInterface's ``phase_shift`` does (its chunk computation restated channel-major
in blocks of channels, within one LSB of it), so that all channels refer to the same instant, rounds
to int16 (clipped), and copies the sync word bit for bit. The file is processed in chunks with
overlapping tapered margins (zero-padded at the file ends, as SpikeInterface does), so memory does
not grow with the recording, on several threads (the same output for any number); a chunked result
equals the whole-file result to within one LSB. The original rewrote the raw ``.ap.bin`` in place;
here the raw file is only read.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from scipy.fft import irfft, rfft

from usvflow.io.atomic import InputError, atomic_path
from usvflow.io.progress import progress
from usvflow.io.rows import RowReader
from usvflow.io.spikeglx import (
    SpikeGLXMeta,
    n_samples,
    parse_meta,
    read_meta,
    write_meta,
)

__all__ = ["adc_sample_shifts", "phase_shift_copy"]


def adc_sample_shifts(meta: SpikeGLXMeta | str | os.PathLike) -> np.ndarray:
    """Sampling delay (in samples, ``0 <= s < 1``) of every saved AP channel of an imec AP stream."""
    meta = meta if isinstance(meta, SpikeGLXMeta) else parse_meta(meta)
    if meta.type_this != "imec" or meta.n_ap == 0:
        raise InputError(
            meta.path,
            "phase shift needs an imec AP stream (snsApLfSy with AP channels)",
        )
    if meta.probe_type in (None, 0):
        per_adc, cycle = 12, 13
    elif meta.probe_type in (21, 24, 2003, 2013, 2014, 2020, 2021):
        per_adc, cycle = 16, 16
    else:
        raise InputError(
            meta.path,
            f"no ADC layout known for probe type {meta.probe_type} (imDatPrb_type)",
        )
    acq_ap = meta.acq_ap or 384
    ch = np.arange(acq_ap)
    adc = (ch // (2 * per_adc)) * 2 + ch % 2
    shifts = np.zeros(acq_ap)
    for a in np.unique(adc):
        idx = np.flatnonzero(adc == a)
        shifts[idx] = np.arange(len(idx)) / cycle
    saved_ap = [c for c in meta.saved_channels[: meta.n_ap]]
    if any(c >= acq_ap for c in saved_ap):
        raise InputError(meta.path, "saved AP channels outside the acquired AP range")
    return shifts[saved_ap]


def phase_shift_copy(
    bin_path: str | os.PathLike,
    meta_path: str | os.PathLike,
    out_bin: str | os.PathLike,
    out_meta: str | os.PathLike,
    chunk: int = 65536,
    margin: int = 4096,
    workers: int = 1,
) -> dict:
    """Write the phase-shift-corrected copy of ``bin_path`` (+ its meta); returns a summary.

    Chunks of ``chunk`` samples are shifted on ``workers`` threads (the FFTs and numpy release the
    GIL) and written in order; each chunk is computed from the file alone, so the output is the same
    for any number of workers. The output meta is the input's with ``fileSHA1`` removed and
    ``usvflowPhaseShift=true`` added.
    """
    meta = parse_meta(meta_path)
    bin_path, out_bin = Path(bin_path), Path(out_bin)
    if out_bin.resolve() == bin_path.resolve():
        raise InputError(out_bin, "the phase-shifted copy must not replace the raw recording")
    if chunk < 1 or margin < 1:
        raise ValueError("chunk and margin must be positive")
    n = n_samples(bin_path, meta)
    shifts = adc_sample_shifts(meta)
    nch, n_ap = meta.n_saved_chans, meta.n_ap
    shifter = _ChunkShifter(shifts, margin)
    workers = max(1, int(workers))
    with RowReader(bin_path, n, nch, np.int16) as data, atomic_path(out_bin) as tmp:
        with open(tmp, "wb") as fh, ThreadPoolExecutor(workers) as pool:
            starts = iter(range(0, n, chunk))
            pending: deque = deque()
            bar = progress(total=n, desc=f"phase shift {Path(bin_path).name}", unit="sample",
                           unit_scale=True)  # fmt: skip
            while True:
                while len(pending) < workers + 1:  # bounded read-ahead: memory flat in n
                    a = next(starts, None)
                    if a is None:
                        break
                    pending.append(pool.submit(shifter.copy, data, a, min(n, a + chunk), n_ap))
                if not pending:
                    break
                block = pending.popleft().result()
                fh.write(block.tobytes())
                bar.update(len(block))
            bar.close()
            fh.flush()
            os.fsync(fh.fileno())
        raw = read_meta(meta_path)
        raw.pop("fileSHA1", None)
        raw["usvflowPhaseShift"] = "true"
        write_meta(
            out_meta,
            raw,
            newline="\r\n" if b"\r\n" in Path(meta_path).read_bytes()[:4096] else "\n",
        )
    return {
        "n_samples": n,
        "n_ap_shifted": n_ap,
        "n_unshifted": nch - n_ap,
        "max_shift": float(shifts.max()),
    }


class _ChunkShifter:
    """SpikeInterface's ``phase_shift`` of one chunk (``PhaseShiftRecordingSegment.get_traces``
    with ``get_chunk_with_margin(add_zeros=True, window_on_margin=True)`` and
    ``apply_frequency_shift``), restated channel-major and in blocks of channels so that the
    arrays stay small and are reused by the allocator: the chunk and ``margin`` samples either side
    (zeros past the file ends), both margins tapered by a raised cosine, delayed by
    ``exp(-i w s_c)`` in the real-FFT domain, the margins cut off, rounded and clipped to int16."""

    #: channels per FFT block (a block's arrays stay under the allocator's mmap threshold)
    BLOCK = 16

    def __init__(self, shifts: np.ndarray, margin: int):
        self.margin = int(margin)
        self.unique, self.index = np.unique(
            np.asarray(shifts, dtype=np.float64), return_inverse=True
        )
        self.taper = (1 - np.cos(np.arange(self.margin) / self.margin * np.pi)) / 2
        self._rot: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()

    def rotations(self, size: int) -> np.ndarray:
        """``(n_unique_shifts, size // 2 + 1)`` phase factors for an FFT of ``size`` samples."""
        with self._lock:
            rot = self._rot.get(size)
            if rot is None:
                w = 2 * np.pi * np.fft.rfftfreq(size)
                rot = np.exp(-1j * (w[:, None] * self.unique[None, :])).T.copy()
                self._rot[size] = rot
            return rot

    def copy(self, data: RowReader, a: int, b: int, n_ap: int) -> np.ndarray:
        """Rows ``[a, b)`` of the output: AP columns shifted, the others copied."""
        m, n = self.margin, data.shape[0]
        a2, b2 = max(0, a - m), min(n, b + m)
        raw = data.read(a2, b2)
        out = np.empty((b - a, raw.shape[1]), np.int16)
        out[:, n_ap:] = raw[a - a2 : a - a2 + b - a, n_ap:]
        size = b - a + 2 * m
        i0 = m - (a - a2)  # zeros before the file's first sample
        rot = self.rotations(size)
        x = np.empty((self.BLOCK, size))
        for c0 in range(0, n_ap, self.BLOCK):
            c1 = min(n_ap, c0 + self.BLOCK)
            xb = x[: c1 - c0]
            xb[:] = 0.0
            xb[:, i0 : i0 + raw.shape[0]] = raw[:, c0:c1].T
            xb[:, :m] *= self.taper
            xb[:, -m:] *= self.taper[::-1]
            f = rfft(xb, axis=1, overwrite_x=False)
            f *= rot[self.index[c0:c1]]
            y = irfft(f, n=size, axis=1, overwrite_x=True)[:, m : m + b - a]
            out[:, c0:c1] = np.clip(np.rint(y), -32768, 32767).T
        return out
