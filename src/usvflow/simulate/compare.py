"""The workflow's results on a simulated cohort against the simulator's truth (``usvflow compare-truth``).

For each experiment session of ``<cohort>/sessions.tsv`` that has ``<cohort>/truth/<session>/``:

* **USVs**: the session's USV summary (``start``/``stop``, s from the first video frame) against the
  simulated calls inside the video window (``t_start_video_s``/``t_stop_video_s``). A detection and a
  call match when their intervals overlap (greedy one-to-one, largest overlap first:
  :func:`usvflow.usv.score.match_intervals`); precision, recall and the median |onset error| of the
  matched pairs (the truth's onset is the emission time, the detection's the arrival at a microphone:
  up to ~2 ms of travel).
* **Emitter**: of the matched calls, the share whose ``emitter`` in the assigned summary is the
  simulated emitter (unassigned calls count as not correct).
* **Call type**: of the matched calls, the share whose ``call_type`` is the simulated type (``none``
  counts as wrong).
* **3D pose**: median distance (mm) between the metric 3D points and ``pose_truth.npz``, over every
  frame, animal and node that both have (the arena frame of the simulation is the metric frame).
* **Sync**: the A/V and E/V verdicts as the workflow wrote them (their own evidence is in the JSON).
* **Units**: units kept by the workflow (cluster files of the manifest) against units the simulator
  planted (``ground_truth.json`` ephys.units).

What a product is missing for (its stage off or not run) is shown as ``-``.
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

import numpy as np

from ..io.atomic import InputError


def _sessions(cohort: Path) -> list[tuple[str, Path]]:
    sheet = cohort / "sessions.tsv"
    if not sheet.is_file():
        raise InputError(sheet, "no sessions sheet: is this a simulated cohort (usvflow simulate)?")
    with open(sheet, newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    out = []
    for r in rows:
        sid = r["session_id"]
        if r.get("kind", "experiment") != "experiment":
            continue
        if (cohort / "truth" / sid / "ground_truth.json").is_file():
            folder = Path(r["folder"])
            out.append((sid, folder if folder.is_absolute() else cohort / folder))
    return out


def _one(folder: Path, pattern: str) -> Path | None:
    found = sorted(folder.rglob(pattern))
    return found[0] if found else None


def _usv_part(folder: Path, sid: str, truth: dict) -> dict:
    import pandas as pd

    from ..usv.score import match_intervals, score_intervals

    calls = [u for u in truth["audio"]["usvs"] if not u["outside_video"]]
    out: dict = {"usv_true": len(calls)}
    summ_path = _one(folder, f"{sid}_usv_summary.csv")
    if summ_path is None:
        return out
    summ = pd.read_csv(summ_path, dtype={"usv_id": str})
    lab = np.array([[u["t_start_video_s"], u["t_stop_video_s"]] for u in calls], float).reshape(
        -1, 2
    )
    det = summ[["start", "stop"]].to_numpy(float).reshape(-1, 2)
    sc = score_intervals(det, lab)
    pairs = match_intervals(det, lab)
    out.update(usv_detected=len(det), usv_matched=len(pairs), precision=sc.precision,
               recall=sc.recall, onset_error_ms=1e3 * sc.median_abs_onset_error_s)  # fmt: skip
    ids = list(summ["usv_id"])
    assigned = _one(folder, f"{sid}_usv_summary_assigned.csv")
    if assigned is not None and pairs:
        em = pd.read_csv(assigned, dtype={"usv_id": str}).set_index("usv_id")["emitter"]
        got = [em.get(ids[i]) for i, _ in pairs]
        right = sum(
            isinstance(g, str) and g == calls[j]["emitter"] for g, (_, j) in zip(got, pairs)
        )
        out["emitter_correct_pct"] = 100.0 * right / len(pairs)
    types = _one(folder, f"{sid}_usv_summary_call_types.csv")
    if types is not None and pairs:
        ct = pd.read_csv(types, dtype={"usv_id": str}).set_index("usv_id")["call_type"]
        right = sum(ct.get(ids[i]) == calls[j]["type"] for i, j in pairs)
        out["call_type_accuracy_pct"] = 100.0 * right / len(pairs)
    return out


def _pose_part(folder: Path, truth: dict) -> dict:
    date_joint = truth.get("video", {}).get("date_joint")
    pose = truth.get("pose") or {}
    true_file = pose.get("truth_file")
    if not date_joint or not true_file or not Path(true_file).is_file():
        return {}
    metric = _one(folder, f"{date_joint}_points3d_translated_rotated_metric.h5")
    if metric is None:
        return {}
    import h5py

    with h5py.File(metric, "r") as h:
        tracks = h["tracks"][()]
        names = [v.decode() for v in h["track_names"][()]] if "track_names" in h else None
    z = np.load(true_file)
    true3d, true_names = z["points3d"], [str(s) for s in z["track_names"]]
    if names and set(names) <= set(true_names):
        true3d = true3d[:, [true_names.index(n) for n in names]]
    n = min(len(tracks), len(true3d))
    err = np.linalg.norm(tracks[:n] - true3d[:n], axis=-1)
    fin = np.isfinite(err)
    if not fin.any():
        return {"pose_error_mm": math.nan, "pose_points_pct": 0.0}
    return {
        "pose_error_mm": 1e3 * float(np.median(err[fin])),
        "pose_points_pct": 100.0 * float(fin.mean()),
    }


def _verdict(path: Path) -> str:
    """``verdict`` of an A/V JSON; ``pass``/``fail`` from ``passed`` of an E/V JSON."""
    d = json.loads(path.read_text())
    if "verdict" in d:
        return str(d["verdict"])
    return "?" if "passed" not in d else ("pass" if d["passed"] else "fail")


def _sync_part(folder: Path, sid: str) -> dict:
    out = {}
    av = _one(folder, f"{sid}_av_sync.json")
    if av is not None:
        out["av_sync"] = _verdict(av)
    ev = sorted(folder.rglob("*_ev_sync.json"))
    if ev:
        out["ev_sync"] = ", ".join(_verdict(p) for p in ev)
    return out


def _units_part(folder: Path, truth: dict) -> dict:
    eph = truth.get("ephys") or {}
    if "units" not in eph:
        return {}
    out = {"units_simulated": len(eph["units"])}
    manifests = sorted(folder.rglob("*_cluster_data_manifest.json"))
    if manifests:
        out["units_kept"] = sum(len(json.loads(p.read_text()).get("files", [])) for p in manifests)
    return out


def compare_truth(cohort_dir: str | os.PathLike) -> list[dict]:
    """One dict per simulated experiment session of ``cohort_dir`` (see the module docstring); keys
    missing where the product is missing."""
    cohort = Path(cohort_dir)
    rows = []
    for sid, folder in _sessions(cohort):
        truth = json.loads((cohort / "truth" / sid / "ground_truth.json").read_text())
        row = {"session": sid}
        row.update(_usv_part(folder, sid, truth))
        row.update(_pose_part(folder, truth))
        row.update(_sync_part(folder, sid))
        row.update(_units_part(folder, truth))
        rows.append(row)
    if not rows:
        raise InputError(cohort, "no experiment session with a truth/<session>/ground_truth.json")
    return rows


def _f(v, fmt: str) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


def format_comparison(rows: list[dict]) -> str:
    """The comparison as a few lines per session (what ``usvflow compare-truth`` prints)."""
    lines = ["Results versus the simulation's truth (USVs match when their intervals overlap):"]
    for r in rows:
        g = r.get
        lines += [
            f"  {r['session']}",
            f"    USVs: {_f(g('usv_detected'), 'd')} detected, {g('usv_true')} simulated, "
            f"{_f(g('usv_matched'), 'd')} matched: precision {_f(g('precision'), '.2f')}, "
            f"recall {_f(g('recall'), '.2f')}, median |onset error| {_f(g('onset_error_ms'), '.1f')} ms",
            f"    emitter correct: {_f(g('emitter_correct_pct'), '.0f')}% of matched calls; "
            f"call type correct: {_f(g('call_type_accuracy_pct'), '.0f')}%",
            f"    3D pose: median error {_f(g('pose_error_mm'), '.1f')} mm "
            f"({_f(g('pose_points_pct'), '.0f')}% of true points posed)",
            f"    sync: A/V {g('av_sync', '-')}, E/V {g('ev_sync', '-')}; units kept "
            f"{_f(g('units_kept'), 'd')} of {_f(g('units_simulated'), 'd')} simulated",
        ]
    return "\n".join(lines)
