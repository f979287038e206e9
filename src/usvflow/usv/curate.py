"""Curation of per-channel USV detections into one table per session (docs/original-pipeline.md
step 13).

Three phases, all streamed (memory is bounded by the longest merged region and the longest USV, not
by the session's length):

1. **Coverage-watershed merge** across channels (:func:`watershed_merge`). Detections are grouped
   into regions that silence separates (no detection on any channel); inside a region the channels
   vote on a grid of ``coverage_bin_ms`` bins (each channel at most once per bin). A region whose
   coverage has several peaks of at least ``peak_min`` channels is split at a valley deeper than
   ``valley_frac`` times the lower of the two peaks; each piece is trimmed to the bins where the
   coverage reaches ``valley_frac`` of its maximum. The grid is anchored at t = 0 of the session
   (the first video frame), not at the earliest detection, and the trimmed edges are then tightened
   to the envelope of the detections that make the piece, so the times are not quantised to the
   grid (the original's 1-ms grid anchored at the first detection, defect B13).
2. **Amplitude channels and features** per USV from the session memmap (rows ``[floor(start·sr),
   ceil(stop·sr))``): ``peak_amp_ch`` is the channel of the largest *absolute* sample and
   ``mean_amp_ch`` the channel of the largest mean absolute sample, computed in int32 (the
   original took a signed argmax, and ``abs`` of int16 −32768 overflows); acoustic features on
   the ``mean_amp_ch`` channel in the band ``[low_freq_cutoff, sr/2)``.
3. **Noise rejection** (when ``filter_putative_noise`` and more than one USV): a USV is dropped
   when its amplitude channels are not among the channels that detected it, when the mean pairwise
   correlation of the detecting channels' band-limited magnitude spectrograms is below the
   correlation cut, or (one detecting channel) when the variance of its normalised power spectrogram
   is below the variance cut. Cuts: ``noise_corr_cutoff_min`` and ``noise_var_cutoff_max`` as
   fixed thresholds; the original's session-adaptive rule (6th / 94th percentile, which assumed a
   fixed 6 % of noise in every session and so discarded 6 % of the calls of a clean one) is
   available through ``noise_corr_percentile`` / ``noise_var_percentile``. The single-channel
   variance uses the same band as the correlation (the original used the full band there).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.fft as sfft

from ..io.atomic import InputError, atomic_path, save_figure
from ..io.config import defaults_from_schema

__all__ = [
    "CurateParams",
    "SUMMARY_COLUMNS",
    "FEATURE_COLUMNS",
    "CONFIDENCE_COLUMN",
    "annotation_channel",
    "load_detections",
    "watershed_merge",
    "usv_measures",
    "curate",
    "write_summary",
    "plot_noise_histogram",
    "curate_session",
]

SUMMARY_COLUMNS = ["usv_id", "start", "stop", "duration", "peak_amp_ch", "mean_amp_ch", "chs_count",
                   "chs_detected", "emitter"]  # fmt: skip
# the highest detection confidence among the channels' detections that make a USV (built-in detector)
CONFIDENCE_COLUMN = "detection_confidence"
FEATURE_COLUMNS = ["peak_freq_hz", "mean_freq_hz", "min_freq_hz", "max_freq_hz", "max_amplitude", "snr_db",
                   "signal_correlation", "signal_variance"]  # fmt: skip

_ANN_RE = re.compile(r"^(?P<dev>[a-z]+)_.*?_ch(?P<ch>\d+)_.*annotations\.csv$")


@dataclass(frozen=True)
@defaults_from_schema("usv_summary")
class CurateParams:
    """Settings of the curation (config ``usv_summary``; defaults as the original where it has them)."""

    filter_putative_noise: bool
    peak_min: int
    valley_frac: float
    coverage_bin_ms: float
    len_win_signal: int
    low_freq_cutoff: float
    noise_corr_cutoff_min: float
    noise_var_cutoff_max: float
    noise_corr_percentile: float | None
    noise_var_percentile: float | None
    snr_flank_s: float

    @classmethod
    def from_mapping(cls, m: dict | None) -> CurateParams:
        from ..io.config import dataclass_from_mapping

        return dataclass_from_mapping(cls, m, "curation setting")


# ---------------------------------------------------------------------------------------- phase 1


def annotation_channel(path: str | os.PathLike, channels: list[str]) -> int | None:
    """Memmap column of an annotation file ``<dev>_<stamp>_chNN_..._annotations.csv``.

    ``channels`` are the memmap's column names (``m_ch01`` … from its sidecar). ``None`` when the name
    does not follow the pattern or names a channel that is not in the memmap.
    """
    m = _ANN_RE.match(Path(path).name)
    if not m:
        return None
    key = f"{m['dev']}_ch{int(m['ch']):02d}"
    return channels.index(key) if key in channels else None


def load_detections(paths, channels: list[str]) -> pd.DataFrame:
    """All detections of a session: DataFrame ``start, stop, ch, confidence`` sorted by start
    (``confidence``: the built-in detector's column; NaN for files without it, such as DAS's).

    ``paths``: DAS-format annotation CSVs (rows named ``noise`` and empty rows dropped). A file whose
    name maps to no memmap column raises :class:`InputError` (the original skipped it silently).
    """
    from .score import read_intervals

    rows = []
    for p in sorted(map(Path, paths)):
        ch = annotation_channel(p, channels)
        if ch is None:
            raise InputError(
                p, f"name does not map to a channel of the memmap ({', '.join(channels)})"
            )
        iv = read_intervals(p, column="confidence")
        rows.append(
            pd.DataFrame(
                {
                    "start": iv[:, 0],
                    "stop": iv[:, 1],
                    "ch": np.full(len(iv), ch, np.int64),
                    "confidence": iv[:, 2],
                }
            )
        )
    if not rows:
        return pd.DataFrame({"start": [], "stop": [], "ch": [], "confidence": []}).astype(
            {"ch": "int64"}
        )
    df = pd.concat(rows, ignore_index=True)
    return df.sort_values(["start", "stop", "ch"], kind="stable").reset_index(drop=True)


def _regions(start: np.ndarray, stop: np.ndarray, dt: float):
    """Index ranges of start-sorted detections that form silence-separated regions on the bin grid."""
    if start.size == 0:
        return
    hi = np.maximum.accumulate(np.ceil(stop / dt))
    breaks = np.flatnonzero(np.floor(start[1:] / dt) >= hi[:-1]) + 1
    bounds = np.concatenate([[0], breaks, [start.size]])
    for a, b in zip(bounds[:-1], bounds[1:]):
        yield int(a), int(b)


def _split_points(cov: np.ndarray, peak_min: float, valley_frac: float) -> list[int]:
    """Bins of ``cov`` (one region) where a new piece starts, by the watershed rule."""
    from scipy.signal import find_peaks

    pc = np.concatenate([[0], cov, [0]])
    peaks, _ = find_peaks(pc, height=peak_min)
    cuts = []
    for p, q in zip(peaks[:-1], peaks[1:]):
        v = p + int(np.argmin(pc[p : q + 1]))
        if pc[v] < valley_frac * min(pc[p], pc[q]):
            cuts.append(v - 1)
    return cuts


def watershed_merge(det: pd.DataFrame, params: CurateParams | None = None) -> list[dict]:
    """Merge start-sorted per-channel detections (``start, stop, ch``) into USVs.

    Returns ``[{"start", "stop", "chs": sorted list, "detection_confidence"}]`` sorted by start
    (see the module docstring); ``detection_confidence`` is the highest ``confidence`` of the
    detections that make the USV (NaN when ``det`` has none).
    """
    p = params or CurateParams()
    dt = p.coverage_bin_ms / 1000.0
    start = det["start"].to_numpy(np.float64)
    stop = det["stop"].to_numpy(np.float64)
    ch = det["ch"].to_numpy(np.int64)
    conf = (det["confidence"].to_numpy(np.float64) if "confidence" in det.columns
            else np.full(start.size, np.nan))  # fmt: skip
    out = []
    for a, b in _regions(start, stop, dt):
        s, e, c, q = start[a:b], stop[a:b], ch[a:b], conf[a:b]
        off = int(np.floor(s.min() / dt))
        i0 = np.floor(s / dt).astype(np.int64) - off
        i1 = np.maximum(np.ceil(e / dt).astype(np.int64) - off, i0 + 1)
        n = int(i1.max())
        chans, inv = np.unique(c, return_inverse=True)
        mask = np.zeros((chans.size, n + 1), np.int32)
        np.add.at(mask, (inv, i0), 1)
        np.add.at(mask, (inv, i1), -1)
        mask = np.cumsum(mask, axis=1)[:, :n] > 0
        cov = mask.sum(axis=0)
        edges = [0, *_split_points(cov, p.peak_min, p.valley_frac), n]
        for lo, hi in zip(edges[:-1], edges[1:]):
            piece = cov[lo:hi]
            if piece.size == 0 or piece.max() == 0:
                continue
            above = np.flatnonzero(piece >= p.valley_frac * piece.max())
            left, right = lo + int(above[0]), lo + int(above[-1])
            used = np.flatnonzero(mask[:, left : right + 1].any(axis=1))
            t_lo, t_hi = (off + left) * dt, (off + right + 1) * dt
            # tighten the bin edges to the detections that make the piece
            member = np.isin(inv, used) & (i0 <= right) & (i1 > left)
            t_lo = max(t_lo, float(s[member].min()))
            t_hi = min(t_hi, float(e[member].max()))
            if t_hi <= t_lo:
                t_lo, t_hi = (off + left) * dt, (off + right + 1) * dt
            qm = q[member & ~np.isnan(q)]
            out.append({"start": t_lo, "stop": t_hi, "chs": [int(x) for x in chans[used]],
                        CONFIDENCE_COLUMN: float(qm.max()) if qm.size else math.nan})  # fmt: skip
    out.sort(key=lambda r: (r["start"], r["stop"]))
    return out


# ---------------------------------------------------------------------------------------- phase 2


def _stft_mag(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """|STFT| of the rows of ``x`` (channels × samples): Hann window, centred frames (zero padded),
    shape ``(channels, n_fft // 2 + 1, frames)``."""
    x = np.asarray(x, np.float32)
    if x.ndim == 1:
        x = x[None]
    pad = n_fft // 2
    xp = np.pad(x, ((0, 0), (pad, pad)))
    if xp.shape[1] < n_fft:
        xp = np.pad(xp, ((0, 0), (0, n_fft - xp.shape[1])))
    n_frames = 1 + (xp.shape[1] - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n_frames)[:, None]
    win = np.hanning(n_fft + 1)[:-1].astype(np.float32)
    frames = xp[:, idx] * win  # (ch, frames, n_fft)
    return np.abs(sfft.rfft(frames, axis=-1, overwrite_x=True)).transpose(0, 2, 1)


def _mean_upper_corr(S: np.ndarray) -> float:
    """Mean of the upper triangle of the correlation matrix of the channels' flattened spectrograms
    (channels without variance left out; ``np.corrcoef`` computed as a product of z-scored rows)."""
    flat = S.reshape(S.shape[0], -1).astype(np.float64)
    flat -= flat.mean(axis=1, keepdims=True)
    norm = np.sqrt(np.einsum("ij,ij->i", flat, flat))
    ok = norm > 0
    if ok.sum() < 2:
        return math.nan
    z = flat[ok] / norm[ok, None]
    c = np.einsum("ik,jk->ij", z, z)
    iu = np.triu_indices(c.shape[0], k=1)
    return float(np.mean(c[iu]))


def usv_measures(mm: np.ndarray, sr: float, start: float, stop: float, chs: list[int],
                 params: CurateParams | None = None, busy: np.ndarray | None = None) -> dict:  # fmt: skip
    """Amplitude channels, noise statistics and acoustic features of one USV from the memmap.

    ``busy``: ``(k, 2)`` start-sorted intervals (s) holding detections; frames of the SNR's noise
    flanks that overlap them are not noise and are left out.
    """
    p = params or CurateParams()
    n, nch = mm.shape
    a = max(0, int(math.floor(start * sr)))
    b = min(n, int(math.ceil(stop * sr)))
    if b <= a:
        b = min(n, a + 1)
    w = np.asarray(mm[a:b, :]).astype(np.int32)
    aw = np.abs(w)
    peak_ch = int(np.argmax(aw.max(axis=0)))
    mean_ch = int(np.argmax(aw.mean(axis=0)))
    n_fft, hop = p.len_win_signal, p.len_win_signal // 4
    lower = int(math.floor(p.low_freq_cutoff / (sr / n_fft)))
    freqs = np.arange(n_fft // 2 + 1) * sr / n_fft
    corr = var = math.nan
    # band-limited |STFT| of the detecting channels, computed once for the noise measure and, when the
    # best channel is among them, for the features
    M = _stft_mag(w[:, chs].T, n_fft, hop)[:, lower:, :] if chs else None
    if len(chs) > 1:
        corr = _mean_upper_corr(M)
    elif len(chs) == 1:
        P = M[0] ** 2
        var = float(np.var(P / P.max())) if P.max() > 0 else 0.0
    # acoustic features on the best channel
    if mean_ch in chs:
        S = M[chs.index(mean_ch)] ** 2  # (bins, frames)
    else:
        S = _stft_mag(w[:, mean_ch], n_fft, hop)[0, lower:, :] ** 2
    fb = freqs[lower:]
    band = S.sum(axis=0)
    feats = dict.fromkeys(["peak_freq_hz", "mean_freq_hz", "min_freq_hz", "max_freq_hz"], math.nan)
    if band.size and band.max() > 0:
        active = band >= 0.1 * band.max()
        pk = _peak_freqs(S[:, active], fb)
        feats["peak_freq_hz"] = float(fb[int(np.argmax(S[:, active].sum(axis=1)))])
        feats["mean_freq_hz"] = float(np.average(pk, weights=band[active]))
        feats["min_freq_hz"] = float(pk.min())
        feats["max_freq_hz"] = float(pk.max())
    sig = float(band[band >= 0.1 * band.max()].mean()) if band.size and band.max() > 0 else 0.0
    noise = _flank_power(mm, sr, a, b, mean_ch, n_fft, hop, lower, p.snr_flank_s, busy)
    snr = 10 * math.log10(sig / noise) if sig > 0 and noise > 0 else math.nan
    return {"peak_amp_ch": peak_ch, "mean_amp_ch": mean_ch, "cond0": peak_ch not in chs or mean_ch not in chs,
            **feats, "max_amplitude": int(aw[:, peak_ch].max()), "snr_db": snr,
            "signal_correlation": corr, "signal_variance": var}  # fmt: skip


def _peak_freqs(S: np.ndarray, fb: np.ndarray) -> np.ndarray:
    """Per-frame peak frequency with parabolic interpolation on the log power."""
    k = np.argmax(S, axis=0)
    f = fb[k].astype(np.float64)
    inner = (k > 0) & (k < S.shape[0] - 1)
    if inner.any():
        j = np.flatnonzero(inner)
        lp = np.log(S[:, j] + 1e-30)
        y0, y1, y2 = (
            lp[k[j] - 1, np.arange(j.size)],
            lp[k[j], np.arange(j.size)],
            lp[k[j] + 1, np.arange(j.size)],
        )
        den = y0 - 2 * y1 + y2
        delta = np.where(den < 0, 0.5 * (y0 - y2) / np.where(den == 0, 1, den), 0.0)
        f[j] += np.clip(delta, -0.5, 0.5) * (fb[1] - fb[0])
    return f


def _flank_power(mm, sr, a, b, ch, n_fft, hop, lower, flank_s, busy=None) -> float:
    """Median band power per frame in the ``flank_s`` before and after the USV (the noise floor),
    leaving out frames that overlap ``busy`` intervals (other USVs) and the zero-padded edge frames."""
    L = int(flank_s * sr)
    parts = []
    for lo, hi in ((max(0, a - L), a), (b, min(mm.shape[0], b + L))):
        if hi - lo < n_fft:
            continue
        band = (
            _stft_mag(np.asarray(mm[lo:hi, ch], np.float32), n_fft, hop)[0, lower:, :] ** 2
        ).sum(axis=0)
        centre = (lo + np.arange(band.size) * hop) / sr
        ok = (centre - n_fft / 2 / sr >= lo / sr) & (centre + n_fft / 2 / sr <= hi / sr)
        if busy is not None and len(busy):
            i = np.searchsorted(busy[:, 0], centre + n_fft / 2 / sr, side="right") - 1
            hit = (i >= 0) & (busy[np.maximum(i, 0), 1] > centre - n_fft / 2 / sr)
            ok &= ~hit
        parts.append(band[ok])
    v = np.concatenate(parts) if parts else np.zeros(0)
    return float(np.median(v)) if v.size else math.nan


# ---------------------------------------------------------------------------------------- phase 3


def _union(start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """Union of intervals as a start-sorted ``(k, 2)`` array of disjoint intervals."""
    if start.size == 0:
        return np.zeros((0, 2))
    o = np.argsort(start, kind="stable")
    s, e = start[o], np.maximum.accumulate(stop[o])
    new = np.concatenate([[True], s[1:] > e[:-1]])
    idx = np.flatnonzero(new)
    ends = np.concatenate([idx[1:] - 1, [s.size - 1]])
    return np.stack([s[idx], e[ends]], axis=1)


def _cut(values: np.ndarray, fixed: float, percentile: float | None, combine) -> float:
    if percentile is None or not np.isfinite(values).any():
        return float(fixed)
    return float(combine(np.nanpercentile(values, percentile), fixed))


def curate(det: pd.DataFrame, mm: np.ndarray, sr: float, params: CurateParams | None = None,
           progress: bool = False) -> tuple[pd.DataFrame, dict]:  # fmt: skip
    """Merge, measure and filter; returns ``(summary DataFrame, stats)``.

    ``stats``: ``n_detections``, ``n_merged``, ``n_kept``, ``corr_cut``, ``var_cut``,
    ``correlations``/``variances`` (arrays over the merged USVs), ``rejected`` (counts per reason).
    """
    p = params or CurateParams()
    merged = watershed_merge(det, p)
    rows = []
    it = merged
    if progress:
        from ..io.progress import progress as bar

        it = bar(merged, desc="curate USVs", unit="USV")
    # every detection (any channel) is busy time for the SNR's noise estimate; sorted, non-overlapping
    busy = _union(det["start"].to_numpy(np.float64), det["stop"].to_numpy(np.float64))
    for u in it:
        rows.append({**u, **usv_measures(mm, sr, u["start"], u["stop"], u["chs"], p, busy)})
    corrs = np.array([r["signal_correlation"] for r in rows], np.float64)
    vars_ = np.array([r["signal_variance"] for r in rows], np.float64)
    corr_cut = _cut(corrs, p.noise_corr_cutoff_min, p.noise_corr_percentile, max)
    var_cut = _cut(vars_, p.noise_var_cutoff_max, p.noise_var_percentile, min)
    rejected = {"amplitude_channel": 0, "correlation": 0, "variance": 0}
    keep = np.ones(len(rows), bool)
    filtering = p.filter_putative_noise and len(rows) > 1
    if filtering:
        for i, r in enumerate(rows):
            if r["cond0"]:
                rejected["amplitude_channel"] += 1
            elif r["signal_correlation"] < corr_cut:
                rejected["correlation"] += 1
            elif r["signal_variance"] < var_cut:
                rejected["variance"] += 1
            else:
                continue
            keep[i] = False
    kept = [r for r, k in zip(rows, keep) if k]
    df = pd.DataFrame({
        "usv_id": [f"{i:04d}" for i in range(len(kept))],
        "start": [r["start"] for r in kept],
        "stop": [r["stop"] for r in kept],
        "duration": [r["stop"] - r["start"] for r in kept],
        "peak_amp_ch": pd.array([r["peak_amp_ch"] for r in kept], dtype="int64"),
        "mean_amp_ch": pd.array([r["mean_amp_ch"] for r in kept], dtype="int64"),
        "chs_count": pd.array([len(r["chs"]) for r in kept], dtype="int64"),
        "chs_detected": [str(r["chs"]) for r in kept],
        "emitter": pd.array([None] * len(kept), dtype="object"),
        **{c: pd.array([r[c] for r in kept], dtype="int64" if c == "max_amplitude" else "float64")
           for c in FEATURE_COLUMNS},
        CONFIDENCE_COLUMN: pd.array([r[CONFIDENCE_COLUMN] for r in kept], dtype="float64"),
    })  # fmt: skip
    stats = {"n_detections": len(det), "n_merged": len(rows), "n_kept": len(kept), "filtered": filtering,
             "corr_cut": corr_cut, "var_cut": var_cut, "correlations": corrs, "variances": vars_,
             "kept_mask": keep, "rejected": rejected}  # fmt: skip
    return df, stats


def write_summary(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write the summary CSV atomically (comma, header, ``usv_id`` zero-padded, empty ``emitter``)."""
    path = Path(path)
    cols = SUMMARY_COLUMNS + [c for c in df.columns if c not in SUMMARY_COLUMNS]
    with atomic_path(path) as tmp:
        df[cols].to_csv(tmp, index=False, float_format="%.9g")
    return path


def read_summary(path: str | os.PathLike) -> pd.DataFrame:
    """Read a summary CSV back (``usv_id`` kept as the zero-padded string)."""
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype={"usv_id": str, "chs_detected": str, "emitter": object})
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    missing = [c for c in SUMMARY_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(path, f"not a USV summary: missing column(s) {', '.join(missing)}")
    return df


def plot_noise_histogram(stats: dict, path: str | os.PathLike, title: str = "") -> Path:
    """Histograms of the spectral correlations and variances with the cuts (SVG), written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.6), layout="constrained")
    keep = stats["kept_mask"]
    for ax, key, cut, label, side in (
        (axes[0], "correlations", stats["corr_cut"], "mean spectral correlation between detecting channels",
         "below"),
        (axes[1], "variances", stats["var_cut"], "variance of the normalised power (one detecting channel)",
         "below"),
    ):  # fmt: skip
        v = np.asarray(stats[key], np.float64)
        fin = np.isfinite(v)
        if fin.any():
            bins = np.histogram_bin_edges(v[fin], bins=20)
            ax.hist(v[fin & keep], bins=bins, histtype="stepfilled", alpha=0.7, color="tab:blue",
                    label=f"kept ({int((fin & keep).sum())})")  # fmt: skip
            ax.hist(v[fin & ~keep], bins=bins, histtype="stepfilled", alpha=0.7, color="tab:red",
                    label=f"rejected ({int((fin & ~keep).sum())})")  # fmt: skip
            if stats["filtered"]:
                ax.axvline(cut, color="k", ls="-.", label=f"cut {cut:.3g} (rejected {side})")
            ax.legend(frameon=False, fontsize=8)
        else:
            ax.text(
                0.5,
                0.5,
                "no USV with this measure",
                ha="center",
                va="center",
                transform=ax.transAxes,
            )
        ax.set_xlabel(label)
        ax.set_ylabel("USVs")
    n = stats["n_merged"]
    note = (
        ""
        if stats["filtered"]
        else ("  (noise filter off)" if n > 1 else "  (no filtering with < 2 USVs)")
    )
    fig.suptitle(f"{title}  {stats['n_detections']} detections -> {n} merged USVs -> {stats['n_kept']} kept{note}",
                 fontsize=10)  # fmt: skip
    save_figure(fig, path, "svg")
    plt.close(fig)
    return path


def curate_session(annotation_csvs, memmap: str | os.PathLike, summary_csv: str | os.PathLike,
                   histogram_svg: str | os.PathLike | None = None, params: CurateParams | dict | None = None,
                   title: str = "", progress: bool = False) -> tuple[pd.DataFrame, dict]:  # fmt: skip
    """Curate one session: annotation CSVs + memmap (with its JSON sidecar) -> summary CSV (+ SVG)."""
    from ..audio.memmap import open_memmap_reader, parse_memmap_name, sidecar_path
    from ..io.atomic import read_json

    p = params if isinstance(params, CurateParams) else CurateParams.from_mapping(params)
    memmap = Path(memmap)
    mm = open_memmap_reader(memmap, require_sidecar=True)
    side = read_json(sidecar_path(memmap))
    channels = side.get("channels")
    if not channels:
        raise InputError(
            sidecar_path(memmap), "no 'channels' list: cannot map annotation files to columns"
        )
    sr = parse_memmap_name(memmap)["sample_rate"]
    det = load_detections(annotation_csvs, channels)
    df, stats = curate(det, mm, sr, p, progress=progress)
    write_summary(df, summary_csv)
    if histogram_svg is not None:
        plot_noise_histogram(stats, histogram_svg, title=title)
    return df, stats
