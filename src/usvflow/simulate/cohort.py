"""A simulated cohort: session folders in the real layouts, ground truth, config and sessions sheet.

``simulate_cohort(out, sessions=K, seconds=S, seed=N)`` writes::

    out/Data/<YYYYMMDD_HHMMSS>/                 K experiment sessions (+1 calibration session)
    out/EPHYS/<YYYYMMDD>_imec0/kilosort4/        sorter output of the day's e-phys group
    out/truth/<session_id>/ground_truth.json     what every stage must recover
    out/config.yaml, out/sessions.tsv            so that `snakemake --configfile out/config.yaml` runs

Sessions of one day form one e-phys group (concatenated in sheet order) sharing the same units.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import yaml

from ..io.atomic import atomic_open, write_json
from .audio import write_avisoft
from .ephys import draw_units, write_sorter_output, write_spikeglx
from .syncfiles import write_coolterm_log, write_nidq
from .timeline import make_timeline
from .video import scaled_led_pixels, write_calibration_cameras, write_loopbio_cameras

CAMERA_SERIALS = ["21372315", "21372316", "21369048", "22085397", "21241563"]
SYNC_SERIAL = "21372315"
HEIGHT, WIDTH = 128, 160
#: the cameras' real frame size (height, width)
REAL_FRAME_SIZE = (1024, 1280)
# LED pixels of the simulated sync camera ([row, col] in the small simulated frames).
LED_PIXELS = {SYNC_SERIAL: {"LED_top": [60, 150], "LED_middle": [67, 150], "LED_bottom": [74, 150]}}
HEADSTAGE_SN = "23280196"
N_AP = 32
#: AP channels of a full NP1.0 recording (384 AP + the sync channel = 385 saved)
N_AP_FULL = 384
SESSION_GAP = dt.timedelta(minutes=40)
BASE_START = dt.datetime(2025, 4, 30, 14, 50, 17)


def _stamp(t: dt.datetime) -> str:
    return t.strftime("%Y%m%d_%H%M%S")


def _write_metadata(folder: Path, sid: str, code: str, subjects: list[str]) -> None:
    meta = {
        "Session": {"session_id": sid, "session_experiment_code": code},
        "Subjects": [{"subject_id": s} for s in subjects],
    }
    with atomic_open(folder / f"{sid}_metadata.yaml") as fh:
        yaml.safe_dump(meta, fh, sort_keys=False)


def led_pixels_for(frame_size: tuple[int, int]) -> dict:
    """LED pixels of the sync camera: the small default frames' own, else the original's table scaled."""
    if tuple(frame_size) == (HEIGHT, WIDTH):
        return LED_PIXELS
    return scaled_led_pixels(*frame_size, serials=[SYNC_SERIAL])


def simulate_session(
    folder: Path, sid: str, start: dt.datetime, seconds: float, rng, units, calls_per_minute, frame_time_jitter_s,
    pose=None, options: dict | None = None, frame_size: tuple[int, int] = (HEIGHT, WIDTH), n_ap: int = N_AP,
    progress: bool = False, workers: int = 1,
):  # fmt: skip
    """Write one experiment session; returns its ground truth (``pose``: a PoseSimulator or None).

    ``options``: ``{"timeline": {make_timeline keyword arguments}, "nidq": bool, "pose_video": bool}``
    (A/V sync faults, an NI-DAQ recording, videos that show the animals' projected skeletons instead of
    blobs: needs ``pose``); None gives the default session. ``frame_size``: (height, width) of the
    camera frames; ``n_ap``: AP channels of the probe; ``progress``: progress bars on stderr;
    ``workers``: cameras encoded at the same time.
    """
    options = options or {}
    height, width = frame_size
    tl = make_timeline(rng, seconds, CAMERA_SERIALS, **options.get("timeline", {}))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sync").mkdir(exist_ok=True)
    video_stamp = _stamp(start + dt.timedelta(seconds=18))
    tracks = pose.animals(tl) if pose is not None else None  # the same animals call and move
    painter = None
    if options.get("pose_video"):
        if pose is None:
            raise ValueError("the pose_video session option needs pose=True")
        painter = pose.painter(tl, tracks, frame_size)
    audio_truth = write_avisoft(
        folder,
        tl,
        rng,
        start_datetime=start,
        calls_per_minute=calls_per_minute,
        tracks=tracks,
        progress=progress,
    )
    video_truth = write_loopbio_cameras(
        folder,
        tl,
        rng,
        video_stamp=video_stamp,
        led_pixels=led_pixels_for(frame_size),
        height=height,
        width=width,
        epoch0=start.replace(tzinfo=dt.UTC).timestamp(),
        sync_serials=(SYNC_SERIAL,),
        frame_time_jitter_s=frame_time_jitter_s,
        progress=progress,
        workers=workers,
        animal_xy=painter.no_animals if painter else None,
        frame_callback=painter,
    )
    coolterm = write_coolterm_log(folder / "sync", tl, start - dt.timedelta(seconds=30))
    ephys_truth = write_spikeglx(
        folder,
        sid,
        tl,
        rng,
        probe="imec0",
        n_ap=n_ap,
        headstage_sn=HEADSTAGE_SN,
        units=units,
        progress=progress,
    )
    _write_metadata(folder, sid, "E2MF", ["animal_0", "animal_1"])
    truth = {
        "session_id": sid,
        "kind": "experiment",
        "timeline": tl.to_json(),
        "audio": audio_truth,
        "video": video_truth,
        "coolterm_log": coolterm,
        "ephys": ephys_truth,
    }
    if pose is not None:
        truth["pose"] = pose.session(folder, sid, tl, video_truth, tracks)
    if options.get("nidq"):
        truth["nidq"] = write_nidq(folder / "sync", tl, f"{sid}_g0_t0", rng)
    return truth


def simulate_cohort(
    out: str | Path,
    sessions: int = 1,
    seconds: float = 4.0,
    seed: int = 0,
    calibration: bool = True,
    calls_per_minute: float = 90.0,
    frame_time_jitter_s: float = 1e-4,
    pose: bool = False,
    pose_proofread: bool = False,
    session_options: list[dict | None] | None = None,
    frame_size: tuple[int, int] = (HEIGHT, WIDTH),
    probe_channels: int = N_AP + 1,
    progress: bool = False,
    workers: int = 1,
) -> dict:
    """Write a simulated cohort to ``out`` (see the module docstring); returns paths and session ids.

    ``pose``: also the pose streams (:mod:`usvflow.simulate.pose`): per-camera SLEAP predictions of
    every experiment session (``pose_proofread``: and their proofread copies), ChArUco calibration
    footage at the cameras' full 1280×1024 resolution, the arena labelling and the true calibration.
    ``session_options[i]``: options of experiment session ``i`` (see :func:`simulate_session`).
    ``frame_size``: (height, width) of the simulated camera frames (default the small 128×160; the
    cameras' real size is :data:`REAL_FRAME_SIZE`). ``probe_channels``: saved channels of the probe
    (AP channels + the sync channel; 385 for a full NP1.0 recording). ``progress``: progress bars on
    stderr; ``workers``: cameras encoded at the same time (the files do not depend on it). Every
    stream is written block by block: memory does not grow with ``seconds``.
    """
    if sessions < 1:
        raise ValueError("sessions must be >= 1")
    if not pose and any((o or {}).get("pose_video") for o in session_options or []):
        raise ValueError("the pose_video session option needs pose=True")
    height, width = (int(v) for v in frame_size)
    if height < 64 or width < 64 or height % 2 or width % 2:
        raise ValueError(f"frame_size must be even and at least 64×64, got {height}×{width}")
    n_ap = int(probe_channels) - 1
    if not 1 <= n_ap <= N_AP_FULL:
        raise ValueError(f"probe_channels must be 2..{N_AP_FULL + 1}, got {probe_channels}")
    led_pixels = led_pixels_for((height, width))
    out = Path(out).resolve()
    data, ephys_root = out / "Data", out / "EPHYS"
    rng = np.random.default_rng(seed)
    units = draw_units(rng, n_ap, 6)
    pose_sim = None
    if pose:
        from .pose import PoseSimulator

        pose_sim = PoseSimulator(out / "truth", CAMERA_SERIALS, seed, proofread=pose_proofread)
    rows, truths = [], {}
    cal_id = ""
    if calibration:
        start = BASE_START - dt.timedelta(minutes=30)
        cal_id = _stamp(start)
        folder = data / cal_id
        cal_truth = write_calibration_cameras(
            folder,
            rng,
            video_stamp=_stamp(start + dt.timedelta(seconds=12)),
            serials=CAMERA_SERIALS,
            height=height,
            width=width,
            frames=pose_sim.calibration_frames() if pose_sim else None,
        )
        _write_metadata(folder, cal_id, "", [])
        truths[cal_id] = {"session_id": cal_id, "kind": "calibration", "video": cal_truth}
        if pose_sim is not None:
            truths[cal_id]["pose"] = pose_sim.calibration(folder, cal_id, cal_truth["date_joint"])
        rows.append((cal_id, folder, "calibration", "", "", ""))
    ephys_sessions = []
    for i in range(sessions):
        start = BASE_START + i * SESSION_GAP
        sid = _stamp(start)
        truth = simulate_session(
            data / sid,
            sid,
            start,
            seconds,
            rng,
            units,
            calls_per_minute,
            frame_time_jitter_s,
            pose=pose_sim,
            options=session_options[i] if session_options and i < len(session_options) else None,
            frame_size=(height, width),
            n_ap=n_ap,
            progress=progress,
            workers=workers,
        )
        truths[sid] = truth
        group = start.strftime("%Y%m%d")
        rows.append((sid, data / sid, "experiment", cal_id, "E2MF", group))
        ephys_sessions.append(truth["ephys"])

    day = BASE_START.strftime("%Y%m%d")
    sorter_truth = write_sorter_output(
        ephys_root / f"{day}_imec0" / "kilosort4",
        [(t["n_samples"], t["units"]) for t in ephys_sessions],
        n_channels_saved=n_ap + 1,
        units=units,
        sample_rate=truths[rows[-1][0]]["ephys"]["rate_true"],
        rng=rng,
    )
    for sid, t in truths.items():
        if t["kind"] == "experiment":
            t["sorter"] = {"folder": str(ephys_root / f"{day}_imec0" / "kilosort4")}
        write_json(out / "truth" / sid / "ground_truth.json", t)
    write_json(out / "truth" / f"{day}_imec0_sorter.json", sorter_truth)

    sheet = out / "sessions.tsv"
    with atomic_open(sheet) as fh:
        fh.write("session_id\tfolder\tkind\tcalibration_session\texperimental_code\tephys_group\n")
        for sid, folder, kind, cal, code, group in rows:
            fh.write(f"{sid}\tData/{Path(folder).name}\t{kind}\t{cal}\t{code}\t{group}\n")
    rate = truths[rows[-1][0]]["ephys"]["rate_true"]
    cfg = {
        "sessions": str(sheet),
        "ephys_root": str(ephys_root),
        "stages": ["video", "audio", "usv"],
        "video": {"camera_serials": CAMERA_SERIALS},
        "sync": {
            "av": {
                "sync_camera_serials": [SYNC_SERIAL],
                "led_px_version": "simulated",
                "led_px_dev": 3,
                "led_pixels": {"simulated": led_pixels},
            }
        },
        "ephys": {"calibrated_sample_rates": {HEADSTAGE_SN: float(rate)}},
    }
    config = out / "config.yaml"
    with atomic_open(config) as fh:
        fh.write(
            "# Config of a cohort simulated by `usvflow simulate`; keys not set here take the\n"
        )
        fh.write("# defaults of config/config.yaml (see config/README.md).\n")
        yaml.safe_dump(cfg, fh, sort_keys=False)
    return {
        "root": str(out),
        "config": str(config),
        "sheet": str(sheet),
        "sessions": [r[0] for r in rows],
    }
