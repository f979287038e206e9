"""Built-in, model-free USV detector (no GPU, no trained network).

The detector looks for what distinguishes a rodent ultrasonic vocalisation from everything else on
an ultrasonic microphone: a *narrow-band* ridge in the 30–120 kHz band that stands well above the
*local* noise floor of its frequency and lasts several milliseconds. Design (``docs/detector.md``):

1. **STFT** of each channel, Hann window of ~2 ms (512 samples at 250 kHz, the nearest power of
   two at other rates), hop half a window; only the bins from ``f_lo_hz - guard_hz`` to ``f_hi_hz``
   are kept (the upper edge is clipped below Nyquist).
2. **Per-bin running noise floor**: the ``noise_quantile`` (20 %) quantile of each bin's power in
   consecutive noise blocks of ``noise_block_s`` (0.5 s), then the median of those quantiles over
   the ``2 * noise_context_blocks + 1`` blocks centred on a block (3.5 s), scaled so that it
   estimates the mean noise power (quantile of an exponential distribution). Stationary tones and
   noise bands become flat (whitened away); calls, which occupy a bin for a small fraction of the
   time, do not raise it. The power divided by the floor is the per-bin SNR ``S`` (mean 1 in noise).
3. **Ridge score** per frame: ``S`` max-filtered over ``± ridge_hz`` in frequency (a sweeping
   contour stays in the filter from frame to frame), averaged over ``smooth_frames`` frames and
   maximised over the band. About 6 dB in noise (99th percentile 8 dB), high on a call.
4. **Concentration** per frame (on ``S`` averaged over the same frames, band plus guard band): the
   excess energy ``sum(S - 1)`` within ``± conc_hz`` of the peak against the excess elsewhere, less
   ``broad_z`` standard deviations of noise; a frame is *narrow-band* when the peak holds at least
   ``conc_min`` of it. A whistle (with its harmonics) passes; broadband events - clicks, scratches,
   rustle rising from below the band, the splatter of clipped samples - fail.
5. **Hysteresis**: a segment is a maximal run of narrow-band frames with ridge score
   ``>= thr_low_db`` that contains at least one *call-like* frame: score ``>= thr_high_db``,
   narrow-band and free of clipped samples (``clip_level``; automatic for integer-PCM files).
6. **Stationary lines** over digital silence (after HPSS): a frame whose ridge sits on a bin whose
   floor stands ``line_db`` above its ``+- line_hz`` neighbourhood, the neighbourhood being under
   the floor's lower bound, counts ``line_margin_db`` less (a tone's level fluctuations after HPSS
   are correlated in time, unlike noise). Over noise a raised bin is a bout of calls on one
   frequency, which counts in full.
7. **DAS semantics** (``segment_fillgap`` / ``segment_minlen``): gaps shorter than ``segment_fillgap``
   are filled; a call must hold more frames above threshold than a sub-window sound can make.
8. **Bridging**: two calls up to ``fillgap_max_s`` apart are joined when the contour goes on through
   the gap (the whitened score along the straight path between the two ridge bins stands
   ``bridge_z`` noise standard deviations above white noise's).

A segment spans from half a hop before the centre of its first frame to half a hop after the
centre of its last one, once the frames only the score's smoothing lifted are trimmed; then each
edge is followed along the call's contour for up to ``edge_max_s`` while the whitened power there
stays above ``edge_db`` on average (a faint onset or end under the continuation threshold). Audio is
read and processed in blocks (memory does not grow with the file length apart from the list of
segments); every channel of a multichannel file is detected on its own in the same pass.

Public API: :class:`DetectParams`, :func:`detect`, :func:`detect_file`, :func:`write_das_csv`,
:func:`main_detect` (``usvflow detect-usvs``).
"""

from __future__ import annotations

import logging
import math
import os
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.fft as sfft
import soundfile as sf
from scipy.ndimage import median_filter

from ..io.atomic import InputError, atomic_path
from ..io.config import defaults_from_schema
from ..io.progress import progress

log = logging.getLogger(__name__)

__all__ = [
    "DetectParams",
    "detect",
    "detect_file",
    "detect_array",
    "write_das_csv",
    "das_frame",
    "main_detect",
    "add_cli_arguments",
    "run_cli",
    "postprocess",
    "confidence_of",
    "min_call_s",
    "MIN_SAMPLE_RATE",
]

MIN_SAMPLE_RATE = 192_000
_NOISE_SUM_STD = (
    1.44  # std of sum(S - 1) over n bins of a 3-frame-smoothed white-noise frame, / sqrt(n / 3)
)
DAS_COLUMNS = ["name", "start_seconds", "stop_seconds"]
_MEDIAN_SCALE = 1.0 / math.log(2.0)  # median of an exponential distribution -> mean
# where the channel holds noise (the quantile estimate above the floor's lower bound), the median
# estimate may raise a bin's floor to at most twice the quantile estimate: in noise the two agree
# (their ratio exceeds 2 in 0.06 % of blocks), while a bout of calls on one frequency that occupies a
# bin more than half of the time would otherwise lift that bin's floor to the calls' own level
_MEDIAN_CAP = 2.0
_MEDIAN_STRIDE = 4
CONFIDENCE_SCALE_DB = 2.0  # dB of peak ridge score per logistic unit of a call's confidence
# white noise through the detector's STFT: the ridge-filtered, time-smoothed whitened power at one
# bin divided by the median of its frame over the band has mean 1.04, and the mean of n consecutive
# frames a standard deviation of 0.58 / sqrt(n) (n = 10-40; measured on 60 s)
_PATH_NOISE_MEAN = 1.04
_PATH_NOISE_STD = 0.58
# ... and the band median itself is 2.25 there: the reference never falls below it, so a frame of
# digital silence (HPSS output under the floor's lower bound, whitened power ~0) offers no contour
_PATH_REF_MIN = 2.25


@dataclass(frozen=True)
@defaults_from_schema("usv_detection.builtin")
class DetectParams:
    """Detector settings (defaults: ``docs/detector.md``)."""

    f_lo_hz: float
    f_hi_hz: float
    win_s: float = 0.002  # STFT window; the nearest power of two in samples (512 at 250 kHz)
    noise_block_s: float = 0.5
    noise_context_blocks: int = 3
    noise_quantile: float = 0.2
    ridge_hz: float = 1_500.0
    smooth_frames: int = 3
    thr_high_db: float
    thr_low_db: float
    conc_hz: float = 3_000.0
    conc_min: float = 0.5
    broad_z: float = 3.0
    guard_hz: float = 10_000.0
    # a stationary line: a bin whose noise floor stands line_db above the median floor within
    # +-line_hz; the score of a frame whose ridge sits on one (+-1 bin) counts line_margin_db less
    # (a line's level fluctuations are correlated in time, unlike noise's)
    line_db: float = 3.0
    line_hz: float = 5_000.0
    line_margin_db: float = 10.0
    # on top of the window-derived minimum (longer than any sub-window sound)
    segment_minlen: float
    segment_fillgap: float
    # gaps from segment_fillgap up to fillgap_max_s are filled when the contour goes on through the
    # gap: the whitened score along the straight path from where the ridge broke off to where it
    # resumes stands bridge_z noise standard deviations above what noise gives (docs/detector.md)
    fillgap_max_s: float = 0.040
    bridge_z: float = 4.0
    # a call's ends are followed along its contour for up to edge_max_s beyond the frames above
    # threshold, while the whitened power on the contour stays above edge_db on average (0: off)
    edge_max_s: float = 0.020
    edge_db: float = 6.0
    edge_rel_db: float = 30.0
    min_confidence: float = (
        0.5  # operating point: a call's peak score maps to its confidence (0.5 at thr_high_db)
    )
    clip_level: float | None = None  # |x| at or above this is clipped; None: not checked
    # lowest noise rms (input units) the per-bin floor may assume; integer PCM files: floor_lsb LSB
    min_noise_rms: float | None = None
    floor_lsb: float
    name: str = "USV"

    def updated(self, **kw) -> DetectParams:
        """A copy with the given fields changed (unknown names raise)."""
        known = {f.name for f in fields(self)}
        bad = set(kw) - known
        if bad:
            raise ValueError(f"unknown detector parameter(s): {sorted(bad)}")
        return replace(self, **kw)

    def as_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------------------- engine


def _max_filter_last(x: np.ndarray, width: int) -> np.ndarray:
    """Running maximum of odd ``width`` along the last axis (edge values repeated), by doubling."""
    if width <= 1:
        return x
    h = width // 2
    n = x.shape[-1]
    pad = [(0, 0)] * (x.ndim - 1) + [(h, h)]
    m = np.pad(x, pad, mode="edge")
    span = 1
    while span * 2 <= width:
        m = np.maximum(m[..., :-span], m[..., span:])
        span *= 2
    if span < width:
        r = width - span
        m = np.maximum(m[..., :-r], m[..., r:])
    return m[..., :n]


def _nfft_for(fs: float, win_s: float) -> int:
    return int(2 ** round(math.log2(max(16.0, fs * win_s))))


class _Engine:
    """Streaming detector over ``n_ch`` channels; feed samples ``(n, n_ch)``, then :meth:`finish`."""

    def __init__(self, fs: float, n_ch: int, p: DetectParams):
        if fs < 2 * p.f_lo_hz * 1.05:
            raise ValueError(f"sample rate {fs} Hz cannot carry the {p.f_lo_hz} Hz band edge")
        self.fs, self.n_ch, self.p = float(fs), int(n_ch), p
        self.nfft = _nfft_for(fs, p.win_s)
        self.hop = self.nfft // 2
        df = fs / self.nfft
        self.b0 = int(math.ceil(p.f_lo_hz / df))
        self.b1 = min(int(math.floor(p.f_hi_hz / df)), self.nfft // 2 - 2) + 1  # exclusive
        if self.b1 - self.b0 < 8:
            raise ValueError("detection band too narrow for the STFT resolution")
        self.nb = self.b1 - self.b0
        self.gb0 = max(
            1, int(math.ceil((p.f_lo_hz - max(0.0, p.guard_hz)) / df))
        )  # guard below the band
        self.g = self.b0 - self.gb0  # index of the band's first bin in the computed bins
        self.nx = self.b1 - self.gb0
        # std of the summed whitened noise excess over all computed bins of a time-smoothed frame
        # (Hann: neighbouring bins and 50 %-overlapping frames are correlated; measured on white noise)
        self.out_sigma = _NOISE_SUM_STD * math.sqrt(self.nx / max(1, p.smooth_frames))
        self.window = (np.hanning(self.nfft + 1)[:-1]).astype(np.float32)
        self.ridge = max(1, 2 * int(round(p.ridge_hz / df)) + 1)
        self.conc_w = max(0, int(round(p.conc_hz / df)))
        self.smooth = max(1, int(p.smooth_frames))
        if self.smooth % 2 == 0:
            raise ValueError(f"smooth_frames must be odd, got {p.smooth_frames}")
        self.block = max(32, int(round(p.noise_block_s * fs / self.hop)))  # frames per noise block
        self.ctx = max(0, int(p.noise_context_blocks))
        self.q = float(p.noise_quantile)
        self.q_scale = 1.0 / -math.log1p(-self.q)  # exponential quantile -> mean
        self.thr_lo = 10 ** (min(p.thr_low_db, p.thr_high_db) / 10)
        self.clip = p.clip_level
        # operating point: a run is a call when its peak score reaches the score of confidence
        # min_confidence (thr_high_db at 0.5); never below the continuation threshold
        mc = min(max(float(p.min_confidence), 1e-6), 1 - 1e-6)
        self.emit_db = max(
            p.thr_high_db + CONFIDENCE_SCALE_DB * math.log(mc / (1 - mc)), p.thr_low_db
        )
        self.thr_hi = 10 ** (self.emit_db / 10)
        self.line_ratio = 10 ** (p.line_db / 10)
        self.line_w = 2 * int(round(p.line_hz / df)) + 1
        self.line_pen = np.float32(10 ** (p.line_margin_db / 10))
        # physical minimum: a sound no longer than one window touches (2 nfft - 2) // hop + 1 frames,
        # which the score smoothing widens by smooth - 1; a call must be longer than that
        self.min_frames = (2 * self.nfft - 2) // self.hop + 1 + (self.smooth - 1) + 1
        # per-bin power of white noise of rms min_noise_rms through the window: the floor's minimum
        # (after HPSS a channel can be digital silence between calls; rounding leaves ~0.3 LSB rms)
        rms = p.min_noise_rms or 0.0
        self.floor_min = max(float(rms) ** 2 * float(np.sum(self.window.astype(np.float64) ** 2)),
                             float(np.finfo(np.float32).tiny))  # fmt: skip
        # sample buffer: samples from global index self.s0 on
        self.buf = np.zeros((0, n_ch), dtype=np.float32)
        self.s0 = 0
        self.next_frame = 0  # global index of the next frame to compute
        # spectra of computed blocks awaiting their floor: deque of (first_frame, P, clipped, pct)
        self.blocks: deque = deque()
        # per channel: the band's bins whose floor was under its lower bound, summed over blocks
        # (digital silence: HPSS or other masking output, which the thresholds do not assume)
        self.silent_bins = np.zeros(n_ch)
        self.band_bins = 0
        self.past_pct: deque = deque(maxlen=self.ctx)
        self.prev_tail: np.ndarray | None = (
            None  # last smooth//2 whitened rows of the previous block
        )
        # gap bridging: frames of a gap that may be bridged, and the smoothed ridge-filtered band of
        # the last frames of the previous blocks (a gap may begin there)
        self.fill_frames = p.segment_fillgap * self.fs / self.hop
        self.bridge_frames = p.fillgap_max_s * self.fs / self.hop
        self.hist_len = (
            int(math.ceil(self.bridge_frames)) + 2 if self.bridge_frames > self.fill_frames else 0
        )
        self.hist = np.zeros((n_ch, 0, self.nb), np.float32)
        # contour edges: the whitened band of the last edge_frames + 1 frames of the previous blocks
        # and segments whose end still awaits the frames after it
        self.edge_frames = max(0, int(round(p.edge_max_s * self.fs / self.hop)))
        self.edge_drift = 10 ** (p.edge_db / 10)
        self.edge_rel = 10 ** (-p.edge_rel_db / 10) if p.edge_rel_db else 0.0
        self.shist = np.zeros((n_ch, 0, self.nb), np.float32)
        self._S: np.ndarray = self.shist
        self._S_f0 = 0
        self.pending: list[list[list]] = [[] for _ in range(n_ch)]
        # unsmoothed ridge score of the last smooth // 2 frames of the previous block (edge trimming)
        self.prev_raw = np.zeros((n_ch, 0), np.float32)
        # hysteresis state per channel: pending frames of an open run
        self.run_start = [-1] * n_ch  # global frame index where the open lo-run began (-1: none)
        self.run_peak = [0.0] * n_ch  # peak score of the open run's call-like-eligible frames
        self.run_f0 = [0] * n_ch  # ridge bin of the open run's first frame
        self.run_f1 = [0] * n_ch  # ridge bin of the last frame consumed (end of an open run)
        self.run_bridge = [False] * n_ch  # the open run continues the previous call's contour
        self.run_a = [0] * n_ch  # first frame of the open run after edge trimming
        self.run_v: list = [None] * n_ch  # the band before its start (_edge_rows)
        # frame ranges [a, b) with peak score, ridge bins of the first and last frame, bridge flag,
        # the range after edge trimming and the frames each end extends along the contour (the end's
        # None while the frames after it are still to come)
        self.segments: list[list[list]] = [[] for _ in range(n_ch)]
        self.frames_done = 0  # frames whose flags were consumed

    # -- input ---------------------------------------------------------------------------------
    def feed(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 1:
            x = x[:, None]
        if x.shape[1] != self.n_ch:
            raise ValueError(f"expected {self.n_ch} channels, got {x.shape[1]}")
        self.buf = np.concatenate([self.buf, x]) if self.buf.size else x.copy()
        self._compute_blocks(final=False)

    def _compute_blocks(self, final: bool) -> None:
        need = (self.block - 1) * self.hop + self.nfft
        while True:
            avail = self.buf.shape[0]
            if avail >= need:
                nfr = self.block
            elif final and avail >= self.nfft:
                nfr = 1 + (avail - self.nfft) // self.hop
            else:
                break
            seg = self.buf[: (nfr - 1) * self.hop + self.nfft]
            self._add_block(seg, nfr)
            consumed = nfr * self.hop
            self.buf = self.buf[consumed:]
            self.s0 += consumed
            self.next_frame += nfr
            self._finalise(final=False)
        if final:
            self._finalise(final=True)

    def _add_block(self, seg: np.ndarray, nfr: int) -> None:
        frames = np.lib.stride_tricks.sliding_window_view(seg, self.nfft, axis=0)[:: self.hop][:nfr]
        # frames: (nfr, n_ch, nfft)
        w = frames * self.window
        X = sfft.rfft(w, axis=-1, overwrite_x=True)[..., self.gb0 : self.b1]
        P = np.square(X.real)
        P += np.square(X.imag)
        if self.n_ch > 1:
            P = np.ascontiguousarray(np.moveaxis(P, 1, 0))  # (n_ch, nfr, nx)
        else:
            P = P.reshape(1, nfr, -1)
        clipped = None
        if self.clip is not None and (seg.max() >= self.clip or -seg.min() >= self.clip):
            hit = np.abs(seg) >= self.clip  # (n, n_ch)
            cs = np.concatenate([np.zeros((1, self.n_ch), np.int64), np.cumsum(hit, axis=0)])
            st = np.arange(nfr) * self.hop
            clipped = (cs[st + self.nfft] - cs[st]).T > 0  # (n_ch, nfr)
        # per bin, two estimates of the mean noise power: the q-quantile and the median, each scaled
        # as for exponentially distributed power; their maximum. Equal in noise; a stationary line
        # whose level fluctuates over digital silence (a tone after HPSS masking) has a low quantile
        # but not a low median. Over noise the median counts up to _MEDIAN_CAP times the quantile
        k = max(1, int(round(self.q * nfr)))
        pct = np.partition(P, k - 1, axis=1)[:, k - 1, :] * self.q_scale
        sub = P[
            :, ::_MEDIAN_STRIDE
        ]  # the median from every 4th frame (4 ms apart): a quarter of the cost
        km = sub.shape[1] // 2
        med = np.partition(sub, km, axis=1)[:, km, :] * _MEDIAN_SCALE
        silent = pct < self.floor_min
        np.minimum(med, np.where(silent, np.inf, _MEDIAN_CAP * pct), out=med)
        np.maximum(pct, med, out=pct)
        self.blocks.append((self.next_frame, P, clipped, pct))

    def _finalise(self, final: bool) -> None:
        # block i (index 0 of self.blocks) can be finalised when ctx later blocks exist (or at end)
        while self.blocks and (len(self.blocks) > self.ctx or final):
            pcts = list(self.past_pct) + [b[3] for b in list(self.blocks)[: self.ctx + 1]]
            floor = np.median(np.stack(pcts), axis=0)  # (n_ch, nx)
            # stationary lines from the floor before its lower bound (after HPSS a weak tone can
            # stand above digital silence and still below the bound)
            self._line = self._line_bins(floor)
            self.silent_bins += (floor[:, self.g : self.g + self.nb] < self.floor_min).sum(axis=1)
            self.band_bins += self.nb
            np.maximum(floor, self.floor_min, out=floor)  # digital silence
            f0, P, clipped, pct = self.blocks[0]
            nxt = self.blocks[1][1] if len(self.blocks) > 1 else None
            self._features(f0, P, clipped, floor, nxt)
            self.blocks.popleft()
            self.past_pct.append(pct)
        if final:
            self._close_runs()

    # -- features --------------------------------------------------------------------------------
    def _features(self, f0: int, P: np.ndarray, clipped, floor: np.ndarray, nxt) -> None:
        inv = (1.0 / floor)[:, None, :].astype(np.float32)
        S = P * inv  # (n_ch, F, nx) whitened power over guard + band
        F = S.shape[1]
        h = self.smooth // 2
        if h > 0:
            head = self.prev_tail if self.prev_tail is not None else np.repeat(S[:, :1], h, axis=1)
            tail = nxt[:, :h] * inv if nxt is not None else np.repeat(S[:, -1:], h, axis=1)
            if tail.shape[1] < h:
                tail = np.concatenate(
                    [tail, np.repeat(tail[:, -1:], h - tail.shape[1], axis=1)], axis=1
                )
            self.prev_tail = S[:, F - h :].copy() if F >= h else None
            ext = np.concatenate([head, S, tail], axis=1)  # (n_ch, F + 2h, nx)
        else:
            ext = S
        band = ext[:, :, self.g : self.g + self.nb]
        self._S, self._S_f0 = band[:, h : h + F], f0  # whitened band of this block's frames
        self._resolve_pending(final=False)
        R = _max_filter_last(band, self.ridge)
        if (
            self.smooth > 1
        ):  # moving mean over frames by shifted sums (a cumsum would lose precision)
            T = R[:, :F].copy()
            for k in range(1, self.smooth):
                T += R[:, k : k + F]
            T *= 1.0 / self.smooth
        else:
            T = R
        score = T.max(axis=2)  # (n_ch, F): ridge score (linear SNR)
        ridge_bin = np.zeros(score.shape, np.int32)  # peak bin of the frames above thr_lo
        lo = score >= self.thr_lo
        if lo.any():
            ci, fi = np.nonzero(lo)
            # time-smoothed whitened spectrum of these frames (same frames as the score)
            rows = ext[ci[:, None], fi[:, None] + np.arange(self.smooth)[None, :]].mean(
                axis=1
            )  # (k, nx)
            pk = self.g + np.argmax(rows[:, self.g :], axis=1)
            ridge_bin[ci, fi] = pk - self.g
            cs = np.concatenate(
                [np.zeros((rows.shape[0], 1)), np.cumsum(rows - 1.0, axis=1, dtype=np.float64)],
                axis=1,
            )
            a = np.clip(pk - self.conc_w, 0, self.nx)
            b = np.clip(pk + self.conc_w + 1, 0, self.nx)
            k = np.arange(len(pk))
            inside = cs[k, b] - cs[k, a]
            out = cs[:, -1] - inside
            sigma = self.out_sigma * np.sqrt((self.nx - (b - a)) / self.nx)
            spread = np.maximum(out - self.p.broad_z * sigma, 0.0)
            conc = inside / np.maximum(inside + spread, 1e-12)
            narrow = (conc >= self.p.conc_min) & (inside > 0)
            # a frame whose ridge sits on a stationary line counts line_margin_db less, both to
            # continue and to start a call
            sc = score[ci, fi] / np.where(self._line[ci, pk - self.g], self.line_pen, 1.0)
            narrow &= sc >= self.thr_lo
            lo[ci, fi] = narrow
            eligible = narrow.copy()
            if clipped is not None:
                eligible &= ~clipped[ci, fi]
            peak = np.zeros(score.shape, np.float32)  # score of frames that may make a call
            peak[ci, fi] = np.where(eligible, sc, 0.0)
        else:
            peak = None
        # R's row i + h is frame f0 + i: its unsmoothed ridge score is read at run edges (_raw_at)
        self._R, self._T, self._T_f0 = R, T, f0
        self._hysteresis(f0, lo, peak, ridge_bin)
        self.prev_raw = R[:, F : F + h].max(axis=2) if h else R[:, :0, 0]
        if self.hist_len:
            src = T if F >= self.hist_len else np.concatenate([self.hist, T], axis=1)
            self.hist = src[:, src.shape[1] - self.hist_len :].copy()
        if self.edge_frames:
            n = self.edge_frames + 1
            src = self._S if F >= n else np.concatenate([self.shist, self._S], axis=1)
            self.shist = src[:, src.shape[1] - n :].copy()

    def _line_bins(self, floor: np.ndarray) -> np.ndarray:
        """``(n_ch, nb)``: band bins on or next to a stationary line (a bin whose floor stands
        ``line_db`` above the median floor of the bins within ``line_hz``, where that median is
        under the floor's lower bound: over digital silence, as after HPSS. Over noise a stationary
        tone is whitened by its own floor, and a raised floor marks a bout of calls on one
        frequency, which must not count less)."""
        fl = floor[:, self.g : self.g + self.nb]
        ref = median_filter(fl, size=(1, self.line_w), mode="nearest")
        line = (fl >= ref * self.line_ratio) & (fl > 0) & (ref < self.floor_min)
        line[:, 1:] |= line[:, :-1].copy()
        line[:, :-1] |= line[:, 1:].copy()
        return line

    # -- gap bridging and edges ---------------------------------------------------------------------
    def _rows(self, ch: int, g0: int, g1: int) -> np.ndarray | None:
        """Smoothed ridge-filtered band of global frames ``g0 .. g1 - 1`` (None if no longer held)."""
        h0 = self._T_f0 - self.hist.shape[1]
        if g0 < h0:
            return None
        parts = []
        if g0 < self._T_f0:
            parts.append(self.hist[ch, g0 - h0 : min(g1, self._T_f0) - h0])
        if g1 > self._T_f0:
            parts.append(self._T[ch, max(g0, self._T_f0) - self._T_f0 : g1 - self._T_f0])
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _bridged(self, ch: int, ga: int, fa: int) -> bool:
        """Does a run starting at frame ``ga`` on ridge bin ``fa`` continue the contour of the
        channel's previous call across the gap? Only for gaps from ``segment_fillgap`` to
        ``fillgap_max_s``: the gap's frames (less those the window and the smoothing touch from
        either side) are read along the straight path between the two ridge bins; the path's score
        over its frame's band median must stand ``bridge_z`` standard deviations above noise."""
        if not self.hist_len or not self.segments[ch]:
            return False
        e, fb = self.segments[ch][-1][1], self.segments[ch][-1][4]
        gap = ga - e
        if gap < self.fill_frames or gap >= self.bridge_frames:
            return False
        edge = self.smooth // 2 + 1
        g0, g1 = e + edge, ga - edge
        n = g1 - g0
        if n < 2:
            return False
        rows = self._rows(ch, g0, g1)
        if rows is None:
            return False
        t = (np.arange(g0, g1) - (e - 1)) / (ga - (e - 1))
        path = np.clip(np.rint(fb + (fa - fb) * t).astype(np.int64), 0, self.nb - 1)
        ref = np.maximum(np.median(rows, axis=1), _PATH_REF_MIN)
        v = float(np.mean(rows[np.arange(n), path] / ref))
        return v >= _PATH_NOISE_MEAN + self.p.bridge_z * _PATH_NOISE_STD / math.sqrt(n)

    def _edge_rows(self, ch: int, g: int, step: int, final: bool) -> np.ndarray | None:
        """Whitened band of the frames outside a call's edge, outwards: from frame ``g`` (the first
        outside the call) in direction ``step`` (-1: before the start, +1: after the end), up to
        ``edge_max_s``, as far as they are held. None when the frames after an end are still to
        come."""
        if step > 0:
            n = min(self.edge_frames, self._S_f0 + self._S.shape[1] - g)
            if n < self.edge_frames and not final:
                return None
            g0 = g
        else:
            n = min(self.edge_frames, g + 1 - (self._S_f0 - self.shist.shape[1]))
            g0 = g - n + 1
        if n <= 0:
            return np.zeros((0, self.nb), np.float32)
        i, m = g0 - self._S_f0, self.shist.shape[1]
        if i >= 0:
            rows = self._S[ch, i : i + n]
        elif i + n <= 0:
            rows = self.shist[ch, m + i : m + i + n]
        else:
            rows = np.concatenate([self.shist[ch, m + i :], self._S[ch, : i + n]])
        return rows[::-1].copy() if step < 0 else rows

    def _edge_frames_of(self, rows: np.ndarray | None, f: int, peak: float) -> int:
        """Frames by which a call's edge extends along its contour (``rows``: :meth:`_edge_rows`;
        ``f``: the ridge bin at the edge). The contour's bin is followed from frame to frame (the
        strongest bin within ``ridge_hz`` of the last one); each frame adds its whitened power
        there over its frame's band median (a broadband frame lifts the whole band and so offers no
        contour), less a drift: ``edge_db``, or ``edge_rel_db`` under the call's peak score if that
        is higher. The edge goes as far as this sum peaks; the walk ends once the sum has fallen
        two drifts below its peak (silence: a later call is never reached). In white noise an
        edge moves by 0.18 frames on average."""
        if rows is None or not rows.shape[0]:
            return 0
        drift = max(self.edge_drift, peak * self.edge_rel)
        ref = np.maximum(np.median(rows, axis=1) * _MEDIAN_SCALE, 1.0)
        rh = self.ridge // 2
        best, k, acc = 0.0, 0, 0.0
        for j in range(rows.shape[0]):
            lo = max(0, f - rh)
            f = lo + int(np.argmax(rows[j, lo : f + rh + 1]))
            acc += float(rows[j, f]) / ref[j] - drift
            if acc > best:
                best, k = acc, j + 1
            elif acc < best - 2 * drift:
                break
        return k

    def _resolve_pending(self, final: bool) -> None:
        for ch in range(self.n_ch):
            keep = []
            for seg in self.pending[ch]:
                rows = self._edge_rows(ch, seg[7], 1, final)
                if rows is None:
                    keep.append(seg)
                else:
                    seg[9] = self._edge_frames_of(rows, seg[4], seg[2])
            self.pending[ch] = keep

    def _raw_at(self, ch: int, g: int) -> float:
        """Unsmoothed ridge score of global frame ``g`` (this block or the previous block's last
        ``smooth // 2`` frames; inf elsewhere, which stops trimming)."""
        i = g - self._T_f0
        if 0 <= i < self._T.shape[1]:
            return float(self._R[ch, i + self.smooth // 2].max())
        j = i + self.prev_raw.shape[1]
        return float(self.prev_raw[ch, j]) if 0 <= j < self.prev_raw.shape[1] else math.inf

    def _trim_start(self, ch: int, ga: int, stop: int) -> int:
        """First frame of a run starting at ``ga`` (and going on at least to ``stop``, exclusive)
        once the frames that only the score's time smoothing lifted are dropped (at most
        ``smooth // 2``): their own, unsmoothed ridge score is under the continuation threshold."""
        ta = ga
        for _ in range(self.smooth // 2):
            if ta + 1 >= stop or self._raw_at(ch, ta) >= self.thr_lo:
                break
            ta += 1
        return ta

    # -- hysteresis --------------------------------------------------------------------------------
    def _hysteresis(self, f0: int, lo: np.ndarray, peak, fbin: np.ndarray) -> None:
        """Consume the flags of frames ``f0 .. f0 + F - 1``: runs of continuation frames (``lo``) are
        closed into candidate segments with their peak eligible score and edge ridge bins."""
        F = lo.shape[1]
        for ch in range(self.n_ch):
            lc = lo[ch]
            was_open = self.run_start[ch] >= 0
            if not lc.any():
                if was_open:
                    self._emit(ch, self.run_start[ch], f0)
                continue
            d = np.diff(np.concatenate([[0], lc.view(np.int8), [0]]))
            starts = np.flatnonzero(d == 1)
            stops = np.flatnonzero(d == -1)  # exclusive
            pk = peak[ch]
            fb = fbin[ch]
            for k, (a, b) in enumerate(zip(starts, stops)):
                m = float(pk[a:b].max())
                ga, fa = f0 + a, int(fb[a])
                if k == 0 and was_open and a == 0:  # the open run goes on
                    ga, fa = self.run_start[ch], self.run_f0[ch]
                    m = max(m, self.run_peak[ch])
                else:
                    if k == 0 and was_open:  # it ended at the block edge
                        self._emit(ch, self.run_start[ch], f0)
                    self.run_bridge[ch] = self._bridged(ch, ga, fa)
                    self.run_a[ch] = self._trim_start(ch, ga, f0 + b)
                    # the contour before the start, for runs that are or may become calls
                    self.run_v[ch] = (self._edge_rows(ch, self.run_a[ch] - 1, -1, True)
                                      if self.edge_frames and (m >= self.thr_hi or b == F) else None)  # fmt: skip
                self.run_start[ch], self.run_peak[ch], self.run_f0[ch] = ga, m, fa
                self.run_f1[ch] = int(fb[b - 1])
                if b < F:
                    self._emit(ch, ga, f0 + b)
        self.frames_done = f0 + F

    def _emit(self, ch: int, a: int, b: int) -> None:
        if self.run_peak[ch] >= self.thr_hi:
            ta, tb = self.run_a[ch], b
            for _ in range(self.smooth // 2):  # trim the end as the start (_trim_start)
                if tb - 1 <= ta or self._raw_at(ch, tb - 1) >= self.thr_lo:
                    break
                tb -= 1
            pk = self.run_peak[ch]
            seg = [a, b, pk, self.run_f0[ch], self.run_f1[ch], self.run_bridge[ch], ta, tb,
                   self._edge_frames_of(self.run_v[ch], self.run_f0[ch], pk), None]  # fmt: skip
            rows = self._edge_rows(ch, tb, 1, False) if self.edge_frames else None
            if rows is None and self.edge_frames:
                self.pending[ch].append(seg)
            else:
                seg[9] = self._edge_frames_of(rows, self.run_f1[ch], pk)
            self.segments[ch].append(seg)
        self.run_start[ch], self.run_peak[ch] = -1, 0.0

    def _close_runs(self) -> None:
        for ch in range(self.n_ch):
            if self.run_start[ch] >= 0:
                self._emit(ch, self.run_start[ch], self.frames_done)
        self._resolve_pending(final=True)

    # -- output ----------------------------------------------------------------------------------
    def silent_share(self) -> np.ndarray:
        """Per channel: the share of band bins (over all finalised blocks) whose noise floor lay
        under its lower bound, i.e. digital silence."""
        return self.silent_bins / max(self.band_bins, 1)

    def finish(self) -> list[list[tuple[float, float, float]]]:
        """Per channel: ``(start_s, stop_s, confidence)`` of every call, sorted."""
        self._compute_blocks(final=True)
        out = []
        half = self.hop / 2
        p = self.p
        for ch in range(self.n_ch):
            # gap filling: gaps shorter than segment_fillgap always (DAS semantics) ...
            merged: list[list] = []
            for a, b, pk, _, _, bridged, ta, tb, ka, kb in sorted(self.segments[ch]):
                gap = (a - merged[-1][1]) * self.hop / self.fs if merged else math.inf
                if merged and gap < p.segment_fillgap:
                    last = merged[-1]
                    last[1], last[2] = max(last[1], b), max(last[2], pk)
                    if tb >= last[4]:
                        last[4], last[8] = tb, kb
                    last[5] += b - a
                else:
                    merged.append([a, b, pk, ta, tb, b - a, bridged, ka, kb])
            # ... and gaps up to fillgap_max_s between two calls when the contour goes on through the
            # gap (_bridged): bridging joins calls, it never makes one of pieces too short to count
            joined: list[list] = []
            for m in merged:
                last = joined[-1] if joined else None
                if (last is not None and m[6] and (m[0] - last[1]) * self.hop / self.fs < p.fillgap_max_s
                        and min(m[5], last[5]) >= self.min_frames):  # fmt: skip
                    last[1], last[2], last[4], last[5], last[8] = (
                        m[1],
                        max(last[2], m[2]),
                        m[4],
                        last[5] + m[5],
                        m[8],
                    )
                else:
                    joined.append(m)
            merged = joined
            segs: list[list] = []
            for _, _, pk, ta, tb, active, _, ka, kb in merged:
                # times from the trimmed frames: half a hop before the first one's centre, half a
                # hop after the last one's
                t0 = (ta * self.hop + self.nfft / 2 - half) / self.fs
                t1 = ((tb - 1) * self.hop + self.nfft / 2 + half) / self.fs
                # a call holds more frames above threshold than any sound shorter than the window can
                # make (gap filling may join pieces, but the filled frames do not count)
                if active < self.min_frames or t1 - t0 < p.segment_minlen - 1e-9:
                    continue
                # the edges extended along the contour; two neighbours' extensions never overlap
                # (they meet halfway, never inside either call's own frames)
                e0, e1 = t0 - ka * self.hop / self.fs, t1 + kb * self.hop / self.fs
                if segs and e0 < segs[-1][1]:
                    mid = min(max((e0 + segs[-1][1]) / 2, segs[-1][3]), t0)
                    segs[-1][1], e0 = min(segs[-1][1], mid), max(e0, mid)
                segs.append([e0, e1, confidence_of(10 * math.log10(max(pk, 1e-30)), p), t1])
            out.append([(a, b, c) for a, b, c, _ in segs])
        return out


def confidence_of(peak_db: float, p: DetectParams) -> float:
    """Detection confidence of a call whose peak ridge score is ``peak_db``: a logistic function of
    the score, 0.5 at ``thr_high_db``, ``CONFIDENCE_SCALE_DB`` per logistic unit (docs/detector.md)."""
    return float(1.0 / (1.0 + math.exp(-(peak_db - p.thr_high_db) / CONFIDENCE_SCALE_DB)))


def min_call_s(fs: float, params: DetectParams | dict | None = None) -> float:
    """Shortest segment the detector reports at ``fs``: one frame more than a sound no longer than
    the analysis window can produce (``segment_minlen`` may raise it)."""
    p = _params(params)
    nfft = _nfft_for(fs, p.win_s)
    hop = nfft // 2
    n = (2 * nfft - 2) // hop + 1 + (max(1, int(p.smooth_frames)) - 1) + 1
    return max(n * hop / fs, p.segment_minlen)


def postprocess(
    segs: Iterable[tuple[float, float]], segment_fillgap: float, segment_minlen: float
) -> list[tuple[float, float]]:
    """DAS semantics: fill gaps shorter than ``segment_fillgap``, then drop segments shorter than ``segment_minlen``."""
    merged: list[list[float]] = []
    for a, b in sorted(segs):
        if merged and a - merged[-1][1] < segment_fillgap:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [(float(a), float(b)) for a, b in merged if b - a >= segment_minlen - 1e-9]


# ---------------------------------------------------------------------------------------- API


def _params(params: DetectParams | dict | None, **kw) -> DetectParams:
    if params is None:
        p = DetectParams()
    elif isinstance(params, dict):
        p = DetectParams().updated(**params)
    else:
        p = params
    return p.updated(**kw) if kw else p


def detect_array(x: np.ndarray, fs: float, params: DetectParams | dict | None = None,
                 block_s: float = 1.0, confidence: bool = False) -> list[list[tuple]]:  # fmt: skip
    """Detect on every column of ``x`` (``(n,)`` or ``(n, n_ch)``); one list of (start, stop) s per
    channel (``(start, stop, confidence)`` with ``confidence=True``)."""
    p = _params(params)
    x = np.asarray(x)
    if x.ndim == 1:
        x = x[:, None]
    eng = _Engine(fs, x.shape[1], p)
    step = max(1, int(block_s * fs))
    for i in range(0, x.shape[0], step):
        eng.feed(x[i : i + step])
    out = eng.finish()
    return out if confidence else [[(a, b) for a, b, _ in ss] for ss in out]


def detect(
    x: np.ndarray, fs: float, params: DetectParams | dict | None = None
) -> list[tuple[float, float]]:
    """Detect USVs in one channel ``x`` sampled at ``fs`` Hz; returns sorted (start_s, stop_s) pairs."""
    x = np.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"detect() takes one channel (1-D), got shape {x.shape}; use detect_array")
    return detect_array(x, fs, params)[0]


def detect_file(wav: str | os.PathLike, params: DetectParams | dict | None = None, channel: int | None = None,
                block_s: float = 2.0) -> pd.DataFrame:  # fmt: skip
    """Detect USVs in a WAV file, streaming it in blocks.

    Args:
        wav: mono or multichannel audio file (any format soundfile reads), sample rate >= 192 kHz.
        params: :class:`DetectParams` (or a dict of overrides); None: defaults.
        channel: 0-based channel to detect on; None: every channel.
        block_s: seconds read per block.

    Returns:
        DataFrame with columns ``channel`` (0-based), ``name``, ``start_seconds``, ``stop_seconds``,
        ``confidence`` (0-1, :func:`confidence_of`), sorted by channel then start.
    """
    wav = Path(wav)
    p = _params(params)
    if not wav.is_file():
        raise InputError(wav, "file not found")
    try:
        fh = sf.SoundFile(str(wav))
    except FileNotFoundError:
        raise InputError(wav, "file not found") from None
    except (RuntimeError, sf.LibsndfileError) as exc:  # type: ignore[attr-defined]
        raise InputError(wav, f"not a readable audio file ({exc})") from None
    with fh:
        fs, n_ch = fh.samplerate, fh.channels
        if fs < MIN_SAMPLE_RATE:
            raise InputError(
                wav, f"sample rate {fs} Hz < {MIN_SAMPLE_RATE} Hz: no ultrasonic band to detect in"
            )
        if channel is not None and not (0 <= channel < n_ch):
            raise InputError(wav, f"channel {channel} out of range (file has {n_ch})")
        if p.clip_level is None and fh.subtype in (
            "PCM_16",
            "PCM_24",
            "PCM_32",
            "PCM_U8",
            "PCM_S8",
        ):
            # integer PCM read as float in [-1, 1): full scale is clipping
            bits = {"PCM_16": 16, "PCM_24": 24, "PCM_32": 32}.get(fh.subtype, 8)
            p = p.updated(clip_level=1.0 - 2.0 ** (1 - bits))
            if p.min_noise_rms is None:
                p = p.updated(min_noise_rms=p.floor_lsb * 2.0 ** (1 - bits))
        chans = list(range(n_ch)) if channel is None else [channel]
        eng = _Engine(fs, len(chans), p)
        step = max(1, int(block_s * fs))
        frames = fh.frames if fh.seekable() else None
        with progress(
            total=frames, desc=f"detect {wav.name}", unit="sample", unit_scale=True
        ) as bar:
            while True:
                x = fh.read(step, dtype="float32", always_2d=True)
                if x.shape[0] == 0:
                    break
                eng.feed(x[:, chans] if channel is not None else x)
                bar.update(x.shape[0])
        segs = eng.finish()
    for c, share in zip(chans, eng.silent_share()):
        if share > 0.5:
            log.warning(
                "%s channel %d: the noise floor of %.0f %% of the band is digital silence (HPSS or "
                "other masked output?); the detector expects audio as recorded, with noise in every "
                "bin, and on masked audio can merge calls (docs/detector.md, 'Which audio'). If this "
                "is a very quiet recording (noise under floor_lsb = %g LSB rms), a lower floor_lsb "
                "keeps faint calls ('Very quiet 16-bit recordings')",
                wav, c + 1, 100 * share, p.floor_lsb,
            )  # fmt: skip
    rows = [(c, p.name, a, b, q) for c, ss in zip(chans, segs) for a, b, q in ss]
    return pd.DataFrame(rows, columns=["channel", *DAS_COLUMNS, "confidence"]).astype(
        {
            "channel": "int64",
            "start_seconds": "float64",
            "stop_seconds": "float64",
            "confidence": "float64",
        }
    )


# ---------------------------------------------------------------------------------------- output


def das_frame(
    segments: Iterable[tuple[float, float]] | pd.DataFrame, name: str = "USV"
) -> pd.DataFrame:
    """DAS's annotation table (``name, start_seconds, stop_seconds``, RangeIndex) from segments,
    plus ``confidence`` when the segments carry it (built-in detector; 3-tuples or that column)."""
    if isinstance(segments, pd.DataFrame):
        df = segments
        if "name" not in df:
            df = df.assign(name=name)
        df = df[DAS_COLUMNS + (["confidence"] if "confidence" in df else [])]
    else:
        rows = [(name, *map(float, s)) for s in segments]
        extra = ["confidence"] if rows and len(rows[0]) > 3 else []
        df = pd.DataFrame([r[: 3 + len(extra)] for r in rows], columns=DAS_COLUMNS + extra)
    df = df.astype({"start_seconds": "float64", "stop_seconds": "float64"})
    df["name"] = df["name"].astype(object)
    return df.reset_index(drop=True)


def write_das_csv(
    df: pd.DataFrame | Iterable[tuple[float, float]], path: str | os.PathLike
) -> Path:
    """Write detections in DAS's exact CSV format, atomically.

    ``pandas.DataFrame.to_csv`` *with* its index: header ``,name,start_seconds,stop_seconds``, one row
    per segment ``i,USV,start,stop``; nothing detected: the header line only. The built-in detector's
    ``confidence`` is written as a fourth column when present (readers of DAS files select columns by
    name); other extra columns of ``df`` (e.g. ``channel``) are not written.
    """
    path = Path(path)
    out = das_frame(df)
    with atomic_path(path) as tmp:
        out.to_csv(tmp)
    return path


def main_detect(in_wav: str | os.PathLike, out_csv: str | os.PathLike | None = None,
                params: DetectParams | dict | None = None, channel: int | None = None) -> list[Path]:  # fmt: skip
    """``usvflow detect-usvs IN.wav [-o OUT.csv]``: detect and write DAS-format CSV(s).

    Mono file (or one ``channel`` chosen): one CSV, ``out_csv`` or ``<stem>_annotations.csv`` beside
    the WAV. Multichannel file: one CSV per channel ``<stem>_chNN_annotations.csv`` (NN 1-based, two
    digits) in the folder of ``out_csv`` (taken as a folder when it does not end in ``.csv``) or beside
    the WAV. Returns the written paths.
    """
    in_wav = Path(in_wav)
    df = detect_file(in_wav, params, channel=channel)
    info = sf.info(str(in_wav))
    stem = in_wav.stem
    if info.channels == 1 or channel is not None:
        if out_csv is None:
            target = in_wav.with_name(f"{stem}_annotations.csv")
        else:
            target = Path(out_csv)
            if target.suffix.lower() != ".csv":
                target = target / f"{stem}_annotations.csv"
        return [write_das_csv(df, target)]
    folder = in_wav.parent if out_csv is None else Path(out_csv)
    if folder.suffix.lower() == ".csv":
        folder = folder.parent
    paths = []
    for c in range(info.channels):
        paths.append(
            write_das_csv(df[df["channel"] == c], folder / f"{stem}_ch{c + 1:02d}_annotations.csv")
        )
    return paths


# ---------------------------------------------------------------------------------------- CLI


def add_cli_arguments(parser) -> None:
    """Register the arguments of ``usvflow detect-usvs`` on an argparse (sub)parser: the input, the
    output, the channel, and the settings of ``usv_detection.builtin`` (names, defaults and help from
    the schema)."""
    from ..io.cli_options import add_settings_options

    parser.add_argument("input", help="mono or multichannel WAV, sample rate >= 192 kHz")
    parser.add_argument(
        "-o", "--output", help="output CSV (mono) or folder (multichannel); default beside the WAV"
    )
    parser.add_argument("--channel", type=int, help="detect on this 1-based channel only (one CSV)")
    parser.set_defaults(settings=add_settings_options(parser, "usv_detection.builtin"))


def run_cli(args) -> list[Path]:
    """Run ``usvflow detect-usvs`` from parsed arguments; prints and returns the written CSVs."""
    from ..io.cli_options import settings_from_args

    over = settings_from_args(args, args.settings)
    channel = None if args.channel is None else args.channel - 1
    paths = main_detect(args.input, args.output, params=over or None, channel=channel)
    for pth in paths:
        n = sum(1 for _ in open(pth)) - 1
        print(f"{pth}\t{n} USV(s)")
    return paths
