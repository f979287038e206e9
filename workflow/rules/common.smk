# Config validation, session discovery and input functions shared by all rule files.
import os
import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

# The workflow runs the usvflow of its own repository: imported here, and by the rules' scripts through
# PYTHONPATH (the conda envs of workflow/envs/ hold usvflow's dependencies, not usvflow itself; the
# profiles let PYTHONPATH through to them with conda-not-block-search-path-envvars).
SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SRC)
os.environ.update(PYTHONPATH=os.pathsep.join([SRC, *filter(None, [os.environ.get("PYTHONPATH")])]))

from usvflow.audio.disk import SessionAudio, check_audio_disk
from usvflow.io.atomic import InputError, read_json
from usvflow.io.config import read_sessions, resolve_config_paths, validate_config
from usvflow.io.session import discover

SCHEMAS = Path(workflow.basedir) / "workflow" / "schemas"
# The model-version guard the GPU rules run before inference (standard library and PyYAML only).
MODELCHECK = (
    f"PYTHONPATH='{Path(workflow.basedir) / 'src'}' '{sys.executable}' -m usvflow.modelcheck"
)

try:
    # relative paths of a --configfile are relative to that file (usvflow validate does the same)
    config.update(resolve_config_paths(config, workflow.config_settings.configfiles))
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
    dev=r"[a-z]",
    stamp=r"\d{12}",
    ch=r"\d{2}",
    name=r"[a-z]_\d{12}_ch\d{2}",
    session=r"[^/]+",


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


# ---------------------------------------------------------------- audio inputs
CHANNELS = [f"{c:02d}" for c in range(1, config["audio"]["channels_per_device"] + 1)]


def device_files(wildcards):
    lay = layout(wildcards)
    return [raw(wildcards, "audio", "original_mc", f) for f in lay.audio[wildcards.dev].files]


def channel_names(sid):
    """<dev>_<stamp>_chNN of every channel of a session, in memmap column order (m first, then s)."""
    lay = LAYOUTS[sid]
    return [f"{d}_{lay.audio_stamp}_ch{c}" for d in config["audio"]["devices"] for c in CHANNELS]


def trigger_channels(wildcards):
    lay = layout(wildcards)
    ch = f"{config['audio']['crop']['triggerbox_channel']:02d}"
    return [
        f"{wildcards.sroot}/audio/original/{d}_{lay.audio_stamp}_ch{ch}.wav"
        for d in config["audio"]["devices"]
    ]


def audio_temp(stage, paths):
    """temp() for an intermediate audio stage whose audio.disk.keep_<stage> is false."""
    return paths if config["audio"]["disk"][f"keep_{stage}"] else temp(paths)


def session_audio(sid):
    """The session's audio chain for the disk check: raw files and each stage's products."""
    lay, root = LAYOUTS[sid], product_root(sid)
    names = channel_names(sid)
    raw_files = [
        str(Path(lay.folder, "audio", "original_mc", f))
        for d in lay.audio
        for f in lay.audio[d].files
    ]
    products = {
        "split": [f"{root}/audio/original/{n}.wav" for n in names],
        "cropped": [f"{root}/audio/cropped_to_video/{n}_cropped_to_video.wav" for n in names],
        "hpss": [f"{root}/audio/hpss/{n}_cropped_to_video_hpss.wav" for n in names],
        "filtered": [
            f"{root}/audio/hpss_filtered/{n}_cropped_to_video_hpss_filtered.wav" for n in names
        ],
        "memmap": [memmap_path(sid)],
    }
    return SessionAudio(sid, root, raw_files, products)


def check_audio_disk_space():
    """Stop before any job runs when the pending audio chains do not fit their file systems."""
    disk = config["audio"]["disk"]
    if not disk["check_free_space"] or "audio" not in config["stages"]:
        return
    sessions = [session_audio(sid) for sid, lay in LAYOUTS.items() if lay.audio and lay.cameras]
    keep = {s: disk[f"keep_{s}"] for s in ("split", "cropped", "hpss")}
    try:
        plan = check_audio_disk(sessions, keep, reserve=int(disk["reserve_gb"] * 1e9))
    except InputError as exc:
        raise WorkflowError(f"usvflow: {exc}") from None
    for folder, n in plan.needed.items():
        if n:
            print(
                f"usvflow: the audio chain needs up to {n / 1e9:.1f} GB on {folder}"
                f" ({plan.free[folder] / 1e9:.1f} GB free)",
                file=sys.stderr,
            )


def filtered_channels(wildcards):
    sid = SID_BY_ROOT[wildcards.sroot]
    return [
        f"{wildcards.sroot}/audio/hpss_filtered/{n}_cropped_to_video_hpss_filtered.wav"
        for n in channel_names(sid)
    ]


def memmap_path(sid, ext="dat"):
    """The session's memmap (ext "dat") or its sidecar ("json") under the workflow's fixed names;
    the documented names with the shape are links to them (usvflow.audio.memmap)."""
    lay = LAYOUTS[sid]
    return f"{product_root(sid)}/audio/hpss_filtered/{lay.audio_stamp}_concatenated_audio_hpss_filtered.{ext}"


# ---------------------------------------------------------------- usv inputs
def das_model_base():
    das = config["usv_detection"]["das"]
    return str(Path(das["model_directory"]).expanduser().resolve() / das["model_name_base"])


def das_model_files():
    """The DAS model's files, declared as inputs so that a new model re-runs detection."""
    base = das_model_base()
    return [f"{base}_model.h5", f"{base}_params.yaml"]


def check_das_model():
    """Stage usv with DAS: the model's files must exist (checked at start-up, one message)."""
    missing = [f for f in das_model_files() if not Path(f).is_file()]
    if missing:
        raise WorkflowError(
            f"usvflow: usv_detection.method is das but the DAS model file {missing[0]} does not exist;"
            " set usv_detection.das.model_directory and model_name_base to a trained DAS model"
        )


if "usv" in config["stages"] and config["usv_detection"]["method"] == "das":
    check_das_model()


def das_model_prefix(wildcards, input):
    """The model stem `das predict` takes, derived from the declared model file."""
    return input.model[0][: -len("_model.h5")]


def das_csv_path(wildcards, input):
    """Where `das predict` writes its CSV: beside the WAV, <stem>_annotations.csv."""
    return str(Path(input.wav).with_suffix("")) + "_annotations.csv"


def session_name(sid):
    """The session folder's name: the <session> of audio/<session>_usv_summary.csv."""
    return Path(LAYOUTS[sid].folder).name


def annotation_csvs(wildcards):
    sid = SID_BY_ROOT[wildcards.sroot]
    return [
        f"{wildcards.sroot}/audio/das_annotations/{n}_cropped_to_video_hpss_filtered_annotations.csv"
        for n in channel_names(sid)
    ]


def session_memmap(wildcards):
    sid = SID_BY_ROOT[wildcards.sroot]
    return {"mmap": memmap_path(sid), "sidecar": memmap_path(sid, "json")}


def usv_summary_path(sid):
    return f"{product_root(sid)}/audio/{session_name(sid)}_usv_summary.csv"


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


def audio_targets(sid):
    lay = LAYOUTS[sid]
    if not (lay.audio and lay.cameras):
        return []
    return [memmap_path(sid), memmap_path(sid, "json")]


def usv_targets(sid):
    if not audio_targets(sid):
        return []
    root = product_root(sid)
    return [
        usv_summary_path(sid),
        f"{root}/audio/{session_name(sid)}_usv_signal_correlation_histogram.svg",
    ]


STAGE_TARGETS = {"video": video_targets, "audio": audio_targets, "usv": usv_targets}


def all_targets(wildcards):
    out = []
    for sid in LAYOUTS:
        for stage in config["stages"]:
            if stage in STAGE_TARGETS:
                out += STAGE_TARGETS[stage](sid)
    return out
