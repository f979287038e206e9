"""Evaluation protocol of the built-in USV detector (``usvflow evaluate-detections --protocol``).

Three parts, reported separately (docs/detector.md, "Evaluation protocol"):

1. **Real recordings, leave one recording out.** Every labelled recording found (a ``*.wav`` with a
   ``gt_<key>.csv`` beside it, ``<key>`` the WAV's stem less a ``rec_`` prefix). For each held-out
   recording the operating point (``thr_high_db`` and ``segment_fillgap``, from their grids) is
   chosen on the *other* recordings (best pooled any-overlap F1, ties to the default) and the
   held-out one is scored with it; the held-out rows are pooled. The defaults, fixed in advance,
   are scored on every recording too. Scores: any-overlap and IoU > 0.5 precision / recall / F1
   (``usvflow.usv.score``) and the distribution of the IoU of the matched pairs.
   In the same recordings, **real noise with simulated calls** (:func:`inject_into_real`): calls of
   the simulator's model added to the label-free stretches at known times and levels; and **real
   calls in more real noise** (:func:`degrade_real`): the recordings' own background added, noise
   rms x2-x4, scored against their labels.
2. **A simulated family** drawn from seeds the design never used (``seed0`` on): per session the
   call rate, the share and level of faint calls, the click rate and level and, in some sessions,
   calls loud enough to clip are drawn from the seed; scored per channel by
   :func:`~usvflow.usv.score.evaluate_simulated` (recall over calls >= 3x the channel's noise) on the
   24 channels as recorded (what the workflow's ``detect_usvs`` reads) and, on a few channels,
   through the workflow's HPSS + FIR chain (the input of DAS; a robustness check).
3. **Pure noise**: sessions without calls (tones on some channels, clicks) - false detections per
   channel-minute, on the channels as recorded and, on a few channels, through HPSS + FIR.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np

from .detect import DetectParams
from .score import match_intervals, pairs_iou, pool_scores, read_intervals, score_intervals

__all__ = [
    "find_labelled",
    "iou_of_pairs",
    "loro_real",
    "simulated_family",
    "noise_rate",
    "inject_into_real",
    "degrade_real",
    "protocol_report",
]

GRID_DB = (10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0)
# gap filling (s): DAS's 15 ms and longer, for labels that count calls split by short gaps as one
GRID_FILLGAP = (0.015, 0.025, 0.035)
DEFAULT_REAL = Path(__file__).resolve().parents[3] / "tests" / "data" / "usv-audio"
# detection on int16 values held in memory (what detect_file sets for a 16-bit file: full scale is
# clipping, the floor's lower bound is floor_lsb LSB rms of white noise, its setting's default)
_INT16 = {"clip_level": 32767.0, "min_noise_rms": DetectParams().floor_lsb}  # 1 LSB = 1


def find_labelled(roots) -> list[tuple[str, Path, Path]]:
    """``(key, wav, labels)`` of every ``*.wav`` under ``roots`` with a ``gt_<key>.csv`` beside it."""
    out = []
    for root in map(Path, roots):
        for wav in sorted(root.rglob("*.wav")):
            key = wav.stem[4:] if wav.stem.startswith("rec_") else wav.stem
            lab = wav.with_name(f"gt_{key}.csv")
            if lab.is_file():
                out.append(
                    (f"{wav.parent.name}/{wav.name}" if wav.parent != root else wav.name, wav, lab)
                )
    return out


def iou_of_pairs(det, lab) -> np.ndarray:
    """IoU of every any-overlap matched (detection, label) pair."""
    det, lab = np.asarray(det, float).reshape(-1, 2), np.asarray(lab, float).reshape(-1, 2)
    return pairs_iou(det, lab, match_intervals(det, lab))


def _detect(wav: Path, point: tuple[float, float], params: dict | None) -> np.ndarray:
    from .detect import detect_file

    thr, fill = point
    df = detect_file(wav, {**(params or {}), "thr_high_db": thr, "segment_fillgap": fill})
    return df[["start_seconds", "stop_seconds"]].to_numpy()


def loro_real(recordings, grid_db=GRID_DB, default_db: float = 12.0, params: dict | None = None,
              grid_fillgap=GRID_FILLGAP, default_fillgap: float | None = None) -> dict:  # fmt: skip
    """Leave-one-recording-out over ``recordings`` (:func:`find_labelled`); see the module doc.

    The operating point of each held-out recording is a pair (``thr_high_db``, ``segment_fillgap``)
    from the grids, the one with the best pooled any-overlap F1 on the other recordings (ties: the
    default gap filling first, then the threshold nearest the default)."""
    if default_fillgap is None:
        default_fillgap = DetectParams().updated(**(params or {})).segment_fillgap
    default = (float(default_db), float(default_fillgap))
    grid = sorted({(float(t), float(g)) for t in grid_db for g in grid_fillgap} | {default})
    labs = {k: read_intervals(lab) for k, _, lab in recordings}
    dets = {(k, pt): _detect(wav, pt, params) for k, wav, _ in recordings for pt in grid}

    def rank(pt, f1):
        return (round(f1[pt], 9), -abs(pt[1] - default[1]), -abs(pt[0] - default[0]))

    folds = []
    for k, _, _ in recordings:
        train = [o for o, _, _ in recordings if o != k]
        if train:
            f1 = {pt: pool_scores([(dets[o, pt], labs[o]) for o in train]).f1 for pt in grid}
            best = max(grid, key=lambda pt: rank(pt, f1))
        else:
            best = default
        folds.append({"held_out": k, "thr_high_db": best[0], "segment_fillgap": best[1],
                      "score": score_intervals(dets[k, best], labs[k]), "iou": iou_of_pairs(dets[k, best], labs[k]),
                      "point": best})  # fmt: skip
    held = pool_scores([(dets[f["held_out"], f["point"]], labs[f["held_out"]]) for f in folds])
    fixed = {k: score_intervals(dets[k, default], labs[k]) for k, _, _ in recordings}
    fixed_pooled = pool_scores([(dets[k, default], labs[k]) for k, _, _ in recordings])
    iou = np.concatenate([f["iou"] for f in folds]) if folds else np.zeros(0)
    for f in folds:
        del f["point"]
    return {
        "folds": folds,
        "held_out": held,
        "fixed": fixed,
        "fixed_pooled": fixed_pooled,
        "iou": iou,
    }


def _draw_session(rng: np.random.Generator) -> dict:
    """Simulator settings of one session of the family (drawn, so no one was chosen by hand)."""
    top = float(
        rng.choice([8000.0, 8000.0, 60000.0])
    )  # a third of the sessions: loud calls that clip
    return {
        "calls_per_minute": float(rng.uniform(60, 600)),
        "clicks_per_minute": float(rng.uniform(6, 300)),
        "amp_range_lsb": (float(rng.uniform(100, 1000)), top),
        "weak_fraction": float(rng.uniform(0.1, 0.4)),
        "weak_range_lsb": (float(rng.uniform(10, 40)), float(rng.uniform(60, 300))),
        "click_amp_range_lsb": (float(rng.uniform(500, 3000)), float(rng.uniform(5000, 30000))),
    }


def _simulate(folder: Path, seed: int, seconds: float, settings: dict) -> dict:
    from ..simulate.audio import write_avisoft
    from ..simulate.timeline import make_timeline

    rng = np.random.default_rng(seed)
    tl = make_timeline(rng, seconds, ["21372315", "21241563"])
    truth = write_avisoft(
        folder, tl, rng, start_datetime=dt.datetime(2025, 4, 30, 14, 50, 17), **settings
    )
    return json.loads(json.dumps(truth))


def _hpss_chain(folder: Path, truth: dict, chans: list[int]) -> tuple[np.ndarray, float]:
    """Channels ``chans`` of device m through the workflow's own HPSS + 30-kHz FIR, as int16 values."""
    import soundfile as sf

    from ..audio.highpass import design_sinc, fir_filter_array
    from ..audio.hpss import hpss_chunked

    fs = truth["devices"]["m"]["nominal_rate_hz"]
    files = [folder / "audio" / "original_mc" / f for f in truth["devices"]["m"]["files"]]
    x = np.concatenate([sf.read(f, dtype="int16", always_2d=True)[0] for f in files])
    taps = design_sinc(fs, hp_hz=30000, lp_hz=0, atten_db=122)
    y = np.stack([np.clip(np.round(fir_filter_array(hpss_chunked(x[:, c].astype(np.float32)), taps)),
                          -32768, 32767) for c in chans], axis=1)  # fmt: skip
    return y, float(fs)


def _detect_hpss(y: np.ndarray, fs: float, params) -> list:
    from .detect import detect_array

    return detect_array(y, fs, {**_INT16, **(params or {})})


def score_hpss_channels(folder: Path, truth: dict, chans: list[int], params=None) -> dict:
    """Detection through the workflow's HPSS + FIR chain on channels ``chans`` of device m, scored
    per channel as :func:`~usvflow.usv.score.evaluate_simulated` scores the channels as recorded."""
    from .score import match_channel, simulated_channel_truth

    y, fs = _hpss_chain(folder, truth, chans)
    n_det = tp = fp = nd = 0
    for c, ss in zip(chans, _detect_hpss(y, fs, params)):
        det = np.asarray(ss, dtype=np.float64).reshape(-1, 2)
        tr = simulated_channel_truth(truth, "m", c)
        pairs, _, fp_idx = match_channel(det, tr)
        fp += len(fp_idx)
        n_det, tp, nd = n_det + len(det), tp + len(pairs), nd + len(tr["detectable"])
    return {"channels": len(chans), "n_detectable": nd, "n_detections": n_det, "tp": tp, "fp": fp,
            "precision": (n_det - fp) / n_det if n_det else 1.0, "recall": tp / nd if nd else 1.0}  # fmt: skip


def simulated_family(n: int = 3, seconds: float = 2.0, seed0: int = 9001, params=None, workdir=None,
                     hpss_channels: int = 0) -> list[dict]:  # fmt: skip
    """Per session: its seed, drawn settings and the summary of :func:`evaluate_simulated`; with
    ``hpss_channels`` > 0 also ``hpss``: that many channels of device m through the workflow's HPSS +
    FIR chain (:func:`score_hpss_channels`)."""
    from .score import evaluate_simulated

    out = []
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        for i in range(n):
            seed = seed0 + i
            settings = _draw_session(np.random.default_rng([seed, 1]))
            folder = Path(tmp) / f"s{seed}"
            truth = _simulate(folder, seed, seconds, settings)
            _, s = evaluate_simulated(folder, truth, params)
            out.append({"seed": seed, "settings": settings, **s})
            iou = s["iou"]
            out[-1]["iou"] = _iou_summary(iou)
            out[-1]["iou_values"] = iou
            if hpss_channels > 0:
                chans = list(range(min(hpss_channels, len(truth["noise"]["m"]))))
                out[-1]["hpss"] = score_hpss_channels(folder, truth, chans, params)
    return out


def noise_rate(n: int = 2, seconds: float = 10.0, seed0: int = 9101, hpss_channels: int = 4, params=None,
               workdir=None) -> dict:  # fmt: skip
    """False detections per channel-minute in sessions without calls (the 24 channels as recorded;
    and through HPSS + FIR on ``hpss_channels`` channels of device m per session, tone channels first)."""
    from .score import evaluate_simulated

    det_hp = ch_min_hp = det_hpss = ch_min_hpss = 0.0
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        for i in range(n):
            seed = seed0 + i
            rng = np.random.default_rng([seed, 2])
            settings = {"calls_per_minute": 0.0, "clicks_per_minute": float(rng.uniform(6, 120))}
            folder = Path(tmp) / f"n{seed}"
            truth = _simulate(folder, seed, seconds, settings)
            df, _ = evaluate_simulated(folder, truth, params)
            det_hp += float(df["n_detections"].sum())
            ch_min_hp += len(df) * seconds / 60
            if hpss_channels <= 0:
                continue
            n_ch = len(truth["noise"]["m"])
            tones = [c for c, p in enumerate(truth["noise"]["m"]) if p["tones"]]
            chans = (tones + [c for c in range(n_ch) if c not in tones])[:hpss_channels]
            y, fs = _hpss_chain(folder, truth, chans)
            det_hpss += sum(len(s) for s in _detect_hpss(y, fs, params))
            ch_min_hpss += len(chans) * y.shape[0] / fs / 60
    return {
        "per_channel_minute": det_hp / ch_min_hp if ch_min_hp else math.nan,
        "channel_minutes": ch_min_hp,
        "per_channel_minute_hpss": det_hpss / ch_min_hpss if ch_min_hpss else math.nan,
        "channel_minutes_hpss": ch_min_hpss,
    }


def _inject_round(x, fs, lab, free, sigma, rng, level_range, margin_s, params) -> dict:
    """One copy of a recording with calls added in its free stretches, detected and scored
    (:func:`inject_into_real`)."""
    from ..simulate.calls import draw_call, waveform
    from .detect import detect

    m = int(margin_s * fs)
    y, inj = x.copy(), []
    t0 = margin_s
    while True:
        t0 += float(rng.uniform(0.05, 0.25))
        call = draw_call(rng)
        amp = sigma * float(np.exp(rng.uniform(*np.log(level_range))))
        a, b = int(t0 * fs), int(np.ceil((t0 + call.duration_s) * fs)) + 1
        if b >= x.size - m:
            break
        if not free[max(0, a - m) : b + m].all():
            continue
        y[a:b] += amp * waveform(call, np.arange(a, b) / fs - t0)
        free[max(0, a - m) : b + m] = False  # the next call keeps its distance
        inj.append((t0, t0 + call.duration_s, amp / sigma))
        t0 += call.duration_s
    inj = np.asarray(inj, float).reshape(-1, 3)
    y = np.clip(np.round(y), -32768, 32767)
    det = np.asarray(detect(y, fs, {**_INT16, **(params or {})}), float).reshape(-1, 2)
    pairs = match_intervals(det, inj[:, :2])
    matched = {i for i, _ in pairs}
    detectable = inj[:, 2] >= 3.0
    tp = [(i, j) for i, j in pairs if detectable[j]]
    fp = sum(1 for i in range(len(det)) if i not in matched
             and not np.any((lab[:, 0] < det[i, 1]) & (lab[:, 1] > det[i, 0])))  # fmt: skip
    return {"n_injected": len(inj), "n_scored": len(matched) + fp, "n_detectable": int(detectable.sum()),
            "tp": len(tp), "fp": fp, "iou": pairs_iou(det, inj[:, :2], tp)}  # fmt: skip


def _rates(d: dict) -> dict:
    d["precision"] = (d["n_scored"] - d["fp"]) / d["n_scored"] if d["n_scored"] else 1.0
    d["recall"] = d["tp"] / d["n_detectable"] if d["n_detectable"] else 1.0
    return d


def inject_into_real(recordings, rounds: int = 10, seed: int = 9201, level_range: tuple[float, float] = (1.0, 10.0),
                     margin_s: float = 0.040, params=None) -> dict:  # fmt: skip
    """Simulated calls in real noise: calls drawn from ``seed`` (the simulator's call model, every
    type) are added to the label-free stretches of each labelled recording (at least ``margin_s``
    from any labelled call and from each other), at a peak amplitude of ``level_range`` (log-uniform)
    times the recording's noise rms above 30 kHz, measured outside the labels; ``rounds`` copies of
    each recording, each with calls of its own (a recording holds few label-free stretches). Scored
    as the simulated sessions are: recall over injected calls >= 3x that noise; a detection matching
    no injected call is a false positive unless it overlaps a labelled call (a real call, not scored).

    Returns per recording (``recordings``) and ``pooled``: ``n_injected``, ``n_detectable``, ``tp``,
    ``fp``, ``n_scored`` (detections of injected calls plus false ones), ``precision``, ``recall``;
    and ``iou``, the IoU of every matched detectable call.
    """
    from scipy.signal import butter, sosfiltfilt

    keys = ("n_injected", "n_scored", "n_detectable", "tp", "fp")
    rng = np.random.default_rng(seed)
    rows, ious = [], []
    for key, wav, lab_path in recordings:
        x, fs, lab, free = _read_labelled(wav, lab_path, margin_s)
        hp = sosfiltfilt(butter(4, 30e3, btype="highpass", fs=fs, output="sos"), x)
        sigma = float(np.sqrt(np.mean(hp[free] ** 2)))
        row = {"recording": key, "noise_rms_lsb": sigma, **dict.fromkeys(keys, 0)}
        for _ in range(rounds):
            r = _inject_round(x, fs, lab, free.copy(), sigma, rng, level_range, margin_s, params)
            ious.append(r.pop("iou"))
            for k in keys:
                row[k] += r[k]
        rows.append(_rates(row))
    pooled = _rates({k: sum(r[k] for r in rows) for k in keys})
    return {
        "recordings": rows,
        "pooled": pooled,
        "iou": np.concatenate(ious) if ious else np.zeros(0),
    }


def _free_mask(n: int, fs: float, lab: np.ndarray, margin_s: float) -> np.ndarray:
    """Samples at least ``margin_s`` from every labelled call."""
    t = np.arange(n) / fs
    free = np.ones(n, bool)
    for a, b in lab:
        free &= ~((t > a - margin_s) & (t < b + margin_s))
    return free


def _read_labelled(wav, lab_path, margin_s: float):
    """A labelled recording's first channel (int16 values as float), sample rate, labels and
    :func:`_free_mask`."""
    import soundfile as sf

    x, fs = sf.read(wav, dtype="int16", always_2d=True)
    x = x[:, 0].astype(np.float64)
    lab = read_intervals(lab_path)
    return x, fs, lab, _free_mask(x.size, fs, lab, margin_s)


def _noise_from(pool: list[np.ndarray], n: int, ramp: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of noise: stretches drawn from ``pool``, joined with ``ramp``-sample
    sin-squared cross-fades (complementary, so the level does not dip at the joints)."""
    out = np.zeros(n)
    w = np.sin(np.linspace(0.0, np.pi / 2, ramp)) ** 2
    pos = 0
    while True:
        s = pool[int(rng.integers(len(pool)))].copy()
        s[:ramp] *= w
        s[-ramp:] *= w[::-1]
        m = min(s.size, n - pos)
        out[pos : pos + m] += s[:m]
        if m < s.size:
            return out
        pos += m - ramp


def degrade_real(recordings, factors=(2.0, 3.0, 4.0), copies: int = 3, seed: int = 9301,
                 margin_s: float = 0.040, params=None) -> dict:  # fmt: skip
    """Real calls in more real noise: each labelled recording plus the recordings' own background
    (their label-free stretches, at least ``margin_s`` from any labelled call and at least 20 ms
    long, drawn at random and cross-faded over 2 ms), scaled so that the noise rms becomes
    ``factor`` times the recording's own (SNR lower by 20 log10 factor dB); ``copies`` draws per
    factor. Scored against the human labels, which were made on the recording as it was: as the
    noise rises, faint calls fall under it (recall cannot stay 1) and faint onsets and ends are
    hidden: the labels reach further than a labeller of the noisier copy would have seen.

    Returns per factor: the pooled :class:`~usvflow.usv.score.Score` as a dict, ``iou`` (quantiles
    of the matched pairs' IoU) and ``n`` (recording copies scored)."""
    from .detect import detect

    data, pool = [], []
    for _, wav, lab_path in recordings:
        x, fs, lab, free = _read_labelled(wav, lab_path, margin_s)
        d = np.diff(np.concatenate([[0], free.view(np.int8), [0]]))
        for a, b in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)):
            if b - a > 0.020 * fs:
                pool.append(x[a:b] - x[a:b].mean())
        data.append((x, fs, lab, free))
    out = {}
    for fac in factors:
        rng = np.random.default_rng([seed, int(round(100 * fac))])
        items, ious = [], []
        for _ in range(copies):
            for x, fs, lab, free in data:
                nz = _noise_from(pool, x.size, int(0.002 * fs), rng)
                g = math.sqrt(fac**2 - 1.0) * float(np.std(x[free])) / float(np.std(nz))
                y = np.clip(np.round(x + g * nz), -32768, 32767)
                det = np.asarray(detect(y, fs, {**_INT16, **(params or {})}), float).reshape(-1, 2)
                items.append((det, lab))
                ious.append(iou_of_pairs(det, lab))
        out[float(fac)] = {"score": pool_scores(items).as_dict(), "iou": _iou_summary(np.concatenate(ious)),
                           "n": len(items)}  # fmt: skip
    return out


def _iou_summary(iou: np.ndarray) -> dict:
    """10th percentile, quartile, median and share above 0.5 of matched pairs' IoU."""
    if not iou.size:
        return {"n": 0}
    q = np.quantile(iou, [0.1, 0.25, 0.5])
    return {"n": int(iou.size), "p10": float(q[0]), "p25": float(q[1]), "median": float(q[2]),
            "share_over_half": float(np.mean(iou > 0.5))}  # fmt: skip


def _iou_line(iou: np.ndarray) -> str:
    s = _iou_summary(iou)
    if not s["n"]:
        return "IoU of matched pairs: none"
    return (f"IoU of matched pairs: 10% {s['p10']:.2f}, 25% {s['p25']:.2f}, median {s['median']:.2f}, "
            f"share > 0.5 {s['share_over_half']:.3f} (n={s['n']})")  # fmt: skip


def _row(name, s, extra="") -> str:
    return (f"{name[:34]:34s} {s.n_labels:5d} {s.n_detections:5d} {s.precision:6.3f} {s.recall:6.3f} {s.f1:6.3f} "
            f"{s.precision_iou:6.3f} {s.recall_iou:6.3f} {s.f1_iou:6.3f} {extra}")  # fmt: skip


def protocol_report(real_roots=None, n_sim: int = 3, sim_seconds: float = 2.0, n_noise: int = 2,
                    noise_seconds: float = 10.0, hpss_channels: int = 4, params=None) -> tuple[str, dict]:  # fmt: skip
    """Run the protocol; returns ``(printable table, JSON-able results)``."""
    roots = [Path(r) for r in (real_roots or [DEFAULT_REAL])]
    recs = find_labelled([r for r in roots if r.exists()])
    lines, res = [], {}
    head = f"{'':34s} {'labs':>5s} {'dets':>5s} {'P':>6s} {'R':>6s} {'F1':>6s} {'P@.5':>6s} {'R@.5':>6s} {'F1@.5':>6s}"
    if recs:
        r = loro_real(recs, params=params)
        lines += [f"REAL RECORDINGS ({len(recs)} labelled): leave one recording out; thr_high_db and "
                  "segment_fillgap chosen on the others from " + ", ".join(f"{g:g}" for g in GRID_DB) + " dB x "
                  + ", ".join(f"{1000 * g:g}" for g in GRID_FILLGAP) + " ms", head]  # fmt: skip
        for f in r["folds"]:
            lines.append(
                _row(
                    f"held out {f['held_out']}",
                    f["score"],
                    f"(thr {f['thr_high_db']:g} dB, fill {1000 * f['segment_fillgap']:g} ms)",
                )
            )
        lines.append(_row("HELD-OUT POOLED", r["held_out"]))
        iou = r["iou"]
        if iou.size:
            lines.append(_iou_line(iou))
        lines += ["defaults (fixed in advance, no fitting):", head]
        for k, s in r["fixed"].items():
            lines.append(_row(k, s))
        lines.append(_row("POOLED", r["fixed_pooled"]))
        res["real"] = {"held_out": r["held_out"].as_dict(), "fixed_pooled": r["fixed_pooled"].as_dict(),
                       "folds": [{"held_out": f["held_out"], "thr_high_db": f["thr_high_db"],
                                  "segment_fillgap": f["segment_fillgap"], **f["score"].as_dict()}
                                 for f in r["folds"]],
                       "iou_quantiles": {str(q): float(np.quantile(iou, q)) for q in (0.1, 0.25, 0.5)} if iou.size else {}}  # fmt: skip
        inj = inject_into_real(recs, params=params)
        lines += ["", "REAL NOISE, SIMULATED CALLS (calls of every simulated type added to the label-free stretches "
                  "of each recording, 10 copies, 1-10x its noise rms above 30 kHz; recall over calls >= 3x)",
                  f"{'':34s} {'noise rms':>9s} {'added':>6s} {'>=3x':>5s} {'P':>6s} {'R':>6s} {'FP':>4s}"]  # fmt: skip
        for row in [*inj["recordings"], {"recording": "pooled", **inj["pooled"]}]:
            rms = f"{row['noise_rms_lsb']:.1f}" if "noise_rms_lsb" in row else ""
            lines.append(f"{row['recording'][:34]:34s} {rms:>9s} {row['n_injected']:6d} {row['n_detectable']:5d} "
                         f"{row['precision']:6.3f} {row['recall']:6.3f} {row['fp']:4d}")  # fmt: skip
        lines.append(_iou_line(inj["iou"]) + " (added calls >= 3x)")
        res["real_noise"] = {
            "recordings": inj["recordings"],
            "pooled": inj["pooled"],
            "iou": _iou_summary(inj["iou"]),
        }
        deg = degrade_real(recs, params=params)
        lines += ["", "REAL CALLS IN MORE REAL NOISE (each recording plus background from the recordings' label-free "
                  "stretches, noise rms x2-x4, 3 draws each; scored against the labels of the recording as it was)",
                  f"{'noise':>6s} {'SNR':>7s} {'labs':>5s} {'dets':>5s} {'P':>6s} {'R':>6s} {'F1':>6s} {'F1@.5':>6s} "
                  f"{'IoU med':>7s} {'IoU 10%':>7s} {'onset':>6s} {'offset':>6s}"]  # fmt: skip
        for fac, d in deg.items():
            sc, iq = d["score"], d["iou"]
            lines.append(f"{'x' + format(fac, 'g'):>6s} {-20 * math.log10(fac):+5.1f}dB {sc['n_labels']:5d} "
                         f"{sc['n_detections']:5d} {sc['precision']:6.3f} {sc['recall']:6.3f} {sc['f1']:6.3f} "
                         f"{sc['f1_iou']:6.3f} {iq.get('median', math.nan):7.2f} {iq.get('p10', math.nan):7.2f} "
                         f"{1e3 * sc['median_onset_error_s']:+5.1f}ms {1e3 * sc['median_offset_error_s']:+5.1f}ms")  # fmt: skip
        res["real_more_noise"] = {format(k, "g"): v for k, v in deg.items()}
    else:
        lines.append("REAL RECORDINGS: none found (" + ", ".join(map(str, roots)) + ")")
    if n_sim > 0:
        fam = simulated_family(n_sim, sim_seconds, params=params, hpss_channels=hpss_channels)
        hp = hpss_channels > 0
        lines += ["", f"SIMULATED FAMILY ({n_sim} sessions x {sim_seconds:g} s, 24 channels as recorded"
                  + (f", {hpss_channels} of them also through HPSS + FIR" if hp else "")
                  + ", fresh seeds; recall over calls >= 3x the channel noise)",
                  f"{'seed':>6s} {'calls/min':>9s} {'clicks/min':>10s} {'clip':>5s} {'detectable':>10s} {'P':>6s} "
                  f"{'R':>6s} {'FP':>4s} {'FP clicks':>9s}" + (f" {'HPSS P':>7s} {'HPSS R':>7s}" if hp else "")]  # fmt: skip
        for s in fam:
            st = s["settings"]
            lines.append(f"{s['seed']:6d} {st['calls_per_minute']:9.0f} {st['clicks_per_minute']:10.0f} "
                         f"{'yes' if st['amp_range_lsb'][1] > 32767 else 'no':>5s} {s['n_detectable']:10d} "
                         f"{s['precision']:6.3f} {s['recall']:6.3f} {s['fp']:4d} {s['fp_clicks']:9d}"
                         + (f" {s['hpss']['precision']:7.3f} {s['hpss']['recall']:7.3f}" if hp else ""))  # fmt: skip
        nd = sum(s["n_detections"] for s in fam)
        fp = sum(s["fp"] for s in fam)
        tp = sum(s["tp"] for s in fam)
        nt = sum(s["n_detectable"] for s in fam)
        pooled = {"precision": (nd - fp) / nd if nd else 1.0, "recall": tp / nt if nt else 1.0}
        extra = ""
        if hp:
            h = {
                k: sum(s["hpss"][k] for s in fam)
                for k in ("n_detections", "fp", "tp", "n_detectable")
            }
            pooled["hpss"] = {"precision": (h["n_detections"] - h["fp"]) / h["n_detections"] if h["n_detections"] else 1.0,
                              "recall": h["tp"] / h["n_detectable"] if h["n_detectable"] else 1.0,
                              "n_detectable": h["n_detectable"]}  # fmt: skip
            extra = f" {pooled['hpss']['precision']:7.3f} {pooled['hpss']['recall']:7.3f}"
        lines.append(f"{'pooled':>6s} {'':9s} {'':10s} {'':5s} {nt:10d} {pooled['precision']:6.3f} "
                     f"{pooled['recall']:6.3f} {fp:4d} {'':9s}" + extra)  # fmt: skip
        iou = np.concatenate([s.pop("iou_values") for s in fam])
        lines.append(_iou_line(iou) + " (detectable channel-calls)")
        pooled["iou"] = _iou_summary(iou)
        res["simulated"] = {"sessions": fam, "pooled": pooled}
    if n_noise > 0:
        nr = noise_rate(n_noise, noise_seconds, hpss_channels=hpss_channels, params=params)
        lines += ["", f"PURE NOISE ({n_noise} sessions x {noise_seconds:g} s without calls; tones, clicks)",
                  f"false detections per channel-minute: {nr['per_channel_minute']:.3f} as recorded "
                  f"({nr['channel_minutes']:.1f} channel-min), {nr['per_channel_minute_hpss']:.3f} through HPSS + FIR "
                  f"({nr['channel_minutes_hpss']:.1f} channel-min, tone channels first)"]  # fmt: skip
        res["noise"] = nr
    return "\n".join(lines), res


def write_report_json(path: str | os.PathLike, res: dict) -> None:
    from ..io.atomic import write_json

    def conv(o):
        if isinstance(o, dict):
            return {k: conv(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [conv(v) for v in o]
        if isinstance(o, (np.floating, np.integer)):
            return o.item()
        return o

    write_json(path, conv(res))
