"""The 30 kHz high-pass of docs/original-pipeline.md step 10 (the original's ``sox in.wav out.wav
sinc 30000-0``), streamed.

SoX's ``sinc`` effect (``sinc.c``) designs Kaiser-windowed sinc FIR filters and applies them by FFT
convolution. With the original's arguments ``sinc {high}-{low}`` = ``sinc 30000-0`` the low-pass half
is disabled (``lpf()`` returns nothing for a cut-off <= 0), leaving a **high-pass at 30 kHz** with
SoX's defaults:

* stop-band attenuation ``att = 120`` dB;
* transition band ``tr_bw = (tbw ? tbw / Fn : 0.05) * 0.5`` in units of the sample rate, i.e. by
  default a full transition width of 5 % of Nyquist (= 0.025 fs = **6.25 kHz at 250 kHz**), centred on
  the cut-off (the windowed-sinc cut-off is the -6 dB point): stop band up to 26.875 kHz, pass band
  from 33.125 kHz;
* ``num_taps = ceil(f(beta) / tr_bw + 1) | 1`` with SoX's empirical fit ``f``, linear phase
  (``phase 50``). ``sox -V4 in.wav out.wav sinc 30000-0`` at 250 kHz reports 316 -> **317 taps**;
  its impulse response (64-bit float chain) measures: stop band <= -120.8 dB below 26.875 kHz, pass
  band ripple 8.6e-6 dB above 33.125 kHz, -100 dB at 26.98 kHz, within 0.01 dB from 32.45 kHz.

With the default ``atten_db = 122`` (SoX's nominal 120 dB + 2 dB, so that ours is at least as deep
as SoX's *measured* filter) :func:`design_highpass` gives 333 taps at 250 kHz: stop band <= -122.96 dB
below 26.875 kHz, ripple 6.2e-6 dB above 33.125 kHz, -100 dB at 27.10 kHz and within 0.01 dB from
32.35 kHz (transition -100 dB -> -0.01 dB: 5.25 kHz, SoX 5.47 kHz): deeper and steeper. With
``atten_db = 120`` it has SoX's 317 taps and -120.07 dB.

:func:`design_highpass` builds the same kind of filter (odd length, type I, linear phase, high-pass
by spectral inversion ``delta - lowpass`` as SoX does) from Kaiser's formulas, then *measures* its
response on a dense grid and lengthens it until the stop band really reaches ``atten_db`` below
``cutoff - transition/2``: at least as deep and as steep as SoX's. :func:`design_sinc` reproduces
SoX's combination rules for the other ``freq_bounds`` (low-pass, band-pass, band-reject), and
:func:`freq_bounds_taps` maps the original's ``--freq-bounds low high`` (``sinc high-low``).

:func:`highpass_file` applies any odd-length linear-phase FIR by overlap-save with ``scipy.fft`` in
float64, one block at a time (memory independent of the length), delay-compensated by
``(len(taps) - 1) / 2`` samples so the output has the input's length and timing (zeros assumed
outside the file), rounded to the nearest integer and clipped to int16. Unlike SoX it adds no dither
(SoX adds TPDF dither to 16-bit output of sample-changing effects).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import scipy.fft

from ..io.config import setting_default
from ..io.progress import progress
from .wav import WavReader, WavWriter, stream_over_array

SOX_ATTEN_DB = 120.0
DEFAULT_ATTEN_DB = SOX_ATTEN_DB + 2.0  # at least as deep as SoX's measured 120.8 dB
SOX_TRANSITION_FRACTION_OF_NYQUIST = 0.05


def kaiser_beta(atten_db: float) -> float:
    """Kaiser's window parameter for a stop-band attenuation of ``atten_db`` (Oppenheim & Schafer)."""
    a = float(atten_db)
    if a > 50:
        return 0.1102 * (a - 8.7)
    if a >= 21:
        return 0.5842 * (a - 21) ** 0.4 + 0.07886 * (a - 21)
    return 0.0


def kaiser_length(atten_db: float, transition_hz: float, fs: float) -> int:
    """Odd number of taps from Kaiser's estimate ``N - 1 = (A - 7.95) / (2.285 * 2*pi * df/fs)``."""
    n = math.ceil((atten_db - 7.95) / (2.285 * 2 * math.pi * transition_hz / fs)) + 1
    return n | 1


def _kaiser_lowpass(n: int, fc: float, fs: float, beta: float) -> np.ndarray:
    m = (n - 1) / 2
    t = np.arange(n) - m
    f = 2.0 * fc / fs
    return f * np.sinc(f * t) * np.kaiser(n, beta)


def freq_response(
    taps: np.ndarray, fs: float, n_fft: int = 1 << 18
) -> tuple[np.ndarray, np.ndarray]:
    """``(frequencies in Hz, |H| in dB)`` on a grid of ``n_fft/2 + 1`` points."""
    h = np.abs(np.fft.rfft(np.asarray(taps, np.float64), n_fft))
    with np.errstate(divide="ignore"):
        return np.fft.rfftfreq(n_fft, 1.0 / fs), 20 * np.log10(np.maximum(h, 1e-300))


def _stopband_ok(taps, fs, stop_edges, atten_db):
    f, db = freq_response(taps, fs, 1 << 16)
    worst = -np.inf
    for lo, hi in stop_edges:
        sel = (f >= lo) & (f <= hi)
        if sel.any():
            worst = max(worst, db[sel].max())
    return worst <= -atten_db


def _lowpass_or_highpass(fs, fc, atten_db, transition_hz, highpass: bool, num_taps: int | None):
    nyq = fs / 2
    if not 0 < fc < nyq:
        raise ValueError(
            f"cut-off {fc} Hz must lie strictly between 0 and {nyq} Hz (sample rate / 2)"
        )
    tw = SOX_TRANSITION_FRACTION_OF_NYQUIST * nyq if transition_hz is None else float(transition_hz)
    if tw <= 0:
        raise ValueError("transition width must be > 0")
    beta = kaiser_beta(atten_db)
    n = kaiser_length(atten_db, tw, fs) if num_taps is None else int(num_taps) | 1
    stop = [(0.0, fc - tw / 2)] if highpass else [(fc + tw / 2, nyq)]
    for _ in range(
        200
    ):  # lengthen until the measured stop band is deep enough (Kaiser's N is an estimate)
        lp = _kaiser_lowpass(n, fc, fs, beta)
        h = -lp
        if highpass:
            h[(n - 1) // 2] += 1.0
        else:
            h = lp
        if num_taps is not None or _stopband_ok(h, fs, stop, atten_db):
            return h
        n += 2
    raise RuntimeError("FIR design did not converge")  # pragma: no cover


def design_highpass(
    fs: float,
    cutoff: float = 30000.0,
    atten_db: float = DEFAULT_ATTEN_DB,
    transition_hz: float | None = None,
    num_taps: int | None = None,
) -> np.ndarray:
    """Linear-phase (type I, odd length) Kaiser-windowed FIR high-pass, SoX ``sinc cutoff-0`` style.

    ``transition_hz`` defaults to SoX's 5 % of Nyquist (full width, centred on ``cutoff``). The length
    starts at Kaiser's estimate and grows until the response is at least ``atten_db`` down over
    ``[0, cutoff - transition/2]`` (unless ``num_taps`` fixes it).
    """
    return _lowpass_or_highpass(
        float(fs), float(cutoff), float(atten_db), transition_hz, True, num_taps
    )


def design_lowpass(
    fs: float,
    cutoff: float,
    atten_db: float = DEFAULT_ATTEN_DB,
    transition_hz: float | None = None,
    num_taps: int | None = None,
) -> np.ndarray:
    """Linear-phase Kaiser-windowed FIR low-pass (SoX ``sinc -cutoff``)."""
    return _lowpass_or_highpass(
        float(fs), float(cutoff), float(atten_db), transition_hz, False, num_taps
    )


def _centre_sum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if len(a) < len(b):
        a, b = b, a
    out = a.copy()
    off = (len(a) - len(b)) // 2
    out[off : off + len(b)] += b
    return out


def design_sinc(
    fs: float,
    hp_hz: float = 0.0,
    lp_hz: float = 0.0,
    atten_db: float = DEFAULT_ATTEN_DB,
    transition_hz: float | None = None,
) -> np.ndarray:
    """SoX ``sinc hp_hz-lp_hz``: the filter SoX's rules give for these two corner frequencies.

    * ``hp_hz > 0, lp_hz <= 0``: high-pass at ``hp_hz``;  ``hp_hz <= 0, lp_hz > 0``: low-pass.
    * both > 0, ``hp_hz < lp_hz``: band-pass ``hp_hz .. lp_hz`` (SoX inverts the sum of both);
    * both > 0, ``hp_hz > lp_hz``: band-reject (passes below ``lp_hz`` and above ``hp_hz``).
    """
    hp = design_highpass(fs, hp_hz, atten_db, transition_hz) if hp_hz > 0 else None
    lp = design_lowpass(fs, lp_hz, atten_db, transition_hz) if lp_hz > 0 else None
    if hp is None and lp is None:
        raise ValueError("sinc needs at least one corner frequency > 0")
    if hp is None:
        return lp
    if lp is None:
        return hp
    h = _centre_sum(hp, lp)  # band-reject
    if hp_hz < lp_hz:  # SoX: invert the combination -> band-pass
        h = -h
        h[(len(h) - 1) // 2] += 1.0
    return h


def design_bandpass(
    fs: float,
    low: float,
    high: float,
    atten_db: float = DEFAULT_ATTEN_DB,
    transition_hz: float | None = None,
) -> np.ndarray:
    """Band-pass ``low .. high`` Hz (SoX ``sinc low-high``)."""
    if not 0 < low < high:
        raise ValueError(f"band-pass needs 0 < low < high, got {low}, {high}")
    return design_sinc(fs, hp_hz=low, lp_hz=high, atten_db=atten_db, transition_hz=transition_hz)


def freq_bounds_taps(
    fs: float,
    freq_bounds=None,
    atten_db: float = DEFAULT_ATTEN_DB,
    transition_hz: float | None = None,
) -> np.ndarray:
    """The filter of the original's ``--freq-bounds low high``: SoX ``sinc {high}-{low}``.

    ``[0, 30000]`` (default) -> high-pass at 30 kHz; ``[f, 0]`` -> low-pass at ``f``; with both > 0
    SoX's reading of ``sinc high-low`` applies literally: ``low < high`` gives a band-*reject*
    (pass below ``low`` and above ``high``), ``low > high`` a band-pass ``high .. low``.
    Use :func:`design_bandpass` for a band-pass by name.
    """
    freq_bounds = setting_default("audio.filter.freq_bounds", freq_bounds)
    low, high = (float(v) for v in freq_bounds)
    return design_sinc(fs, hp_hz=high, lp_hz=low, atten_db=atten_db, transition_hz=transition_hz)


# --------------------------------------------------------------------------------------------
# streamed filtering
# --------------------------------------------------------------------------------------------
def _check_taps(taps) -> np.ndarray:
    h = np.asarray(taps, dtype=np.float64)
    if h.ndim != 1 or len(h) % 2 == 0:
        raise ValueError("taps must be a 1-D array of odd length (linear phase, type I)")
    return h


def fir_stream(read, n_samples: int, taps, block: int = 1 << 14):
    """Yield ``(start, int16 block)`` of ``x * taps`` delay-compensated, for samples ``[0, n_samples)``.

    Overlap-save: FFTs of length ``nfft`` = the next fast length >= ``max(block, 4 * len(taps))``
    (default 16384: a float64 transform that stays in cache) each yield ``nfft - len(taps) + 1``
    output samples. ``read(start, stop)`` returns int16 samples with zeros outside the file.
    """
    h = _check_taps(taps)
    L = len(h)
    delay = (L - 1) // 2
    nfft = scipy.fft.next_fast_len(max(int(block), 4 * L), real=True)
    M = nfft - L + 1
    Hf = scipy.fft.rfft(h, nfft)
    for a in range(0, n_samples, M):
        b = min(a + M, n_samples)
        seg = read(a - delay, a - delay + nfft).astype(np.float64)
        y = scipy.fft.irfft(scipy.fft.rfft(seg) * Hf, nfft, overwrite_x=True)[
            L - 1 : L - 1 + (b - a)
        ]
        np.rint(y, out=y)
        np.clip(y, -32768, 32767, out=y)
        yield a, y.astype(np.int16)


def fir_filter_array(x: np.ndarray, taps, block: int = 1 << 14) -> np.ndarray:
    """:func:`fir_stream` over an in-memory int16 array (tests)."""
    return stream_over_array(x, lambda read, n: fir_stream(read, n, taps, block))


def highpass_file(
    in_wav: str | os.PathLike,
    out_wav: str | os.PathLike,
    taps=None,
    block: int = 1 << 14,
    cutoff: float = 30000.0,
) -> dict:
    """Filter a mono int16 WAV with ``taps`` (default: :func:`design_highpass` at the file's rate and
    ``cutoff``) into ``out_wav`` (atomic; same rate and length). Returns ``{"n_samples",
    "sample_rate", "n_taps", "delay_samples"}``."""
    with WavReader(in_wav, n_channels=1) as r:
        h = design_highpass(r.sample_rate, cutoff) if taps is None else _check_taps(taps)
        with WavWriter(out_wav, r.sample_rate, frames_hint=r.n_samples) as w:
            bar = progress(total=r.n_samples, desc=f"high-pass {Path(in_wav).name}", unit="sample",
                           unit_scale=True)  # fmt: skip
            with bar:
                for _, blk in fir_stream(r.read, r.n_samples, h, block):
                    w.write(blk)
                    bar.update(len(blk))
        return {
            "n_samples": r.n_samples,
            "sample_rate": r.sample_rate,
            "n_taps": len(h),
            "delay_samples": (len(h) - 1) // 2,
        }
