"""A session at a glance: the numbers of the cohort overview table and the overview figures.

Everything here is read from the workflow's products (never recomputed from raw data):

* USVs: the curated summary ``audio/<session>_usv_summary.csv``, with ``emitter`` from
  ``..._usv_summary_assigned.csv`` and ``call_type`` from ``..._usv_summary_call_types.csv`` when those
  stages ran (matched by ``usv_id``); an empty or missing emitter is ``unassigned``;
* the tracking window: ``[0, total_video_time_least]`` s of the camera frame-count JSON (the USV times
  are seconds from the first video frame, as the cropped audio);
* A/V: ``sync/<session>_av_sync.json``; E/V: ``ephys/<probe>/<session>_<probe>_ev_sync.json``;
* units: ``ephys/<probe>/<session>_<probe>_quality_metrics.csv`` (Kilosort/Phy ``label`` good/mua,
  ``quality_label``, ``num_spikes``);
* pose: ``video/<date_joint>/<date_joint>_pose_qc.json`` (rule triangulate).

:func:`session_row` gives one row of the cohort table (one row per session,
:func:`write_cohort_table`); the ``plot_*`` functions write the figures, atomically.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..io.atomic import InputError, atomic_path, read_json

UNASSIGNED = "unassigned"


# --------------------------------------------------------------------------------------------- inputs


def load_usvs(summary, assigned=None, call_types=None) -> pd.DataFrame:
    """The session's USVs: the summary's rows with ``emitter`` (``unassigned`` where none) and
    ``call_type`` (None without the call-type table)."""
    from ..usv.curate import read_summary

    df = read_summary(summary).copy()
    df["emitter"] = None
    if assigned:
        a = read_summary(assigned).set_index("usv_id")
        df["emitter"] = df["usv_id"].map(a["emitter"])
    df["emitter"] = [e if isinstance(e, str) and e else UNASSIGNED for e in df["emitter"]]
    df["call_type"] = None
    if call_types:
        c = read_summary(call_types).set_index("usv_id")
        if "call_type" not in c.columns:
            raise InputError(call_types, "has no column 'call_type'")
        df["call_type"] = df["usv_id"].map(c["call_type"])
    for col in ("start", "stop", "duration"):
        df[col] = pd.to_numeric(df[col])
    return df


def tracking_window(frame_counts) -> tuple[float, float]:
    """[0, total_video_time_least] s of the camera frame-count JSON."""
    d = read_json(frame_counts)
    if "total_video_time_least" not in d:
        raise InputError(frame_counts, "has no 'total_video_time_least'")
    return 0.0, float(d["total_video_time_least"])


def read_units(quality_csv) -> pd.DataFrame:
    from ..ephys.quality import read_quality_table

    return read_quality_table(quality_csv)


def probe_of(path) -> str:
    """The probe (``imec<N>``) of an ``ephys/<probe>/...`` product."""
    return Path(path).parent.name


# --------------------------------------------------------------------------------------------- the row


def session_row(session: str, usvs: pd.DataFrame | None = None, window: tuple[float, float] | None = None,
                av: dict | None = None, evs: dict | None = None, units: dict | None = None,
                pose: dict | None = None) -> dict:  # fmt: skip
    """One row of the cohort overview (keys in column order; absent products give empty cells).

    ``evs``/``units``: ``{probe: E/V JSON}`` / ``{probe: quality table}``.
    """
    row = {"session": session}
    dur = (window[1] - window[0]) if window else None
    row["duration_s"] = round(dur, 3) if dur is not None else None
    if usvs is not None:
        n = len(usvs)
        row["usvs"] = n
        row["calls_per_min"] = round(n / dur * 60.0, 2) if dur else None
        assigned = int((usvs["emitter"] != UNASSIGNED).sum())
        row["assigned_pct"] = round(100.0 * assigned / n, 1) if n else None
        for e, k in sorted(usvs["emitter"].value_counts().items()):
            row[f"emitter_{e}"] = int(k)
        if usvs["call_type"].notna().any():
            for t, k in sorted(usvs["call_type"].value_counts().items()):
                row[f"type_{t}"] = int(k)
    if av is not None:
        row["av_sync"] = av.get("verdict", "pass" if av.get("passed") else "fail")
    if evs:
        for p, ev in sorted(evs.items()):
            row[f"ev_sync_{p}"] = "pass" if ev.get("passed") else "fail"
            if ev.get("duration_difference_ms") is not None:
                row[f"ev_diff_ms_{p}"] = round(float(ev["duration_difference_ms"]), 3)
    if pose is not None:
        row["pose_verdict"] = pose.get("verdict")
        for t, a in sorted(pose.get("animals", {}).items()):
            row[f"pose_coverage_{t}"] = round(float(a["pose_fraction"]), 4)
        errs = [c["median_reprojection_error_px"] for c in pose.get("cameras", {}).values()
                if c.get("median_reprojection_error_px") is not None]  # fmt: skip
        row["pose_max_reprojection_px"] = round(max(errs), 2) if errs else None
        row["pose_flagged_cameras"] = ";".join(pose.get("flagged_views", []))
    if units:
        for p, tab in sorted(units.items()):
            kept = tab[tab["label"].isin(["good", "mua"])]
            row[f"units_good_{p}"] = int((kept["label"] == "good").sum())
            row[f"units_mua_{p}"] = int((kept["label"] == "mua").sum())
            row[f"units_quality_good_{p}"] = int((kept["quality_label"] == "good").sum())
    return row


#: column families kept side by side in the cohort table (a family's columns in name order)
FAMILIES = ("emitter_", "type_", "pose_coverage_")


def cohort_columns(columns) -> list[str]:
    """The table's columns in first-seen order, each family of :data:`FAMILIES` together at its first
    member's place (``emitter_unassigned`` after the animals), so that a column only some sessions
    have does not end up after all the others."""
    columns = list(dict.fromkeys(columns))
    out: list[str] = []
    for c in columns:
        fam = next((f for f in FAMILIES if c.startswith(f)), None)
        if fam is None:
            out.append(c)
        elif c not in out:
            members = [x for x in columns if x.startswith(fam)]
            out += sorted(members, key=lambda x: (x == f"emitter_{UNASSIGNED}", x))
    return out


def write_cohort_table(rows: list[dict], out) -> pd.DataFrame:
    """The cohort overview CSV (one row per session, sorted by session; union of the columns, count
    columns 0 where a session has none of that kind; families of columns together, see
    :func:`cohort_columns`)."""
    df = pd.DataFrame(rows)
    if len(df):
        df = df[cohort_columns(df.columns)]
        df = df.sort_values("session").reset_index(drop=True)
        for c in df.columns:
            if c.startswith(("emitter_", "type_")):
                df[c] = df[c].fillna(0).astype(int)
    with atomic_path(out) as tmp:
        df.to_csv(tmp, index=False)
    return df


# --------------------------------------------------------------------------------------------- figures


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out) -> Path:
    plt = _plt()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fmt = out.suffix.lstrip(".") or "svg"
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format=fmt, dpi=110)
    plt.close(fig)
    return out


def type_colors(types) -> dict:
    plt = _plt()
    cmap = plt.get_cmap("tab10")
    return {t: cmap(i % 10) for i, t in enumerate(sorted(types))}


def plot_timeline(
    usvs: pd.DataFrame, window: tuple[float, float] | None, out, title: str = ""
) -> Path:
    """Each USV as a bar from start to stop, one row per emitter (and ``unassigned``), coloured by
    call type; the tracking window shaded; calls per 10-s bin below (1-s bins up to 2 min)."""
    plt = _plt()
    emitters = sorted(e for e in usvs["emitter"].unique() if e != UNASSIGNED) + [UNASSIGNED]
    types = sorted(t for t in usvs["call_type"].dropna().unique())
    colors = type_colors(types)
    fig, (ax, axh) = plt.subplots(2, 1, figsize=(11, 2.2 + 0.45 * len(emitters)), sharex=True,
                                  gridspec_kw={"height_ratios": [max(2, len(emitters)), 1.4]}, layout="constrained")  # fmt: skip
    end = max(float(usvs["stop"].max()) if len(usvs) else 0.0, window[1] if window else 0.0, 1e-3)
    if window:
        for a in (ax, axh):
            a.axvspan(window[0], window[1], color="0.93", zorder=0)
        ax.plot([], [], color="0.85", lw=8, label=f"tracking window {window[1] - window[0]:.1f} s")
    for i, e in enumerate(emitters):
        sel = usvs[usvs["emitter"] == e]
        for t, grp in sel.groupby(sel["call_type"].fillna("USV"), dropna=False):
            c = colors.get(t, "tab:blue")
            ax.broken_barh(list(zip(grp["start"], np.maximum(grp["duration"], end / 2000))), (i - 0.35, 0.7),
                           color=c)  # fmt: skip
    for t in types:
        ax.plot([], [], color=colors[t], lw=6, label=t)
    counts = usvs["emitter"].value_counts()
    ax.set_yticks(range(len(emitters)), [f"{e} ({int(counts.get(e, 0))})" for e in emitters])
    ax.set_ylim(-0.6, len(emitters) - 0.4)
    ax.set_title(title or f"{len(usvs)} USVs")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    step = 10.0 if end > 120 else 1.0
    bins = np.arange(0.0, end + step, step)
    axh.hist(usvs["start"], bins=bins, color="0.35")
    axh.set_ylabel(f"USVs / {step:g} s")
    axh.set_xlabel("time from the first video frame (s)")
    axh.set_xlim(0, end)
    return _save(fig, out)


def gallery_examples(usvs: pd.DataFrame, per_type: int = 4) -> dict:
    """``{call type: [row indices]}``: the ``per_type`` highest-SNR calls of each type (the earlier
    call first among equal SNR); all calls are one ``USV`` type without call types."""
    types = usvs["call_type"].fillna("USV")
    snr = (
        pd.to_numeric(usvs["snr_db"], errors="coerce")
        if "snr_db" in usvs
        else pd.Series(0.0, index=usvs.index)
    )
    out = {}
    for t in sorted(types.unique()):
        idx = np.flatnonzero((types == t).to_numpy())
        order = np.argsort(-snr.to_numpy()[idx].astype(float), kind="stable")
        out[t] = [int(i) for i in idx[order][:per_type]]
    return out


def plot_gallery(usvs: pd.DataFrame, spectrograms: dict, out, per_type: int = 4,
                 title: str = "") -> Path:  # fmt: skip
    """A grid of spectrograms (``spectrograms``: :func:`usvflow.usv.spectrogram.load_spectrograms`
    of the session, computed from the memmap): one row per call type, its best calls."""
    plt = _plt()
    pos = {str(u): i for i, u in enumerate(spectrograms["usv_id"])}
    ex = gallery_examples(usvs, per_type)
    rows = [t for t in ex if ex[t]] or ["USV"]
    fig, axes = plt.subplots(len(rows), per_type, figsize=(2.0 * per_type + 0.8, 1.9 * len(rows) + 0.5),
                             squeeze=False, layout="constrained")  # fmt: skip
    f = (
        np.asarray(
            spectrograms.get("frequencies_hz", np.arange(spectrograms["spectrograms"].shape[1]))
        )
        / 1000
    )
    t_ms = (
        np.asarray(spectrograms.get("times_s", np.arange(spectrograms["spectrograms"].shape[2])))
        * 1000
    )
    counts = usvs["call_type"].fillna("USV").value_counts()
    for r, t in enumerate(rows):
        for c in range(per_type):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            idxs = ex.get(t, [])
            if c >= len(idxs):
                ax.axis("off")
                continue
            row = usvs.iloc[idxs[c]]
            s = spectrograms["spectrograms"][pos[str(row["usv_id"])]]
            ax.imshow(
                s,
                origin="lower",
                aspect="auto",
                cmap="magma",
                extent=(t_ms[0], t_ms[-1], f[0], f[-1]),
            )
            ax.set_title(f"{row['usv_id']} {row['start']:.2f} s\n{row['emitter']}", fontsize=7)
            if c == 0:
                ax.set_ylabel(f"{t} (n={int(counts.get(t, 0))})\nkHz", fontsize=8)
                ax.set_yticks([f[0], f[-1]], [f"{f[0]:.0f}", f"{f[-1]:.0f}"], fontsize=7)
        axes[-1, 0].set_xticks(
            [t_ms[0], t_ms[-1]], [f"{t_ms[0]:.0f}", f"{t_ms[-1]:.0f} ms"], fontsize=7
        )
    fig.suptitle(title or "example calls per type (highest SNR)", fontsize=9)
    return _save(fig, out)


def plot_pose_qc(qc: dict, out, title: str = "") -> Path:
    """Per camera the median reprojection error (px; a flagged camera red, an excluded one hatched)
    and the fraction of missing 2D points; per animal the fraction of frames with a 3D pose."""
    plt = _plt()
    scr = (qc.get("screening") or [{}])[0].get("error_px", {})
    cams = list(scr) or list(qc.get("cameras", {}))
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2), layout="constrained",
                             gridspec_kw={"width_ratios": [len(cams) + 1, len(cams) + 1, 3]})  # fmt: skip
    final = {c: qc.get("cameras", {}).get(c, {}).get("median_reprojection_error_px") for c in cams}
    vals = [final[c] if final[c] is not None else scr.get(c, np.nan) for c in cams]
    flagged = set(qc.get("flagged_views", []))
    excluded = set(qc.get("auto_excluded_views") or []) | set(qc.get("excluded_views") or [])
    bars = axes[0].bar(range(len(cams)), [v if v is not None else np.nan for v in vals],
                       color=["tab:red" if c in flagged else "tab:blue" for c in cams])  # fmt: skip
    for b, c in zip(bars, cams):
        if c in excluded:
            b.set_hatch("//")
            b.set_alpha(0.6)
    axes[0].set_xticks(range(len(cams)), cams, rotation=30, fontsize=7)
    axes[0].set_ylabel("median reprojection error (px)")
    axes[0].set_title(f"verdict: {qc.get('verdict', '?')}", fontsize=9,
                      color="tab:red" if qc.get("verdict") not in (None, "ok") else "black")  # fmt: skip
    miss = [qc.get("cameras", {}).get(c, {}).get("missing_fraction", np.nan) for c in cams]
    axes[1].bar(
        range(len(cams)), [100 * (m if m is not None else np.nan) for m in miss], color="tab:gray"
    )
    axes[1].set_xticks(range(len(cams)), cams, rotation=30, fontsize=7)
    axes[1].set_ylabel("missing 2D points (%)")
    animals = qc.get("animals", {})
    axes[2].bar(
        range(len(animals)), [100 * a["pose_fraction"] for a in animals.values()], color="tab:green"
    )
    axes[2].set_xticks(range(len(animals)), list(animals), fontsize=8)
    axes[2].set_ylim(0, 100)
    axes[2].set_ylabel("frames with a 3D pose (%)")
    fig.suptitle(title or qc.get("message", ""), fontsize=9)
    return _save(fig, out)


def plot_sync_units(av: dict | None, evs: dict, units: dict, out, title: str = "") -> Path:
    """The A/V verdict per device (largest IPI discrepancy), the E/V verdict per probe (duration
    difference against the tolerance), and per probe the units kept (good/mua) with spike counts."""
    plt = _plt()
    n_probe = max(1, len(units))
    fig, axes = plt.subplots(
        1, 2 + n_probe, figsize=(4.0 * (2 + n_probe), 3.2), layout="constrained", squeeze=False
    )
    axes = axes[0]
    ax = axes[0]
    if av is not None:
        devs = av.get("devices") or {}
        names = list(devs)
        vals = [
            _first_number(devs[d], ("max_abs_discrepancy_ms", "max_discrepancy_ms", "max_abs_ms"))
            for d in names
        ]
        ax.bar(range(len(names)), [v if v is not None else 0 for v in vals],
               color=["tab:green" if devs[d].get("passed") else "tab:red" for d in names])  # fmt: skip
        ax.set_xticks(range(len(names)), names)
        ax.set_ylabel("largest |IPI discrepancy| (ms)")
        ax.set_title(
            f"A/V sync: {av.get('verdict', 'pass' if av.get('passed') else 'fail')}", fontsize=9
        )
    else:
        ax.set_title("A/V sync: not run", fontsize=9)
        ax.axis("off")
    ax = axes[1]
    if evs:
        probes = sorted(evs)
        diffs = [abs(float(evs[p].get("duration_difference_ms") or np.nan)) for p in probes]
        tol = [float(evs[p].get("tolerance_ms") or np.nan) for p in probes]
        ax.bar(
            range(len(probes)),
            diffs,
            color=["tab:green" if evs[p].get("passed") else "tab:red" for p in probes],
        )
        ax.scatter(range(len(probes)), tol, marker="_", s=600, color="k", label="tolerance")
        ax.set_xticks(range(len(probes)), probes)
        ax.set_ylabel("|e-phys − video duration| (ms)")
        ax.legend(fontsize=7, frameon=False)
        ax.set_title("E/V sync: " + ", ".join(f"{p} {'pass' if evs[p].get('passed') else 'fail'}" for p in probes),
                     fontsize=9)  # fmt: skip
    else:
        ax.set_title("E/V sync: not run", fontsize=9)
        ax.axis("off")
    for k, p in enumerate(sorted(units) or [None]):
        ax = axes[2 + k]
        if p is None:
            ax.set_title("units: not run", fontsize=9)
            ax.axis("off")
            continue
        tab = units[p]
        kept = tab[tab["label"].isin(["good", "mua"])]
        for lab, col in (("good", "tab:green"), ("mua", "tab:orange")):
            sel = kept[kept["label"] == lab]
            ax.bar(
                [str(i) for i in sel.index],
                sel["num_spikes"],
                color=col,
                label=f"{lab} ({len(sel)})",
            )
        ax.set_yscale("log")
        ax.tick_params(axis="x", labelsize=6, rotation=90)
        ax.set_xlabel("cluster")
        ax.set_ylabel("spikes")
        ax.legend(fontsize=7, frameon=False)
        ax.set_title(f"{p}: {len(kept)} units kept", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=9)
    return _save(fig, out)


def _first_number(d: dict, keys) -> float | None:
    for k in keys:
        v = d.get(k)
        if isinstance(v, (int, float)) and np.isfinite(v):
            return float(v)
    stats = d.get("stats") or d.get("discrepancy") or {}
    if isinstance(stats, dict):
        for k in keys:
            v = stats.get(k)
            if isinstance(v, (int, float)) and np.isfinite(v):
                return float(v)
    return None


def read_optional_json(path) -> dict | None:
    return read_json(path) if path and os.path.exists(path) else None
