# Config validation, session discovery and input functions shared by all rule files.
import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from usvflow.io.atomic import InputError
from usvflow.io.config import read_sessions, validate_config
from usvflow.io.session import discover

SCHEMAS = Path(workflow.basedir) / "workflow" / "schemas"

try:
    config.update(validate_config(config, SCHEMAS / "config.schema.yaml"))
    SESSIONS = read_sessions(config["sessions"], SCHEMAS / "sessions.schema.yaml")
except InputError as exc:
    raise WorkflowError(f"usvflow: invalid configuration: {exc}") from None


def _discover_all():
    layouts = {}
    for sid, row in SESSIONS.iterrows():
        try:
            layouts[sid] = discover(
                sid,
                row["folder"],
                row["kind"],
                devices=config["audio"]["devices"],
                channels_per_device=config["audio"]["channels_per_device"],
                sample_rate=config["audio"]["sample_rate"],
                camera_serials=config["video"]["camera_serials"],
                video_extension=config["video"]["extension"],
                npx_file_type=config["sync"]["ev"]["npx_file_type"],
            )
        except InputError as exc:
            raise WorkflowError(f"usvflow: malformed session {sid}: {exc}") from None
    return layouts


LAYOUTS = _discover_all()


def product_root(sid):
    """Folder that receives a session's products (the session folder, or its mirror under output_root)."""
    if config["output_root"]:
        return str(Path(config["output_root"]).resolve() / sid)
    return LAYOUTS[sid].folder


SID_BY_ROOT = {product_root(sid): sid for sid in LAYOUTS}


wildcard_constraints:
    sroot="|".join(re.escape(r) for r in SID_BY_ROOT) or "(?!)",
    serial=r"\d+",
    date_joint=r"\d{14}",


def layout(wildcards):
    return LAYOUTS[SID_BY_ROOT[wildcards.sroot]]


def raw(wildcards, *parts):
    """Path of a raw input inside the session folder (always the session folder, never output_root)."""
    return str(Path(layout(wildcards).folder, *parts))


def maybe_temp(path):
    return path if config["video"]["keep_concatenated"] else temp(path)


# ---------------------------------------------------------------- video inputs
def camera_chunks(wildcards):
    cam = layout(wildcards).cameras[wildcards.serial]
    return [raw(wildcards, "video", cam.folder, c) for c in cam.chunks]


def calibration_chunks(wildcards):
    cam = layout(wildcards).calibration_cameras[wildcards.serial]
    return [raw(wildcards, "video", cam.folder, c) for c in cam.chunks]


def calibration_frame_metadata(wildcards):
    cam = layout(wildcards).calibration_cameras[wildcards.serial]
    return [raw(wildcards, "video", cam.folder, c.rsplit(".", 1)[0] + ".npz") for c in cam.chunks]


def camera_frame_metadata(wildcards):
    lay = layout(wildcards)
    out = []
    for cam in lay.cameras.values():
        out.append(raw(wildcards, "video", cam.folder, "metadata.yaml"))
        out += [
            raw(wildcards, "video", cam.folder, c.rsplit(".", 1)[0] + ".npz") for c in cam.chunks
        ]
    return out


def camera_folders(wildcards):
    lay = layout(wildcards)
    return [raw(wildcards, "video", cam.folder) for cam in lay.cameras.values()]


def frame_count_json(wildcards):
    lay = layout(wildcards)
    return f"{wildcards.sroot}/video/{lay.date_joint}_camera_frame_count_dict.json"


# ---------------------------------------------------------------- targets
def video_targets(sid):
    lay, root = LAYOUTS[sid], product_root(sid)
    dj = lay.date_joint
    out = []
    if lay.cameras:
        out.append(f"{root}/video/{dj}_camera_frame_count_dict.json")
        out += [f"{root}/video/{dj}/{s}/{s}-{dj}.mp4" for s in lay.cameras]
    out += [
        f"{root}/video/{dj}/{s}/calibration_images/{s}-{dj}-calibration.mp4"
        for s in lay.calibration_cameras
    ]
    return out


STAGE_TARGETS = {"video": video_targets}


def all_targets():
    out = []
    for sid in LAYOUTS:
        for stage in config["stages"]:
            if stage in STAGE_TARGETS:
                out += STAGE_TARGETS[stage](sid)
    return out
