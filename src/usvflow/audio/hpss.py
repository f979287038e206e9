"""Harmonic/percussive source separation (docs/original-pipeline.md step 9), streamed, equal to the
whole-file computation.

The original (``Operator.hpss_audio``) runs, on a whole channel at once::

    x = int16 samples as float32
    D = librosa.stft(x, n_fft=512, hop_length=128)            # periodic Hann, center=True, zero padding
    H, _ = librosa.decompose.hpss(S=D, kernel_size=[5, 60], power=4.0, mask=False, margin=[4, 1])
    y = librosa.istft(H, length=len(x), win_length=512, hop_length=128)
    out = np.clip(y, -32768, 32767).astype(int16)              # truncation toward zero

:func:`hpss_array` is exactly that (the reference, used by the tests and the benchmark).
:func:`hpss_file` computes the same result block by block with memory independent of the length:

* Output block ``[a, b)`` (``block_frames`` hops) needs the harmonic part of every frame ``t`` whose
  synthesis window touches it: ``t*hop - n_fft/2 <= i < t*hop + n_fft/2`` (frames ``h0 .. h1-1``).
* The harmonic median of ``|D|`` runs over ``kernel[0]`` frames along time (±2 for 5), so
  ``|D|`` is needed for frames ``h0-2 .. h1+1``; the percussive median (``kernel[1]`` bins along
  frequency) needs no time context. Both use ``scipy.ndimage.median_filter``'s ``mode='reflect'``
  (``d c b a | a b c d | d c b a``, window ``[-k//2, k - k//2 - 1]``, rank ``k//2``: the upper of the
  two middle values for even ``k``), as ``librosa.decompose.hpss`` does; at the first and last frames
  the reflection uses the whole-file frame indices, so borders of the file match and borders of a
  block are invisible.
* Frame ``t`` of the STFT is computed directly from samples ``t*hop - n_fft/2 .. t*hop + n_fft/2 - 1``
  (zeros outside the file, as ``center=True, pad_mode='constant'``).
* The inverse transform overlap-adds frames in increasing order into a float32 accumulator and divides
  by the window-square sum of the frames that exist in the whole file (float32, accumulated in the same
  order as ``librosa.filters.window_sumsquare``), including the partial sums at both ends.

Speed: the STFT/inverse are batched float32 ``scipy.fft`` calls over a strided frame view; the
60-bin sliding median keeps each frame's window sorted and updates it with a branch-free
delete/insert stencil (``u[j] = w[j] if w[j] < old else w[j+1]``; ``w'[j] = max(u[j-1], min(u[j],
new))``), which LLVM turns into a few SIMD instructions per step, instead of re-selecting from 60
values per bin; the 5-frame median is a min/max network. Differences from librosa come only from
float32 rounding (librosa forms the STFT in float64 and rounds it to complex64); with the final
truncation they show up as at most 1 LSB.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np
import scipy.fft
import scipy.signal

from ..io.config import defaults_from_schema
from ..io.progress import progress
from .wav import WavReader, WavWriter, stream_over_array

_TINY32 = float(np.finfo(np.float32).tiny)


def _pair(value, kind) -> tuple:
    """A [first, second] setting (a scalar stands for both, as librosa allows)."""
    return (kind(value), kind(value)) if np.isscalar(value) else tuple(kind(v) for v in value)


@dataclass(frozen=True)
@defaults_from_schema("audio.hpss")
class HPSSParams:
    """HPSS settings: the fields are the keys of the config section ``audio.hpss``."""

    stft_window_length_hop_size: tuple[int, int]
    kernel_size: tuple[int, int]  # (harmonic: frames along time, percussive: bins along frequency)
    power: float
    margin: tuple[float, float]

    def __post_init__(self):
        n_fft, hop = _pair(self.stft_window_length_hop_size, int)
        object.__setattr__(self, "stft_window_length_hop_size", (n_fft, hop))
        object.__setattr__(self, "kernel_size", _pair(self.kernel_size, int))
        object.__setattr__(self, "margin", _pair(self.margin, float))
        object.__setattr__(self, "power", float(self.power))
        if n_fft < 2 or n_fft % 2:
            raise ValueError(f"the STFT window must be even and >= 2, got {n_fft}")
        if not 0 < hop <= n_fft:
            raise ValueError(f"the hop must be in 1..window, got {hop}")
        if min(self.kernel_size) < 1:
            raise ValueError(f"kernel sizes must be >= 1, got {self.kernel_size}")
        if min(self.margin) < 1:
            raise ValueError(f"margins must be >= 1 (librosa), got {self.margin}")
        if not self.power > 0:
            raise ValueError(f"power must be > 0, got {self.power}")

    @classmethod
    def from_mapping(cls, m) -> HPSSParams:
        """From the config section ``audio.hpss`` (or part of it); unknown keys raise."""
        from ..io.config import dataclass_from_mapping

        return dataclass_from_mapping(cls, dict(m or {}), "HPSS setting")

    @property
    def n_fft(self) -> int:
        return self.stft_window_length_hop_size[0]

    @property
    def hop(self) -> int:
        return self.stft_window_length_hop_size[1]

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1


# --------------------------------------------------------------------------------------------
# reference: the original's whole-file librosa pipeline
# --------------------------------------------------------------------------------------------
def hpss_array(x: np.ndarray, params: HPSSParams | None = None) -> np.ndarray:
    """The original's computation on a whole int16 array via librosa (reference; O(length) memory)."""
    p = params or HPSSParams()
    n_fft, hop, kernel, power, margin = p.n_fft, p.hop, p.kernel_size, p.power, p.margin
    import librosa

    xf = np.asarray(x).astype(np.float32)
    if xf.size == 0:
        return np.zeros(0, np.int16)
    D = librosa.stft(y=xf, n_fft=n_fft, hop_length=hop)
    H, _ = librosa.decompose.hpss(
        S=D,
        kernel_size=list(kernel) if not np.isscalar(kernel) else kernel,
        power=power,
        mask=False,
        margin=list(margin) if not np.isscalar(margin) else margin,
    )
    y = librosa.istft(stft_matrix=H, length=len(xf), win_length=n_fft, hop_length=hop)
    return np.clip(y, -32768, 32767).astype(np.int16)


# --------------------------------------------------------------------------------------------
# numba kernels
# --------------------------------------------------------------------------------------------
@numba.njit(cache=True, boundscheck=False, inline="always")
def _sorted_step(w, w2, old, new, width):
    """w2 = sorted(w - {old} + {new}); w[0] = -inf, w[1..width] sorted values, w[width+1] = +inf."""
    for j in range(1, width + 1):
        a0 = w[j - 1]
        a = w[j]
        b = w[j + 1]
        u0 = a0 if a0 < old else a
        u1 = a if a < old else b
        m = u1 if u1 < new else new
        w2[j] = u0 if u0 > m else m


@numba.njit(cache=True, boundscheck=False)
def _reflect(i, n):
    """scipy.ndimage 'reflect' index (d c b a | a b c d | d c b a), any distance from the array."""
    p = 2 * n
    i = i % p
    if i < 0:
        i += p
    return p - 1 - i if i >= n else i


@numba.njit(cache=True, boundscheck=False)
def _percussive_row(s, out, win, width, ext_idx, ext, w, w2):
    """out[k] = median of s over bins [k - win//2, k + win - win//2 - 1] (reflect), rank win//2.

    ext_idx: the reflected bin of each position of the extended row (same for every frame).
    """
    K = s.shape[0]
    half = win // 2
    for j in range(ext.shape[0]):
        ext[j] = s[ext_idx[j]]
    w[0] = -np.inf
    w2[0] = -np.inf
    for j in range(1, width + 2):
        w[j] = np.inf
        w2[j] = np.inf
    # build the first window by inserting its values into an all-inf window (two steps per turn)
    j = 0
    while j + 1 < win:
        _sorted_step(w, w2, np.inf, ext[j], width)
        _sorted_step(w2, w, np.inf, ext[j + 1], width)
        j += 2
    if j < win:
        _sorted_step(w, w2, np.inf, ext[j], width)
        for q in range(1, width + 1):
            w[q] = w2[q]
    r = 1 + half
    out[0] = w[r]
    k = 1
    while k + 1 < K:
        _sorted_step(w, w2, ext[k - 1], ext[k - 1 + win], width)
        out[k] = w2[r]
        _sorted_step(w2, w, ext[k], ext[k + win], width)
        out[k + 1] = w[r]
        k += 2
    if k < K:
        _sorted_step(w, w2, ext[k - 1], ext[k - 1 + win], width)
        out[k] = w2[r]


@numba.njit(cache=True, boundscheck=False)
def _harmonic_row(S, rows, out, win, tmp):
    """out[k] = median over the frames ``rows`` (already reflected) of S[rows, k], rank win//2."""
    K = S.shape[1]
    if win == 1:
        for k in range(K):
            out[k] = S[rows[0], k]
    elif (
        win == 5
    ):  # min/max network: med5 = med3(e, max(min(a,b), min(c,d)), min(max(a,b), max(c,d)))
        ra, rb, rc, rd, re = rows[0], rows[1], rows[2], rows[3], rows[4]
        for k in range(K):
            a = S[ra, k]
            b = S[rb, k]
            c = S[rc, k]
            d = S[rd, k]
            e = S[re, k]
            lo_ab = a if a < b else b
            hi_ab = b if a < b else a
            lo_cd = c if c < d else d
            hi_cd = d if c < d else c
            f = lo_ab if lo_ab > lo_cd else lo_cd
            g = hi_ab if hi_ab < hi_cd else hi_cd
            lo = f if f < g else g
            hi = g if f < g else f
            m = e if e < hi else hi
            out[k] = lo if lo > m else m
    else:
        half = win // 2
        for k in range(K):
            for q in range(win):
                tmp[q] = S[rows[q], k]
            tmp[:win].sort()
            out[k] = tmp[half]


@numba.njit(cache=True, boundscheck=False)
def _harmonic_part(D, rows, win_h, win_p, margin, power, split_zeros, H):
    """H[f] = D[f0 + f] * soft mask of the harmonic part (librosa.decompose.hpss, mask=False).

    D: (Fe, K) complex64 STFT frames; rows: (Fo, win_h) row indices into D (reflected, the first
    output frame's centre row is rows[0, win_h//2]); H: (Fo, K) complex64 output.
    """
    Fe, K = D.shape
    Fo = rows.shape[0]
    S = np.empty((Fe, K), np.float32)
    for f in range(Fe):
        for k in range(K):
            re = np.float64(D[f, k].real)
            im = np.float64(D[f, k].imag)
            S[f, k] = np.float32(math.sqrt(re * re + im * im))
    width = ((win_p + 15) // 16) * 16
    ext = np.empty(K + win_p - 1, np.float32)
    ext_idx = np.empty(K + win_p - 1, np.int64)
    for j in range(ext_idx.shape[0]):
        ext_idx[j] = _reflect(j - win_p // 2, K)
    w = np.empty(width + 2, np.float32)
    w2 = np.empty(width + 2, np.float32)
    harm = np.empty(K, np.float32)
    perc = np.empty(K, np.float32)
    tmp = np.empty(max(win_h, 1), np.float32)
    mg = np.float32(margin)
    fill = np.float32(0.5) if split_zeros else np.float32(0.0)
    tiny = np.float32(_TINY32)
    p4 = power == 4.0
    pinf = math.isinf(power)
    pw = np.float32(power)
    centre = win_h // 2
    for f in range(Fo):
        _harmonic_row(S, rows[f], harm, win_h, tmp)
        fr = rows[f, centre]
        _percussive_row(S[fr], perc, win_p, width, ext_idx, ext, w, w2)
        for k in range(K):
            x = harm[k]
            ref = perc[k] * mg
            if pinf:
                m = np.float32(1.0) if x > ref else np.float32(0.0)
            else:
                z = x if x > ref else ref
                if z < tiny:
                    m = fill
                else:
                    a = x / z
                    b = ref / z
                    if p4:
                        a2 = a * a
                        b2 = b * b
                        a = a2 * a2
                        b = b2 * b2
                    else:
                        a = a**pw
                        b = b**pw
                    m = a / (a + b)
            H[f, k] = D[fr, k] * m


@numba.njit(cache=True, boundscheck=False)
def _overlap_add(yf, win, win_sq, h0, hop, centre, a, b, out):
    """out[i - a] = int16(clip(sum_t yf[t]*win / sum_t win^2)) for samples a <= i < b.

    yf: (Fo, n_fft) float32 inverse FFTs of frames h0 .. h0+Fo-1 (all frames of the whole file that
    touch [a, b)). Accumulation in increasing frame order in float32, as librosa.istft and
    librosa.filters.window_sumsquare do; division only where the window sum exceeds float32 tiny.
    """
    Fo, n_fft = yf.shape
    n = b - a
    acc = np.zeros(n, np.float32)
    wss = np.zeros(n, np.float32)
    for f in range(Fo):
        s0 = (h0 + f) * hop - centre - a  # block position of this frame's first sample
        j0 = max(0, -s0)
        j1 = min(n_fft, n - s0)
        for j in range(j0, j1):
            i = s0 + j
            acc[i] = np.float32(np.float64(acc[i]) + np.float64(yf[f, j]) * win[j])
            wss[i] = np.float32(np.float64(wss[i]) + win_sq[j])
    tiny = np.float32(_TINY32)
    for i in range(n):
        v = acc[i]
        if wss[i] > tiny:
            v = v / wss[i]
        if v > 32767.0:
            v = np.float32(32767.0)
        elif v < -32768.0:
            v = np.float32(-32768.0)
        out[i] = np.int16(np.int32(v))  # truncation toward zero, as ndarray.astype(int16)


# --------------------------------------------------------------------------------------------
# streaming driver
# --------------------------------------------------------------------------------------------
def n_frames(n_samples: int, hop: int = 128) -> int:
    """Frames of librosa.stft(center=True) for ``n_samples`` samples."""
    return 1 + n_samples // hop


def _reflect_np(i: np.ndarray, n: int) -> np.ndarray:
    i = np.mod(i, 2 * n)
    return np.where(i >= n, 2 * n - 1 - i, i)


def hpss_stream(read, n_samples: int, params: HPSSParams = HPSSParams(), block_frames: int = 2048):
    """Yield ``(start, int16 block)`` of the harmonic part, block by block.

    ``read(start, stop)`` must return the int16 samples ``[start, stop)`` with zeros outside
    ``[0, n_samples)`` (:meth:`WavReader.read` does). Memory: O(block_frames * n_fft).
    """
    p = params
    if block_frames < 1:
        raise ValueError("block_frames must be >= 1")
    n_fft, hop, K = p.n_fft, p.hop, p.n_bins
    centre = n_fft // 2
    win_h, win_p = p.kernel_size
    hl, hr = win_h // 2, win_h - win_h // 2 - 1
    halo = max(hl, hr)
    T = n_frames(n_samples, hop)
    win64 = scipy.signal.get_window("hann", n_fft, fftbins=True).astype(np.float64)
    win32 = win64.astype(np.float32)
    win_sq = win64**2
    split_zeros = p.margin[0] == 1 and p.margin[1] == 1
    offsets = np.arange(-hl, hr + 1)
    step = block_frames * hop
    for a in range(0, n_samples, step):
        b = min(a + step, n_samples)
        # frames whose synthesis window touches [a, b)
        h0 = max(0, -(-(a + centre - n_fft + 1) // hop))
        h1 = min(T, (b - 1 + centre) // hop + 1)
        e0, e1 = max(0, h0 - halo), min(T, h1 + halo)
        rows = _reflect_np(np.arange(h0, h1)[:, None] + offsets[None, :], T) - e0
        if rows.min() < 0 or rows.max() >= e1 - e0:  # pragma: no cover - guarded by construction
            raise AssertionError("HPSS block halo too small")
        start = e0 * hop - centre
        xs = read(start, (e1 - 1) * hop - centre + n_fft).astype(np.float32)
        frames = np.lib.stride_tricks.as_strided(
            xs, shape=(e1 - e0, n_fft), strides=(hop * 4, 4), writeable=False
        )
        D = scipy.fft.rfft(frames * win32, axis=-1, overwrite_x=True)
        H = np.empty((h1 - h0, K), np.complex64)
        _harmonic_part(
            D,
            np.ascontiguousarray(rows, dtype=np.int64),
            win_h,
            win_p,
            p.margin[0],
            p.power,
            split_zeros,
            H,
        )
        yf = scipy.fft.irfft(H, n=n_fft, axis=-1, overwrite_x=True)
        out = np.empty(b - a, np.int16)
        _overlap_add(yf, win64, win_sq, h0, hop, centre, a, b, out)
        yield a, out


def hpss_chunked(
    x: np.ndarray, params: HPSSParams | None = None, block_frames: int = 2048
) -> np.ndarray:
    """:func:`hpss_stream` over an in-memory int16 array (tests; the file version is hpss_file)."""
    p = params or HPSSParams()
    return stream_over_array(x, lambda read, n: hpss_stream(read, n, p, block_frames))


def hpss_file(
    in_wav: str | os.PathLike,
    out_wav: str | os.PathLike,
    params: HPSSParams | None = None,
    block_frames: int = 2048,
) -> dict:
    """Harmonic part of a mono int16 WAV, streamed to ``out_wav`` (atomic; same rate and length).

    Returns ``{"n_samples", "sample_rate", "n_frames"}``. InputError (naming the file) for a file
    that is not mono 16-bit PCM or is truncated.
    """
    p = params or HPSSParams()
    with (
        WavReader(in_wav, n_channels=1) as r,
        WavWriter(out_wav, r.sample_rate, frames_hint=r.n_samples) as w,
    ):
        bar = progress(
            total=r.n_samples, desc=f"HPSS {Path(in_wav).name}", unit="sample", unit_scale=True
        )
        with bar:
            for _, blk in hpss_stream(r.read, r.n_samples, p, block_frames):
                w.write(blk)
                bar.update(len(blk))
        return {
            "n_samples": r.n_samples,
            "sample_rate": r.sample_rate,
            "n_frames": n_frames(r.n_samples, p.hop),
        }
