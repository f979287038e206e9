"""Scoring USV detections against labelled calls, and readers for label / detection files.

Convention: a detection *matches* a labelled call when the two
intervals overlap; pairs are formed greedily one-to-one, best overlap first (largest overlap in
seconds; ties broken by the earlier label, then the earlier detection). Precision = matched
detections / detections, recall = matched labels / labels, F1 their harmonic mean. The same is
reported with the stricter criterion IoU > 0.5 (greedy one-to-one on IoU, best first). Onset and
offset errors (detection − label, seconds) are those of the any-overlap pairs.

Readers accept the formats met in practice:

* two numeric columns without header (amvoc ``gt_N.csv``, DeepSqueak/VocalMat/MUPET/MSA exports),
  including fields with a decimal *comma*, quoted (``"0,0775","0,0811"``, MSA1 files 1–2) or not
  when the separator is ``;`` or a tab;
* a header row: DAS's ``,name,start_seconds,stop_seconds`` (rows named ``noise`` dropped, rows
  with an empty start dropped) or any pair of columns named like ``start``/``onset`` and
  ``stop``/``offset``/``end``.
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..io.atomic import InputError

__all__ = [
    "Score",
    "match_intervals",
    "score_intervals",
    "read_intervals",
    "score_files",
    "evaluate_paths",
    "scores_table",
    "pool_scores",
    "AMVOC_TOOLS",
    "compare_tools",
    "comparison_markdown",
    "simulated_channel_truth",
    "match_channel",
    "pairs_iou",
    "evaluate_simulated",
]

AMVOC_TOOLS = ("deepsqueak", "vocalmat", "mupet", "msa1", "msa2")
TOOL_NAMES = {"builtin": "usvflow (built-in)", "deepsqueak": "DeepSqueak", "vocalmat": "VocalMat",
              "mupet": "MUPET", "msa1": "MSA1", "msa2": "MSA2"}  # fmt: skip

_START_NAMES = ("start_seconds", "start", "onset", "onset_s", "start_s", "begin", "t_start")
_STOP_NAMES = ("stop_seconds", "stop", "offset", "offset_s", "stop_s", "end", "end_s", "t_stop")


# ---------------------------------------------------------------------------------------- readers


def _num(field: str) -> float:
    s = field.strip().strip('"').strip()
    if s == "":
        return math.nan
    try:
        return float(s)
    except ValueError:
        if s.count(",") == 1 and "." not in s:
            return float(s.replace(",", "."))
        raise


def read_intervals(path: str | os.PathLike, column: str | None = None) -> np.ndarray:
    """Read a label or detection file as a sorted ``(n, 2)`` float array of (start, stop) seconds;
    with ``column`` (a header name, e.g. the built-in detector's ``confidence``) ``(n, 3)``, its
    values third (NaN where the file has no such column).

    Raises :class:`~usvflow.io.atomic.InputError` naming the file when it cannot be parsed or has
    an interval with stop < start.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    width = 2 if column is None else 3
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return np.zeros((0, width))
    first = lines[0]
    delim = ","
    if "\t" in first:
        delim = "\t"
    elif ";" in first:
        delim = ";"
    rows = list(csv.reader(io.StringIO("\n".join(lines)), delimiter=delim))
    head = [c.strip().lower() for c in rows[0]]
    try:
        [_num(c) for c in rows[0][:2]]
        has_header = False
    except ValueError:
        has_header = True
    out: list[tuple[float, ...]] = []
    try:
        if has_header:
            i0 = next((head.index(n) for n in _START_NAMES if n in head), None)
            i1 = next((head.index(n) for n in _STOP_NAMES if n in head), None)
            if i0 is None or i1 is None:
                raise InputError(path, f"header {rows[0]} has no start/stop columns")
            i_name = head.index("name") if "name" in head else None
            i_col = head.index(column.lower()) if column and column.lower() in head else None
            for r in rows[1:]:
                if i_name is not None and i_name < len(r) and r[i_name].strip() == "noise":
                    continue
                a, b = _num(r[i0]), _num(r[i1])
                if math.isnan(a) or math.isnan(b):
                    continue  # DAS writes an empty class as a row with NaN start
                c = _num(r[i_col]) if i_col is not None and i_col < len(r) else math.nan
                out.append((a, b, c)[:width])
        else:
            for r in rows:
                if len(r) < 2:
                    raise InputError(path, f"row {r} has fewer than 2 fields")
                out.append((_num(r[0]), _num(r[1]), math.nan)[:width])
    except ValueError as exc:
        raise InputError(path, f"not a start,stop table ({exc})") from None
    arr = np.asarray(out, dtype=np.float64).reshape(-1, width)
    if np.any(arr[:, 1] < arr[:, 0]):
        raise InputError(path, "an interval has stop < start")
    return arr[np.argsort(arr[:, 0], kind="stable")]


# ---------------------------------------------------------------------------------------- matching


def _as_intervals(a) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.size == 0:
        return np.zeros((0, 2))
    return a.reshape(-1, 2)


def _overlaps(
    det: np.ndarray, lab: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All overlapping pairs (i_det, j_lab, overlap_s, iou) of two interval sets (sweep, O(n log n + k))."""
    ii, jj = [], []
    if len(det) and len(lab):
        order_l = np.argsort(lab[:, 0], kind="stable")
        ls = lab[order_l, 0]
        for i, (a, b) in enumerate(det):
            hi = np.searchsorted(ls, b, side="left")  # labels starting before the detection ends
            if hi == 0:
                continue
            cand = order_l[:hi]
            cand = cand[lab[cand, 1] > a]
            ii.extend([i] * len(cand))
            jj.extend(cand.tolist())
    ii = np.asarray(ii, dtype=np.int64)
    jj = np.asarray(jj, dtype=np.int64)
    if ii.size == 0:
        z = np.zeros(0)
        return ii, jj, z, z
    inter = np.minimum(det[ii, 1], lab[jj, 1]) - np.maximum(det[ii, 0], lab[jj, 0])
    union = np.maximum(det[ii, 1], lab[jj, 1]) - np.minimum(det[ii, 0], lab[jj, 0])
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return ii, jj, inter, iou


def match_intervals(det, lab, criterion: str = "overlap") -> list[tuple[int, int]]:
    """Greedy one-to-one matching, best first; returns (detection index, label index) pairs.

    ``criterion``: ``"overlap"`` (any positive overlap, ranked by overlap length) or ``"iou"``
    (IoU > 0.5, ranked by IoU).
    """
    det, lab = _as_intervals(det), _as_intervals(lab)
    ii, jj, inter, iou = _overlaps(det, lab)
    if criterion == "overlap":
        keep = inter > 0
        key = inter
    elif criterion == "iou":
        keep = iou > 0.5
        key = iou
    else:
        raise ValueError(f"criterion must be 'overlap' or 'iou', got {criterion!r}")
    ii, jj, key = ii[keep], jj[keep], key[keep]
    order = np.lexsort((ii, jj, -key))
    used_d, used_l, pairs = set(), set(), []
    for k in order:
        i, j = int(ii[k]), int(jj[k])
        if i in used_d or j in used_l:
            continue
        used_d.add(i)
        used_l.add(j)
        pairs.append((i, j))
    pairs.sort(key=lambda p: p[1])
    return pairs


@dataclass
class Score:
    """Detection scores of one file (or pooled files)."""

    n_labels: int
    n_detections: int
    tp: int
    precision: float
    recall: float
    f1: float
    tp_iou: int
    precision_iou: float
    recall_iou: float
    f1_iou: float
    median_onset_error_s: float  # detection − label, any-overlap pairs
    median_offset_error_s: float
    median_abs_onset_error_s: float
    median_abs_offset_error_s: float

    def as_dict(self) -> dict:
        return asdict(self)


def _prf(tp: int, n_det: int, n_lab: int) -> tuple[float, float, float]:
    p = tp / n_det if n_det else (1.0 if n_lab == 0 else 0.0)
    r = tp / n_lab if n_lab else 1.0
    f = 2 * p * r / (p + r) if (p + r) > 0 else 0.0
    return p, r, f


def _score_from(
    n_lab: int, n_det: int, tp: int, tp_iou: int, on: np.ndarray, off: np.ndarray
) -> Score:
    p, r, f = _prf(tp, n_det, n_lab)
    pi, ri, fi = _prf(tp_iou, n_det, n_lab)

    def med(v):
        return float(np.median(v)) if len(v) else math.nan

    return Score(
        n_lab,
        n_det,
        tp,
        p,
        r,
        f,
        tp_iou,
        pi,
        ri,
        fi,
        med(on),
        med(off),
        med(np.abs(on)),
        med(np.abs(off)),
    )


def _pair_errors(det, lab):
    det, lab = _as_intervals(det), _as_intervals(lab)
    pairs = match_intervals(det, lab, "overlap")
    n_iou = len(match_intervals(det, lab, "iou"))
    if pairs:
        i, j = np.asarray(pairs).T
        on, off = det[i, 0] - lab[j, 0], det[i, 1] - lab[j, 1]
    else:
        on = off = np.zeros(0)
    return len(det), len(lab), len(pairs), n_iou, on, off


def score_intervals(det, lab) -> Score:
    """Score detections ``det`` against labels ``lab`` (both ``(n, 2)`` start/stop seconds)."""
    n_det, n_lab, tp, tpi, on, off = _pair_errors(det, lab)
    return _score_from(n_lab, n_det, tp, tpi, on, off)


def pool_scores(items: list[tuple[np.ndarray, np.ndarray]]) -> Score:
    """Pooled score over several files: matching is per file, counts and errors are summed."""
    nd = nl = tp = tpi = 0
    ons, offs = [], []
    for det, lab in items:
        a, b, c, d, on, off = _pair_errors(det, lab)
        nd, nl, tp, tpi = nd + a, nl + b, tp + c, tpi + d
        ons.append(on)
        offs.append(off)
    return _score_from(nl, nd, tp, tpi, np.concatenate(ons) if ons else np.zeros(0),
                       np.concatenate(offs) if offs else np.zeros(0))  # fmt: skip


def score_files(detections: str | os.PathLike, labels: str | os.PathLike) -> Score:
    """Score one detection file against one label file (any format :func:`read_intervals` reads)."""
    return score_intervals(read_intervals(detections), read_intervals(labels))


_LABEL_PREFIXES = ("gt_", "labels_", "label_", "truth_")
_DET_SUFFIXES = ("_annotations", "_usv_summary", "_detections")


def _key(path: Path, label: bool) -> str:
    stem = path.stem.lower()
    if label:
        for pre in _LABEL_PREFIXES:
            if stem.startswith(pre):
                return stem[len(pre) :]
    for suf in _DET_SUFFIXES:
        if stem.endswith(suf):
            stem = stem[: -len(suf)]
    return stem


def _tables(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in (".csv", ".tsv", ".txt")
    )


def evaluate_paths(
    detections: str | os.PathLike, labels: str | os.PathLike
) -> list[tuple[str, Score]]:
    """Score detection file(s) against label file(s): ``[(name, Score)]`` plus ``("pooled", …)`` when
    several pairs are scored.

    * file + file: one score;
    * folder + label file: every table in the folder (other than the label file) against it, e.g. the
      outputs of several tools on one recording (no pooled row: they are alternatives);
    * folder + folder: each label file ``[gt_|labels_]<key>.csv`` is paired with the detection files
      whose key (stem less ``_annotations``/``_usv_summary``) is ``<key>`` or ends in ``_<key>``; a
      label file without detections, or a detection file without labels, is an :class:`InputError`.
    """
    det, lab = Path(detections), Path(labels)
    for p in (det, lab):
        if not p.exists():
            raise InputError(p, "not found")
    if det.is_file() and lab.is_file():
        return [(det.name, score_files(det, lab))]
    if det.is_file():
        raise InputError(
            lab, "labels are a folder but the detections a single file: give the label file"
        )
    if lab.is_file():
        files = [p for p in _tables(det) if p.resolve() != lab.resolve()]
        if not files:
            raise InputError(det, "no detection table (.csv/.tsv/.txt) in the folder")
        truth = read_intervals(lab)
        return [(p.name, score_intervals(read_intervals(p), truth)) for p in files]
    labs = {_key(p, True): p for p in _tables(lab)}
    if not labs:
        raise InputError(lab, "no label table (.csv/.tsv/.txt) in the folder")
    out, items, used = [], [], set()
    for key, lp in labs.items():
        mine = [p for p in _tables(det) if p.resolve() != lp.resolve() and p.resolve() not in
                {q.resolve() for q in labs.values()} and (_key(p, False) == key or
                                                          _key(p, False).endswith("_" + key))]  # fmt: skip
        if not mine:
            raise InputError(lp, f"no detection file for key {key!r} in {det}")
        truth = read_intervals(lp)
        for p in mine:
            d = read_intervals(p)
            out.append((p.name, score_intervals(d, truth)))
            items.append((d, truth))
            used.add(p.resolve())
    if len(out) > 1:
        out.append(("pooled", pool_scores(items)))
    return out


def scores_table(rows: list[tuple[str, Score]]) -> str:
    """Plain-text table of :func:`evaluate_paths` output."""
    head = f"{'file':32s} {'labels':>6s} {'dets':>6s} {'P':>6s} {'R':>6s} {'F1':>6s} {'F1@IoU.5':>8s} " \
           f"{'onset ms':>9s} {'offset ms':>9s}"  # fmt: skip
    lines = [head]
    for name, s in rows:
        lines.append(f"{name[:32]:32s} {s.n_labels:6d} {s.n_detections:6d} {s.precision:6.3f} {s.recall:6.3f} "
                     f"{s.f1:6.3f} {s.f1_iou:8.3f} {1e3 * s.median_onset_error_s:+9.1f} "
                     f"{1e3 * s.median_offset_error_s:+9.1f}")  # fmt: skip
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------- real data


def compare_tools(
    root: str | os.PathLike, files=(1, 2, 3), tools=("builtin", *AMVOC_TOOLS), params=None
):
    """Score the built-in detector and the shipped detections of other tools on the amvoc files.

    ``root`` is the ``vocalizations_evaluation`` folder (``N/rec_N.wav``, ``N/gt_N.csv``,
    ``N/<tool>_N.csv``). Returns a DataFrame with one row per (tool, file) plus a ``pooled`` row per
    tool (counts summed over files): ``tool, file, n_labels, n_detections, tp, precision, recall,
    f1, tp_iou, precision_iou, recall_iou, f1_iou, median_onset_error_s, median_offset_error_s,
    median_abs_onset_error_s, median_abs_offset_error_s``.
    """
    import pandas as pd

    root = Path(root)
    rows = []
    for tool in tools:
        items = []
        for n in files:
            lab = read_intervals(root / str(n) / f"gt_{n}.csv")
            if tool == "builtin":
                from .detect import detect_file

                df = detect_file(root / str(n) / f"rec_{n}.wav", params)
                det = df[["start_seconds", "stop_seconds"]].to_numpy()
            else:
                det = read_intervals(root / str(n) / f"{tool}_{n}.csv")
            items.append((det, lab))
            rows.append({"tool": tool, "file": str(n), **score_intervals(det, lab).as_dict()})
        rows.append({"tool": tool, "file": "pooled", **pool_scores(items).as_dict()})
    return pd.DataFrame(rows)


def comparison_markdown(df) -> str:
    """Markdown table of :func:`compare_tools` output: F1 per file, pooled P/R/F1, IoU>0.5 F1, timing."""
    files = [f for f in df["file"].unique() if f != "pooled"]
    head = ["tool", *[f"F1 file {f}" for f in files], "pooled P", "pooled R", "pooled F1",
            "pooled F1 (IoU>0.5)", "median onset err (ms)", "median offset err (ms)"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for tool, g in df.groupby("tool", sort=False):
        g = g.set_index("file")
        pooled = g.loc["pooled"]
        cells = [TOOL_NAMES.get(tool, tool), *[f"{g.loc[f, 'f1']:.3f}" for f in files],
                 f"{pooled['precision']:.3f}", f"{pooled['recall']:.3f}", f"**{pooled['f1']:.3f}**",
                 f"{pooled['f1_iou']:.3f}", f"{1e3 * pooled['median_onset_error_s']:+.1f}",
                 f"{1e3 * pooled['median_offset_error_s']:+.1f}"]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------- simulation


def _device_time(truth: dict, device: str, t_true):
    """File-concatenated device time (s, counted in nominal samples) of true time(s) ``t_true``."""
    dev = truth["devices"][device]
    return (
        (np.asarray(t_true, dtype=np.float64) - dev["start_s"])
        * dev["rate_true_hz"]
        / dev["nominal_rate_hz"]
    )


def simulated_channel_truth(truth: dict, device: str, channel: int, snr_factor: float = 3.0,
                            f_lo_hz: float = 30e3) -> dict:  # fmt: skip
    """What a detector on one simulated channel must find, in that device's own time base.

    ``channel`` is 0-based within the device (mic ``j = 12 * device_index + channel``). A USV is
    *detectable* on the channel when its peak amplitude there (``mic_amp[j]``) is at least
    ``snr_factor`` times the channel's noise rms above ``f_lo_hz`` (white-noise rms times
    ``sqrt(1 - f_lo / (fs / 2))``; the rumble and mid-band components lie below the band).
    Times are the arrival at the microphone (emission + ``mic_delay_s[j]``) on the device clock
    (``(t - start_s) * rate_true / nominal_rate`` seconds since the device's first sample).

    Returns ``{"detectable": (n, 2), "all": (m, 2), "detectable_mask": (m,) bool, "clicks": (k, 2),
    "sigma": float}`` (``all`` in the order of ``truth["usvs"]``).
    """
    d_index = list(truth["devices"]).index(device)
    n_per = 12
    j = d_index * n_per + channel
    fs = truth["devices"][device]["nominal_rate_hz"]
    noise = truth["noise"][device][channel] if truth.get("noise") else {"white_rms_lsb": 1.0}
    sigma = float(noise["white_rms_lsb"]) * math.sqrt(max(0.0, 1.0 - f_lo_hz / (fs / 2)))
    allv, mask = [], []
    for u in truth["usvs"]:
        delay = u["mic_delay_s"][j]
        allv.append(_device_time(truth, device, [u["t_start_s"] + delay, u["t_stop_s"] + delay]))
        mask.append(u["mic_amp"][j] >= snr_factor * sigma)
    mics = np.asarray(truth["mic_positions_m"])
    c = truth["speed_of_sound"]
    clicks = []
    for k in truth["clicks"]:
        if k["kind"] == "acoustic":
            delay = float(np.linalg.norm(mics[j] - np.asarray(k["source_xyz_m"]))) / c
        elif k["mic"] == j:
            delay = 0.0
        else:
            continue
        clicks.append(
            _device_time(truth, device, [k["t_s"] + delay, k["t_s"] + delay + k["duration_s"]])
        )
    allv = np.asarray(allv, dtype=np.float64).reshape(-1, 2)
    mask = np.asarray(mask, dtype=bool)
    return {"detectable": allv[mask], "all": allv, "detectable_mask": mask,
            "clicks": np.asarray(clicks, dtype=np.float64).reshape(-1, 2), "sigma": sigma}  # fmt: skip


def pairs_iou(det, lab, pairs) -> np.ndarray:
    """IoU of the given (i_det, j_lab) pairs of two interval sets (0 for an empty union)."""
    if not len(pairs):
        return np.zeros(0)
    det, lab = np.asarray(det, float).reshape(-1, 2), np.asarray(lab, float).reshape(-1, 2)
    i, j = np.asarray(pairs).T
    d, la = det[i], lab[j]
    inter = np.minimum(d[:, 1], la[:, 1]) - np.maximum(d[:, 0], la[:, 0])
    union = np.maximum(d[:, 1], la[:, 1]) - np.minimum(d[:, 0], la[:, 0])
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def match_channel(det: np.ndarray, tr: dict) -> tuple[list, list, list]:
    """One simulated channel's detections ``det`` ``(n, 2)`` against its truth ``tr``
    (:func:`simulated_channel_truth`): the pairs matched to detectable calls, the pairs of the
    remaining detections matched to calls below the detectability level (neither hits nor false
    positives), and the indices of the false positives."""
    pairs_d = match_intervals(det, tr["detectable"])
    matched_det = {i for i, _ in pairs_d}
    rest = [i for i in range(len(det)) if i not in matched_det]
    weak = tr["all"][~tr["detectable_mask"]]
    pairs_w = match_intervals(det[rest], weak) if rest else []
    fp_idx = [rest[i] for i in range(len(rest)) if i not in {a for a, _ in pairs_w}]
    return pairs_d, pairs_w, fp_idx


def evaluate_simulated(session_dir: str | os.PathLike, truth: dict, params=None, devices=("m", "s"),
                       highpass_hz: float | None = None, snr_factor: float = 3.0, f_lo_hz: float = 30e3):  # fmt: skip
    """Run the built-in detector on every channel of a simulated session and score it per channel.

    Each device's files (``audio/original_mc``) are joined, optionally high-passed (4th-order
    Butterworth at ``highpass_hz``, zero phase; None, the default: unfiltered, as the workflow's
    ``detect_usvs`` reads its cropped channels) and detected channel by channel. Scoring per channel:
    recall over the *detectable* USVs (:func:`simulated_channel_truth`, noise measured above
    ``f_lo_hz``); a detection is a true positive when it
    matches (any overlap, greedy one-to-one) any USV heard on that channel - a detection of a call
    below the detectability level is neither rewarded nor penalised - and a false positive otherwise;
    ``fp_clicks`` counts false positives that overlap a click. Onset/offset errors are those of the
    matched detectable calls.

    Returns ``(per_channel DataFrame, summary dict)``; the summary pools all channels: ``precision``,
    ``recall``, ``median_onset_error_s``, ``median_offset_error_s``, ``median_abs_*``, ``n_*`` and
    ``iou`` (array: the IoU of every matched pair).
    """
    import pandas as pd
    import soundfile as sf
    from scipy.signal import butter, sosfiltfilt

    from .detect import detect_array

    session_dir = Path(session_dir)
    rows, ons, offs, ious = [], [], [], []
    for dev in devices:
        names = truth["devices"][dev]["files"]
        x = np.concatenate([sf.read(session_dir / "audio" / "original_mc" / nm, dtype="float32", always_2d=True)[0]
                            for nm in names])  # fmt: skip
        fs = truth["devices"][dev]["nominal_rate_hz"]
        if highpass_hz:
            sos = butter(4, highpass_hz, btype="highpass", fs=fs, output="sos")
            for c in range(x.shape[1]):
                x[:, c] = sosfiltfilt(sos, x[:, c]).astype(np.float32)
        segs = detect_array(x * 32768.0, fs, params)
        del x
        for c, ss in enumerate(segs):
            det = np.asarray(ss, dtype=np.float64).reshape(-1, 2)
            tr = simulated_channel_truth(truth, dev, c, snr_factor=snr_factor, f_lo_hz=f_lo_hz)
            pairs_d, pairs_w, fp_idx = match_channel(det, tr)
            fp_clicks = sum(1 for i in fp_idx if len(tr["clicks"]) and np.any(
                (tr["clicks"][:, 0] < det[i, 1]) & (tr["clicks"][:, 1] > det[i, 0])))  # fmt: skip
            if pairs_d:
                i, jx = np.asarray(pairs_d).T
                ons.append(det[i, 0] - tr["detectable"][jx, 0])
                offs.append(det[i, 1] - tr["detectable"][jx, 1])
                ious.append(pairs_iou(det, tr["detectable"], pairs_d))
            rows.append({"device": dev, "channel": c + 1, "n_detectable": len(tr["detectable"]),
                         "n_heard": len(tr["all"]), "n_detections": len(det), "tp": len(pairs_d),
                         "tp_weak": len(pairs_w), "fp": len(fp_idx), "fp_clicks": fp_clicks,
                         "n_clicks": len(tr["clicks"]), "sigma_lsb": tr["sigma"]})  # fmt: skip
    df = pd.DataFrame(rows)
    on = np.concatenate(ons) if ons else np.zeros(0)
    off = np.concatenate(offs) if offs else np.zeros(0)
    n_det = int(df["n_detections"].sum())
    fp = int(df["fp"].sum())
    nd = int(df["n_detectable"].sum())
    summary = {
        "n_detectable": nd,
        "n_detections": n_det,
        "tp": int(df["tp"].sum()),
        "fp": fp,
        "fp_clicks": int(df["fp_clicks"].sum()),
        "n_clicks": int(df["n_clicks"].sum()),
        "precision": (n_det - fp) / n_det if n_det else 1.0,
        "recall": int(df["tp"].sum()) / nd if nd else 1.0,
        "median_onset_error_s": float(np.median(on)) if on.size else math.nan,
        "median_offset_error_s": float(np.median(off)) if off.size else math.nan,
        "median_abs_onset_error_s": float(np.median(np.abs(on))) if on.size else math.nan,
        "median_abs_offset_error_s": float(np.median(np.abs(off))) if off.size else math.nan,
        # IoU of every matched (detection, detectable call) pair
        "iou": np.concatenate(ious) if ious else np.zeros(0),
    }
    return df, summary
