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
delay by FFT) with SpikeInterface's ``phase_shift``, so that all channels refer to the same instant,
rounds to int16 (clipped), and copies the sync word bit for bit. The file is processed in chunks with
overlapping margins (zero-padded and tapered at the file ends, as SpikeInterface does), so memory does
not grow with the recording; a chunked result equals the whole-file result to within one LSB. The
original rewrote the raw ``.ap.bin`` in place; here the raw file is only read.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from usvflow.io.atomic import InputError, atomic_path
from usvflow.io.rows import RowReader
from usvflow.io.spikeglx import SpikeGLXMeta, n_samples, parse_meta, read_meta, write_meta

__all__ = ["adc_sample_shifts", "phase_shift_copy"]


def adc_sample_shifts(meta: SpikeGLXMeta | str | os.PathLike) -> np.ndarray:
    """Sampling delay (in samples, ``0 <= s < 1``) of every saved AP channel of an imec AP stream."""
    meta = meta if isinstance(meta, SpikeGLXMeta) else parse_meta(meta)
    if meta.type_this != "imec" or meta.n_ap == 0:
        raise InputError(meta.path, "phase shift needs an imec AP stream (snsApLfSy with AP channels)")
    if meta.probe_type in (None, 0):
        per_adc, cycle = 12, 13
    elif meta.probe_type in (21, 24, 2003, 2013, 2014, 2020, 2021):
        per_adc, cycle = 16, 16
    else:
        raise InputError(meta.path, f"no ADC layout known for probe type {meta.probe_type} (imDatPrb_type)")
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
) -> dict:
    """Write the phase-shift-corrected copy of ``bin_path`` (+ its meta); returns a summary.

    The output meta is the input's with ``fileSHA1`` removed and ``usvflowPhaseShift=true`` added.
    """
    meta = parse_meta(meta_path)
    bin_path, out_bin = Path(bin_path), Path(out_bin)
    if out_bin.resolve() == bin_path.resolve():
        raise InputError(out_bin, "the phase-shifted copy must not replace the raw recording")
    n = n_samples(bin_path, meta)
    shifts = adc_sample_shifts(meta)
    nch, n_ap = meta.n_saved_chans, meta.n_ap
    data = RowReader(bin_path, n, nch, np.int16)
    shifted = _shifted_ap(bin_path, meta, shifts, margin) if n else None
    with data, atomic_path(out_bin) as tmp:
        with open(tmp, "wb") as fh:
            for a in range(0, n, chunk):
                b = min(n, a + chunk)
                y = shifted.get_traces(start_frame=a, end_frame=b)
                out = np.empty((b - a, nch), dtype=np.int16)
                out[:, :n_ap] = np.clip(np.rint(y), -32768, 32767)
                out[:, n_ap:] = data[a:b, n_ap:]
                fh.write(out.tobytes())
            fh.flush()
            os.fsync(fh.fileno())
        raw = read_meta(meta_path)
        raw.pop("fileSHA1", None)
        raw["usvflowPhaseShift"] = "true"
        write_meta(out_meta, raw, newline="\r\n" if b"\r\n" in Path(meta_path).read_bytes()[:4096] else "\n")
    return {"n_samples": n, "n_ap_shifted": n_ap, "n_unshifted": nch - n_ap, "max_shift": float(shifts.max())}


def _shifted_ap(bin_path, meta: SpikeGLXMeta, shifts: np.ndarray, margin: int):
    """SpikeInterface's lazy phase-shifted recording of the AP channels (float64 traces)."""
    import spikeinterface.core as sc
    from spikeinterface.preprocessing import astype, phase_shift

    rate = float(meta.sample_rate)
    rec = sc.BinaryRecordingExtractor(
        file_paths=[str(bin_path)],
        sampling_frequency=rate,
        dtype="int16",
        num_channels=meta.n_saved_chans,
        time_axis=0,
        file_offset=0,
    )
    # float64 in and out: rounding and clipping to int16 are done by the caller
    ap = astype(rec.select_channels(rec.channel_ids[: meta.n_ap]), "float64")
    return phase_shift(
        ap, margin_ms=margin * 1000.0 / rate, inter_sample_shift=shifts, dtype="float64"
    )
