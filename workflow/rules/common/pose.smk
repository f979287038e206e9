# Input functions, constants and targets of pose.smk (rules in workflow/rules/pose.smk).
import os as _os

POSE = config["pose"]


def pose_dir(sid):
    return f"{product_root(sid)}/video/{LAYOUTS[sid].date_joint}"


def pose_serials(sid):
    lay = LAYOUTS[sid]
    cams = lay.calibration_cameras if lay.kind == "calibration" else lay.cameras
    return [s for s in config["video"]["camera_serials"] if s in cams]


def slp_name(sid, serial, predictions):
    dj = LAYOUTS[sid].date_joint
    ext = "predictions.slp" if predictions else "slp"
    return f"{pose_dir(sid)}/{serial}/{serial}-{dj}.{ext}"


def uses_predictions(sid):
    return LAYOUTS[sid].kind != "calibration" and POSE["use_unproofread"]


def calibration_session_of(sid):
    if LAYOUTS[sid].kind == "calibration":
        return sid
    cal = str(SESSIONS.loc[sid].get("calibration_session", "") or "")
    return cal if cal in LAYOUTS and LAYOUTS[cal].calibration_cameras else None


def pose_waiting(sid):
    """Why a session's 2D poses are not ready (None when they are)."""
    serials = pose_serials(sid)
    if not serials:
        return "no cameras"
    pred = uses_predictions(sid)
    if pred and POSE["sleap"]["run"]:
        return None
    missing = [s for s in serials if not _os.path.exists(slp_name(sid, s, pred))]
    if not missing:
        return None
    if LAYOUTS[sid].kind == "calibration":
        what = "arena labelling"
    else:
        what = "SLEAP predictions" if pred else "proofreading"
    return (
        f"awaiting {what}: {len(missing)} file(s) missing, e.g. {slp_name(sid, missing[0], pred)}"
    )


# ---------------------------------------------------------------- input functions
def pose_session(wildcards):
    return SID_BY_ROOT[wildcards.sroot]


def slp_input(wildcards):
    sid = pose_session(wildcards)
    return slp_name(sid, wildcards.serial, uses_predictions(sid))


def slp_frame_count(wildcards):
    """The camera frame-count JSON of an experiment session (the analysis file is padded to it)."""
    sid = pose_session(wildcards)
    if LAYOUTS[sid].kind == "calibration" or not LAYOUTS[sid].cameras:
        return []
    return frame_count_json(wildcards)


def calibration_videos(wildcards):
    sid = pose_session(wildcards)
    dj = LAYOUTS[sid].date_joint
    return [
        f"{wildcards.sroot}/video/{dj}/{s}/calibration_images/{s}-{dj}-calibration.mp4"
        for s in pose_serials(sid)
    ]


def calibration_toml_of(sid):
    cal = calibration_session_of(sid)
    if cal is None:
        raise WorkflowError(
            f"usvflow: session {sid} has no calibration session with calibration footage"
        )
    dj = LAYOUTS[cal].date_joint
    return f"{pose_dir(cal)}/{dj}_calibration.toml"


def triangulation_inputs(wildcards):
    sid = pose_session(wildcards)
    dj = LAYOUTS[sid].date_joint
    out = {
        "h5": [f"{pose_dir(sid)}/{s}/{s}-{dj}.analysis.h5" for s in pose_serials(sid)],
        "calibration": calibration_toml_of(sid),
    }
    if LAYOUTS[sid].kind != "calibration":
        out["counts"] = frame_count_json(wildcards)
    return out


def arena_points3d_of(sid):
    cal = calibration_session_of(sid)
    return f"{pose_dir(cal)}/{LAYOUTS[cal].date_joint}_points3d.h5"


def recoordinate_inputs(wildcards):
    sid = pose_session(wildcards)
    out = {
        "points": f"{pose_dir(sid)}/{LAYOUTS[sid].date_joint}_points3d.h5",
        "arena": arena_points3d_of(sid),
    }
    if LAYOUTS[sid].kind != "calibration":
        out["counts"] = frame_count_json(wildcards)
        if LAYOUTS[sid].metadata_yaml:
            out["metadata"] = raw(wildcards, LAYOUTS[sid].metadata_yaml)
    return out


def pose_session_params(wildcards):
    sid = pose_session(wildcards)
    return {
        "kind": LAYOUTS[sid].kind,
        "experimental_code": str(SESSIONS.loc[sid].get("experimental_code", "") or ""),
    }


def sleap_model_files(kind):
    """A SLEAP model folder's weights and config (declared so that a new model re-runs inference)."""
    d = POSE["sleap"][kind]
    if not d:
        raise WorkflowError(f"usvflow: pose.sleap.run is true but pose.sleap.{kind} is empty")
    d = Path(d).expanduser().resolve()
    found = [
        str(d / f)
        for f in ("best.ckpt", "training_config.yaml", "best_model.h5", "training_config.json")
        if (d / f).exists()
    ]
    return found or [str(d / "training_config.yaml")]


def sleap_model_dir(kind):
    return str(Path(POSE["sleap"][kind]).expanduser().resolve())


def maybe_temp_points3d(path):
    return temp(path) if POSE["delete_original_h5"] else path


# ---------------------------------------------------------------- targets
def pose_targets(sid):
    lay = LAYOUTS[sid]
    if not pose_serials(sid):
        return []
    d, dj = pose_dir(sid), lay.date_joint
    out = []
    if lay.kind == "calibration":
        out += [f"{d}/{dj}_calibration.toml", f"{d}/{dj}_reprojection_histogram.svg"]
    elif POSE["sleap"]["run"]:
        out += [slp_name(sid, s, True) for s in pose_serials(sid)]
    cal = calibration_session_of(sid)
    waiting = pose_waiting(sid) or (pose_waiting(cal) if cal and cal != sid else None)
    if cal is None:
        waiting = "no calibration session with calibration footage"
    if waiting:
        POSE_WAITING[sid] = waiting
        return out
    out.append(f"{d}/{dj}_points3d_translated_rotated_metric.h5")
    out.append(f"{d}/{dj}_pose_qc.json")
    if not POSE["delete_original_h5"]:
        out.append(f"{d}/{dj}_points3d.h5")
    return out


POSE_WAITING = {}


STAGE_TARGETS["pose"] = pose_targets


if "pose" in config["stages"]:
    for _sid in LAYOUTS:
        pose_targets(_sid)
    if POSE_WAITING:
        print(
            f"usvflow: pose: {len(POSE_WAITING)} session(s) waiting (their 3D poses are not requested):",
            file=sys.stderr,
        )
        for _sid, _why in POSE_WAITING.items():
            print(f"  {_sid}: {_why}", file=sys.stderr)
