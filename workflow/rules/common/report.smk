# Input functions and targets of report.smk (overview figures, cohort table, session explorer).
REPORT_DIR = (
    "report"  # the cohort table and the report's own files, relative to the working directory
)


def report_labels(figure):
    """labels= of report(): the session (from the product's folder) and what the file shows."""

    def labels(wildcards):
        out = {"figure": figure}
        if "sroot" in wildcards.keys():
            out = {"session": SID_BY_ROOT[wildcards.sroot], **out}
        if "probe" in wildcards.keys():
            out["probe"] = wildcards.probe
        return out

    return labels


def _stage_products(sid, stage):
    if stage not in config["stages"] or stage not in STAGE_TARGETS:
        return []
    return STAGE_TARGETS[stage](sid)


def _pick(paths, suffix):
    return [p for p in paths if p.endswith(suffix)]


def overview_inputs(sid):
    """The products a session's overview reads ({name: path or [paths]}), those of the enabled
    stages that the session has."""
    lay, root = LAYOUTS[sid], product_root(sid)
    if lay.kind != "experiment":
        return {}
    out = {}
    counts = f"{root}/video/{lay.date_joint}_camera_frame_count_dict.json"
    if counts in _stage_products(sid, "video"):
        out["counts"] = counts
    usv = _stage_products(sid, "usv")
    if usv:
        out["summary"] = usv_summary_path(sid)
        out["counts"] = counts
    assigned = _pick(_stage_products(sid, "assignment"), "_usv_summary_assigned.csv")
    if assigned and usv:
        out["assigned"] = assigned[0]
    types = _pick(_stage_products(sid, "calltypes"), "_usv_summary_call_types.csv")
    if types and usv:
        out["call_types"] = types[0]
        out["spectrograms"] = f"{root}/audio/spectrograms/{session_name(sid)}_usv_spectrograms.npz"
    av = _pick(_stage_products(sid, "sync"), "_av_sync.json")
    if av:
        out["av"] = av[0]
    ephys = _stage_products(sid, "ephys")
    if _pick(ephys, "_ev_sync.json"):
        out["ev"] = _pick(ephys, "_ev_sync.json")
    if _pick(ephys, "_quality_metrics.csv"):
        out["units"] = _pick(ephys, "_quality_metrics.csv")
    pose = _pick(_stage_products(sid, "pose"), "_pose_qc.json")
    if pose:
        out["pose"] = pose[0]
    return out


def overview_session_inputs(wildcards):
    return overview_inputs(SID_BY_ROOT[wildcards.sroot])


def explorer_inputs(sid):
    """The explorer's products: the USVs (with emitters and types when those stages ran), the
    spectrograms, the source estimates, the metric poses, one camera's video and the arena."""
    base = overview_inputs(sid)
    if "summary" not in base:
        return {}
    keep = ("summary", "counts", "assigned", "call_types", "spectrograms")
    out = {k: v for k, v in base.items() if k in keep}
    est = _pick(_stage_products(sid, "assignment"), "_source_estimates.csv")
    if est:
        out["estimates"] = est[0]
    metric = _pick(_stage_products(sid, "pose"), "_points3d_translated_rotated_metric.h5")
    if metric:
        out["poses"] = metric[0]
        out["arena"] = (
            f"{pose_dir(calibration_session_of(sid))}/{LAYOUTS[calibration_session_of(sid)].date_joint}_points3d_translated_rotated_metric.h5"
        )
    videos = [
        p for p in _stage_products(sid, "video") if p.endswith(".mp4") and "calibration" not in p
    ]
    if videos:
        out["video"] = videos[0]
    return out


def explorer_session_inputs(wildcards):
    return explorer_inputs(SID_BY_ROOT[wildcards.sroot])


def overview_rows(wildcards=None):
    return [f"{product_root(s)}/report/{s}_overview.json" for s in LAYOUTS if overview_inputs(s)]


def report_targets(sid):
    inp = overview_inputs(sid)
    if not inp:
        return [f"{REPORT_DIR}/stage_plan.csv"]
    d = f"{product_root(sid)}/report/{sid}"
    out = [
        f"{REPORT_DIR}/stage_plan.csv",
        f"{d}_overview.json",
        f"{REPORT_DIR}/cohort_overview.csv",
    ]
    if "summary" in inp:
        out.append(f"{d}_usv_timeline.svg")
    if "spectrograms" in inp:
        out.append(f"{d}_call_gallery.png")
    if "pose" in inp:
        out.append(f"{d}_pose_overview.svg")
    if {"av", "ev", "units"} & set(inp):
        out.append(f"{d}_sync_units.svg")
    if explorer_inputs(sid):
        out.append(f"{d}_explorer.html")
    return out


STAGE_TARGETS["report"] = report_targets
