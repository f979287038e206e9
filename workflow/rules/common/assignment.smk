# Input functions, constants and targets of assignment.smk (rules in workflow/rules/assignment.smk).
import glob as _glob

ASSIGN = config["assignment"]


VCL = ASSIGN["vocalocator"]


def assignment_ready(sid):
    """Sessions whose summary and poses (session + its calibration arena) can be made."""
    if not usv_targets(sid) or LAYOUTS[sid].kind == "calibration":
        return False
    cal = calibration_session_of(sid)
    return cal is not None and not pose_waiting(sid) and not pose_waiting(cal)


def assignment_inputs(wildcards):
    sid = SID_BY_ROOT[wildcards.sroot]
    cal = calibration_session_of(sid)
    return {
        "summary": usv_summary_path(sid),
        "mmap": memmap_path(sid),
        "sidecar": memmap_path(sid, "json"),
        "tracks": f"{pose_dir(sid)}/{LAYOUTS[sid].date_joint}_points3d_translated_rotated_metric.h5",
        "arena": f"{pose_dir(cal)}/{LAYOUTS[cal].date_joint}_points3d_translated_rotated_metric.h5",
        "frame_counts": frame_count_json(wildcards),
    }


def vocalocator_model_files():
    """The model files declared as inputs (a new model re-runs the assignment)."""
    d = Path(VCL["model_directory"]).expanduser()
    if ASSIGN["method"] == "vocalocator":
        return [str(d / "config.json")]
    cal = sorted(_glob.glob(str(d / "*cal*.npz")))
    return cal[:1] or [str(d / "calibration_results.npz")]


def assignment_targets(sid):
    if not assignment_ready(sid):
        return []
    root, name = product_root(sid), session_name(sid)
    out = [f"{root}/audio/{name}_usv_summary_assigned.csv"]
    if ASSIGN["method"] == "builtin":
        out += [
            f"{root}/audio/sound_localization/{name}_source_estimates.csv",
            f"{root}/audio/sound_localization/{name}_sound_sources.svg",
        ]
    return out


STAGE_TARGETS["assignment"] = assignment_targets
