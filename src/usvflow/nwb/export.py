"""One session's products as one NWB file (pynwb, ndx-pose), on one session clock.

:func:`write_session_nwb` is called by the workflow's rule ``export_nwb`` and by ``usvflow to-nwb``
(which finds the products with :func:`find_products`). Whatever products the session has go in; the
layout and the time bases are described in ``docs/nwb.md``. In short, time 0 is the triggerbox pulse
of the first recorded video frame, and

* USVs: ``start``/``stop`` of the USV table (seconds of the cropped audio, which starts at that pulse);
* video frames (poses): the frame pulses found in the trigger device's audio
  (``sync/<dev>_video_frames_in_audio_samples.txt``), else ``frame / median_empirical_camera_sr``;
* spikes: the cluster files' seconds from the tracking start on the probe's calibrated clock;
* the filtered audio (optional): sample ``i`` at ``i / sample_rate``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import tomllib
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from usvflow.io.atomic import InputError, atomic_path, read_json
from usvflow.nwb.metadata import (
    decode_experimental_code,
    find_metadata_yaml,
    read_metadata_yaml,
    session_start_time,
)

__all__ = ["NwbSettings", "ProbeProducts", "SessionProducts", "find_products", "write_session_nwb"]

SESSION_CLOCK = (
    "seconds from the triggerbox pulse of the first recorded video frame (the tracking start)"
)
ARENA_FRAME = (
    "metric arena frame: metres, origin at the arena centre on the floor (z = 0, z up), corners "
    "North (-x, +y), West (-x, -y), South (+x, -y), East (+x, +y)"
)


@dataclass
class NwbSettings:
    """The ``nwb`` settings (defaults and meanings in the config schema)."""

    include_audio: bool
    timezone: str
    institution: str
    lab: str
    experimenter: list
    species: str
    subject_age: str
    probe_locations: dict


@dataclass
class ProbeProducts:
    """One probe's products in a session folder."""

    meta: Path
    manifest: Path | None = None
    cluster_dir: Path | None = None
    ev_sync: Path | None = None
    quality: Path | None = None


@dataclass
class SessionProducts:
    """The product files of one session that go into its NWB file (None: not made for it)."""

    session_id: str
    date_joint: str | None = None
    kind: str = "experiment"
    experimental_code: str | None = None
    metadata_yaml: Path | None = None
    usv_summary: Path | None = None
    usv_assigned: Path | None = None
    usv_call_types: Path | None = None
    source_estimates: Path | None = None
    frame_counts: Path | None = None
    frame_pulses: Path | None = None
    audio_sync_info: Path | None = None
    points3d_metric: Path | None = None
    arena_metric: Path | None = None
    calibration_toml: Path | None = None
    av_sync: Path | None = None
    memmap: Path | None = None
    probes: dict[str, ProbeProducts] = field(default_factory=dict)


def _one(paths, what):
    paths = sorted(paths)
    if len(paths) > 1:
        raise InputError(paths[0].parent, f"several {what}: {[p.name for p in paths]}")
    return paths[0] if paths else None


def find_products(
    session_dir: str | os.PathLike, calibration_dir: str | os.PathLike | None = None
) -> SessionProducts:
    """The products at their documented paths inside ``session_dir`` (a session's product folder).

    ``calibration_dir``: the calibration session's product folder (camera calibration, arena and
    microphones); by default the session's own folder is searched for them.
    """
    d = Path(session_dir)
    if not d.is_dir():
        raise InputError(d, "is not a session folder")
    sid = d.name
    dj_dirs = (
        sorted(p for p in (d / "video").glob("[0-9]" * 14) if p.is_dir())
        if (d / "video").is_dir()
        else []
    )
    date_joint = dj_dirs[0].name if dj_dirs else None
    cal = Path(calibration_dir) if calibration_dir else d
    p = SessionProducts(session_id=sid, date_joint=date_joint, metadata_yaml=find_metadata_yaml(d))
    a = d / "audio"
    for attr, name in (
        ("usv_summary", f"{sid}_usv_summary.csv"),
        ("usv_assigned", f"{sid}_usv_summary_assigned.csv"),
        ("usv_call_types", f"{sid}_usv_summary_call_types.csv"),
        ("source_estimates", f"sound_localization/{sid}_source_estimates.csv"),
        ("audio_sync_info", "audio_triggerbox_sync_info.json"),
    ):
        if (a / name).is_file():
            setattr(p, attr, a / name)
    p.memmap = _one(
        (a / "hpss_filtered").glob("*_concatenated_audio_hpss_filtered_*_int16.mmap"),
        "audio memmaps",
    )
    p.frame_pulses = _one(
        list((d / "sync").glob("*_video_frames_in_audio_samples.txt"))[:1], "frame pulse files"
    )
    p.av_sync = (
        (d / "sync" / f"{sid}_av_sync.json")
        if (d / "sync" / f"{sid}_av_sync.json").is_file()
        else None
    )
    if date_joint:
        p.frame_counts = _exists(d / "video" / f"{date_joint}_camera_frame_count_dict.json")
        p.points3d_metric = _exists(
            d / "video" / date_joint / f"{date_joint}_points3d_translated_rotated_metric.h5"
        )
    p.calibration_toml = _one((cal / "video").glob("[0-9]*/*_calibration.toml"), "calibrations")
    arena = [
        f
        for f in (cal / "video").glob("[0-9]*/*_points3d_translated_rotated_metric.h5")
        if cal != d or f != p.points3d_metric
    ]
    p.arena_metric = _one(arena, "arena files")
    for pd_ in sorted((d / "ephys").glob("imec[0-9]*")) if (d / "ephys").is_dir() else []:
        probe = pd_.name
        meta = _one(pd_.glob(f"*.{probe}.ap.meta"), f"{probe} .ap.meta files")
        if meta is None:
            continue
        p.probes[probe] = ProbeProducts(
            meta=meta,
            manifest=_exists(pd_ / f"{probe}_cluster_data_manifest.json"),
            cluster_dir=_exists(pd_ / "cluster_data"),
            ev_sync=_exists(pd_ / f"{sid}_{probe}_ev_sync.json"),
            quality=_exists(pd_ / f"{sid}_{probe}_quality_metrics.csv"),
        )
    return p


def _exists(path: Path) -> Path | None:
    return path if path.exists() else None


# ---------------------------------------------------------------------------------------------- USVs
_USV_DESCRIPTIONS = {
    "usv_id": "USV identifier within the session (as in the USV summary CSV)",
    "duration": "stop - start (s)",
    "peak_amp_ch": "memmap channel with the largest absolute amplitude",
    "mean_amp_ch": "memmap channel with the largest mean absolute amplitude",
    "chs_count": "number of channels that detected the USV",
    "chs_detected": "memmap channels that detected the USV",
    "emitter": "animal that emitted the USV (empty: not assigned)",
    "peak_freq_hz": "frequency of the spectral peak at the loudest frame (Hz)",
    "mean_freq_hz": "mean per-frame peak frequency (Hz)",
    "min_freq_hz": "lowest per-frame peak frequency (Hz)",
    "max_freq_hz": "highest per-frame peak frequency (Hz)",
    "max_amplitude": "largest absolute sample (int16 counts of the filtered audio)",
    "snr_db": "signal-to-noise ratio against the 50 ms on either side (dB)",
    "signal_correlation": "mean correlation of the detecting channels' band-limited spectrograms",
    "signal_variance": "variance of the normalised power (single-channel USVs)",
    "detection_confidence": "highest detection confidence among the channels' detections of the USV "
    "(built-in detector; empty for DAS)",
    "call_type": 'call type from the classifier ("none": none of the trained types)',
    "call_type_prob": "classifier probability of call_type",
    "source_x_m": "estimated sound source x in the arena frame (m)",
    "source_y_m": "estimated sound source y in the arena frame (m)",
    "source_z_m": "estimated sound source z in the arena frame (m)",
    "source_coherence": "steered response power at the estimate",
    "emitter_confidence": "probability of the most likely animal under the localization error model, "
    "weighted by the probability that the localization is valid (from its coherence)",
}


def _read_csv(path, what) -> pd.DataFrame:
    try:
        return pd.read_csv(
            path, dtype={"usv_id": str, "emitter": str, "call_type": str}, keep_default_na=True
        )
    except (OSError, ValueError) as exc:
        raise InputError(path, f"cannot be read as {what} ({exc})") from None


def usv_table(p: SessionProducts) -> pd.DataFrame | None:
    """The session's USVs with whichever of features, call types, emitters and source estimates exist."""
    base = p.usv_call_types or p.usv_assigned or p.usv_summary
    if base is None:
        return None
    df = _read_csv(base, "a USV summary")
    for col in ("usv_id", "start", "stop"):
        if col not in df.columns:
            raise InputError(base, f"lacks column {col!r}")
    if p.usv_assigned is not None and base != p.usv_assigned:
        em = _read_csv(p.usv_assigned, "an assigned USV summary").set_index("usv_id")["emitter"]
        df["emitter"] = df["usv_id"].map(em)
    if p.source_estimates is not None:
        se = _read_csv(p.source_estimates, "source estimates").set_index("usv_id")
        ren = {
            "x_m": "source_x_m",
            "y_m": "source_y_m",
            "z_m": "source_z_m",
            "coherence": "source_coherence",
            "confidence": "emitter_confidence",
        }
        for src, dst in ren.items():
            if src in se.columns:
                df[dst] = df["usv_id"].map(se[src]).astype(float)
        for c in se.columns:
            if c.startswith("dist_") and c.endswith("_m"):
                df[c] = df["usv_id"].map(se[c]).astype(float)
    return df


def _add_usvs(nwbfile, df: pd.DataFrame) -> None:
    from pynwb.epoch import TimeIntervals

    ti = TimeIntervals(
        name="usvs",
        description=f"Ultrasonic vocalizations, one row per USV; start/stop in {SESSION_CLOCK}",
    )
    cols = [c for c in df.columns if c not in ("start", "stop")]
    for c in cols:
        desc = _USV_DESCRIPTIONS.get(c)
        if desc is None and c.startswith("dist_"):
            desc = f"distance from the source estimate to {c[5:-2]}'s nose (m)"
        ti.add_column(name=c, description=desc or c)
    data = {}
    for c in cols:
        s = df[c]
        if s.dtype == object or c in ("usv_id", "emitter", "call_type", "chs_detected"):
            data[c] = s.fillna("").astype(str).tolist()
        elif np.issubdtype(s.dtype, np.integer):
            data[c] = s.to_numpy()
        else:
            data[c] = s.to_numpy(dtype=float)
    starts, stops = df["start"].to_numpy(float), df["stop"].to_numpy(float)
    order = np.argsort(starts, kind="stable")
    for i in order:
        ti.add_interval(
            start_time=float(starts[i]), stop_time=float(stops[i]), **{c: data[c][i] for c in cols}
        )
    nwbfile.add_time_intervals(ti)


# ---------------------------------------------------------------------------------------------- video / pose
def frame_times(
    p: SessionProducts, n_frames: int, audio_rate: float | None
) -> tuple[np.ndarray | None, float | None, str]:
    """(timestamps, rate, how) of video frames ``0..n_frames-1`` on the session clock."""
    if p.frame_pulses is not None and audio_rate:
        try:
            pulses = np.loadtxt(p.frame_pulses, dtype=np.int64, ndmin=1)
        except ValueError as exc:
            raise InputError(p.frame_pulses, f"not one integer sample per line ({exc})") from None
        if len(pulses) >= n_frames and np.all(np.diff(pulses[:n_frames]) > 0):
            how = f"frame pulses in the audio ({Path(p.frame_pulses).name}, {audio_rate:g} Hz)"
            return (pulses[:n_frames] - pulses[0]) / float(audio_rate), None, how
    if p.frame_counts is None:
        raise InputError(
            p.points3d_metric, "no frame pulses and no camera frame counts: frame times unknown"
        )
    esr = float(read_json(p.frame_counts)["median_empirical_camera_sr"])
    return None, esr, f"frame / median_empirical_camera_sr ({esr:g} Hz)"


def _audio_rate(p: SessionProducts) -> float | None:
    if p.memmap is not None:
        side = Path(p.memmap).with_suffix(".json")
        if side.is_file():
            return float(read_json(side)["sample_rate"])
    if p.audio_sync_info is not None:
        info = read_json(p.audio_sync_info)
        for dev in info.values():
            if isinstance(dev, dict) and dev.get("sampling_rate"):
                return float(dev["sampling_rate"])
    return None


def _rotvec_to_matrix(r) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_rotvec(np.asarray(r, dtype=float)).as_matrix()


def read_arena_transform(metric_h5) -> dict:
    """The calibration → arena transform stored with a metric file (``x_m = (k·x − mid) @ R``)."""
    import h5py

    with h5py.File(metric_h5, "r") as h:
        try:
            return {
                "k": float(h.attrs["scale_k"]),
                "mid": np.asarray(h.attrs["mid"], float),
                "R": np.asarray(h.attrs["rotation_row_vector"], float),
            }
        except KeyError as exc:
            raise InputError(metric_h5, f"lacks the arena transform attribute {exc}") from None


def cameras_in_arena_frame(calibration_toml, transform: dict | None) -> list[dict]:
    """The calibration's cameras; extrinsics re-expressed in the arena frame (metres) when ``transform``.

    With ``x_cal = (R x_m + mid) / k`` and ``x_cam = Rc x_cal + t`` (calibration units), the camera
    frame in metres is ``k x_cam = (Rc R) x_m + (Rc mid + k t)``.
    """
    try:
        with open(calibration_toml, "rb") as fh:
            cal = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InputError(
            calibration_toml, f"cannot be read as an aniposelib calibration ({exc})"
        ) from None
    cams = []
    for key, c in cal.items():
        if not key.startswith("cam_") or not isinstance(c, dict):
            continue
        try:
            rc, t = _rotvec_to_matrix(c["rotation"]), np.asarray(c["translation"], float)
            k_mat, dist = np.asarray(c["matrix"], float), np.asarray(c["distortions"], float)
        except KeyError as exc:
            raise InputError(calibration_toml, f"{key} lacks {exc}") from None
        if transform is not None:
            r_w = rc @ transform["R"]
            t_w = rc @ transform["mid"] + transform["k"] * t
        else:
            r_w, t_w = rc, t
        cams.append(
            {
                "name": str(c.get("name", key)),
                "size": c.get("size"),
                "K": k_mat,
                "R": r_w,
                "t": t_w,
                "dist": dist,
            }
        )
    return cams


def _add_pose(nwbfile, p: SessionProducts, audio_rate) -> dict:
    import h5py
    from ndx_pose import (
        CalibratedCamera,
        MultiCameraPoseEstimation,
        PoseEstimationSeries,
        Skeleton,
        Skeletons,
    )

    info = {}
    transform = read_arena_transform(p.points3d_metric) if p.points3d_metric else None
    cameras = []
    if p.calibration_toml is not None:
        for c in cameras_in_arena_frame(p.calibration_toml, transform):
            cam = CalibratedCamera(
                name=f"camera_{c['name']}",
                intrinsic_matrix=c["K"],
                rotation_matrix=c["R"],
                translation_vector=c["t"],
                distortion_coefficients=c["dist"],
                serial_number=c["name"],
                description=(
                    f"Loopbio camera {c['name']}, {c['size'][0]}x{c['size'][1]} px; aniposelib calibration; "
                    + (
                        "extrinsics map the " + ARENA_FRAME + " to the camera frame (metres)"
                        if transform
                        else "extrinsics in the calibration board's frame and units"
                    )
                ),
            )
            nwbfile.add_device(cam)
            cameras.append(cam)
        info["cameras"] = len(cameras)
    if p.points3d_metric is None:
        return info
    with h5py.File(p.points3d_metric, "r") as h:
        tracks = np.asarray(h["tracks"][()], dtype=np.float64)
        nodes = [s.decode() for s in h["node_names"][()]]
        animals = (
            [s.decode() for s in h["track_names"][()]]
            if "track_names" in h
            else [f"track_{i}" for i in range(tracks.shape[1])]
        )
    if tracks.ndim != 4 or tracks.shape[2:] != (len(nodes), 3) or tracks.shape[1] != len(animals):
        raise InputError(
            p.points3d_metric,
            f"tracks {tracks.shape} do not match {len(animals)} tracks x {len(nodes)} nodes x 3",
        )
    ts, rate, how = frame_times(p, tracks.shape[0], audio_rate)
    behavior = nwbfile.create_processing_module(
        "behavior", "3D poses of the animals in the metric arena frame"
    )
    skeleton = Skeleton(name="mouse", nodes=nodes, edges=np.zeros((0, 2), dtype=np.uint8))
    behavior.add(Skeletons(skeletons=[skeleton]))
    for a, animal in enumerate(animals):
        series, first = [], None
        for n, node in enumerate(nodes):
            kw = (
                {"timestamps": ts if first is None else first}
                if ts is not None
                else {"rate": rate, "starting_time": 0.0}
            )
            s = PoseEstimationSeries(
                name=node,
                data=tracks[:, a, n, :],
                unit="meters",
                reference_frame=ARENA_FRAME,
                description=f"{animal} {node}, one row per video frame; times: {how}",
                **kw,
            )
            series.append(s)
            first = first or s
        behavior.add(
            MultiCameraPoseEstimation(
                name=f"pose_{_safe(animal)}",
                pose_estimation_series=series,
                skeleton=skeleton,
                description=f"3D pose of {animal} (SLEAP 2D poses triangulated with aniposelib, metric arena frame)",
                source_software="usvflow",
            )
        )
    info.update(frames=int(tracks.shape[0]), animals=animals, frame_times=how)
    return info


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def _add_arena(nwbfile, p: SessionProducts, channel_names: list[str] | None) -> dict:
    import h5py
    from hdmf.common import DynamicTable

    with h5py.File(p.arena_metric, "r") as h:
        pts = np.asarray(h["tracks"][0, 0], float)
        names = [s.decode() for s in h["node_names"][()]]
    mod = nwbfile.processing.get("audio") or nwbfile.create_processing_module(
        "audio", "Microphone geometry and the filtered audio"
    )
    mics = [(i, n) for i, n in enumerate(names) if re.fullmatch(r"ch_\d+", n)]
    mics.sort(key=lambda x: int(x[1][3:]))
    t = DynamicTable(
        name="microphones",
        description=f"Microphone positions (labelled in the calibration session), {ARENA_FRAME}",
    )
    t.add_column("node", "node name in the arena labelling (ch_<memmap column>)")
    t.add_column("channel", "audio channel (<device>_ch<NN>) of the memmap column")
    for c in ("x_m", "y_m", "z_m"):
        t.add_column(c, f"{c[0]} (m)")
    for i, n in mics:
        j = int(n[3:])
        ch = channel_names[j] if channel_names and j < len(channel_names) else ""
        t.add_row(node=n, channel=ch, x_m=pts[i, 0], y_m=pts[i, 1], z_m=pts[i, 2])
    mod.add(t)
    corners = [(i, n) for i, n in enumerate(names) if n in ("North", "West", "South", "East")]
    c = DynamicTable(name="arena_corners", description=f"Arena corners, {ARENA_FRAME}")
    c.add_column("corner", "corner name")
    for k in ("x_m", "y_m", "z_m"):
        c.add_column(k, f"{k[0]} (m)")
    for i, n in corners:
        c.add_row(corner=n, x_m=pts[i, 0], y_m=pts[i, 1], z_m=pts[i, 2])
    mod.add(c)
    return {"microphones": len(mics)}


# ---------------------------------------------------------------------------------------------- sync
def _add_sync(nwbfile, p: SessionProducts) -> dict:
    from hdmf.common import DynamicTable

    rows = []
    if p.av_sync is not None:
        av = read_json(p.av_sync)
        for dev, d in (av.get("devices") or {}).items():
            med = (d.get("stats") or d).get("median_ms") if isinstance(d, dict) else None
            rows.append(
                (
                    "audio/video",
                    f"audio device {dev}",
                    bool(av.get("passed")),
                    str(av.get("verdict")),
                    "; ".join(map(str, av.get("reasons") or [])),
                    _num(med),
                    _num(av.get("tolerance_ms")),
                )
            )
        if not av.get("devices"):
            rows.append(
                (
                    "audio/video",
                    "all",
                    bool(av.get("passed")),
                    str(av.get("verdict")),
                    "; ".join(map(str, av.get("reasons") or [])),
                    float("nan"),
                    _num(av.get("tolerance_ms")),
                )
            )
    for probe, pp in p.probes.items():
        if pp.ev_sync is None:
            continue
        ev = read_json(pp.ev_sync)
        rows.append(
            (
                "ephys/video",
                probe,
                bool(ev.get("passed")),
                "pass" if ev.get("passed") else "fail",
                str(ev.get("problem") or ""),
                _num(ev.get("duration_difference_ms")),
                _num(ev.get("tolerance_ms")),
            )
        )
    if not rows:
        return {}
    mod = nwbfile.create_processing_module(
        "sync", "Clock agreement checks between cameras, audio and e-phys"
    )
    t = DynamicTable(
        name="sync_checks",
        description="Verdicts of the A/V (LED IPIs) and E/V (triggerbox) sync checks",
    )
    for name, desc in (
        ("check", "which clocks are compared"),
        ("stream", "audio device or probe"),
        ("passed", "whether the check passed"),
        ("verdict", "verdict"),
        ("reasons", "why it failed"),
        (
            "discrepancy_ms",
            "A/V: median audio - video IPI discrepancy; E/V: e-phys - video duration (ms)",
        ),
        ("tolerance_ms", "the check's tolerance (ms)"),
    ):
        t.add_column(name, desc)
    for r in rows:
        t.add_row(
            check=r[0],
            stream=r[1],
            passed=r[2],
            verdict=r[3],
            reasons=r[4],
            discrepancy_ms=r[5],
            tolerance_ms=r[6],
        )
    mod.add(t)
    return {"sync_checks": len(rows)}


def _num(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


# ---------------------------------------------------------------------------------------------- e-phys
def _probe_geometry(meta_path):
    import warnings

    import probeinterface

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return probeinterface.read_spikeglx(meta_path)
        except Exception as exc:  # probeinterface raises several types on odd metas
            raise InputError(
                meta_path, f"probeinterface cannot read the probe geometry ({exc})"
            ) from None


def _add_units(nwbfile, p: SessionProducts, settings: NwbSettings) -> dict:
    from usvflow.ephys.quality import METRIC_COLUMNS, read_quality_table

    probes = {k: v for k, v in p.probes.items() if v.manifest is not None}
    if not probes:
        return {}
    have_quality = any(v.quality is not None for v in probes.values())
    nwbfile.add_electrode_column("probe_channel", "saved AP channel index in the probe's .bin")
    nwbfile.add_electrode_column("shank", "shank index")
    units = []
    for probe, pp in probes.items():
        probe_geo = _probe_geometry(pp.meta)
        ann = probe_geo.annotations
        device = nwbfile.create_device(
            name=probe,
            description=f"Neuropixels probe {ann.get('model_name', '')} "
            f"(part {ann.get('part_number', '')}), recorded with SpikeGLX",
            serial_number=str(ann.get("serial_number", "")),
        )
        where = str(settings.probe_locations.get(probe) or "unknown")
        group = nwbfile.create_electrode_group(
            name=probe, description=f"{probe} contacts", location=where, device=device
        )
        pos = probe_geo.contact_positions
        shanks = (
            probe_geo.shank_ids
            if probe_geo.shank_ids is not None and len(probe_geo.shank_ids)
            else np.zeros(len(pos))
        )
        first = len(nwbfile.electrodes) if nwbfile.electrodes is not None else 0
        for ch in range(len(pos)):
            nwbfile.add_electrode(
                group=group,
                location=where,
                rel_x=float(pos[ch, 0]),
                rel_y=float(pos[ch, 1]),
                probe_channel=ch,
                shank=int(shanks[ch] or 0) if str(shanks[ch]) != "" else 0,
            )
        manifest = read_json(pp.manifest)
        q = read_quality_table(pp.quality) if pp.quality is not None else None
        for f in manifest.get("files", []):
            arr = np.load(Path(pp.cluster_dir) / f["file"])
            if arr.ndim != 2 or arr.shape[0] != 2:
                raise InputError(
                    Path(pp.cluster_dir) / f["file"],
                    f"expected (2, n) seconds and frames, found {arr.shape}",
                )
            ch = int(f["channel"])
            if not 0 <= ch < len(pos):
                raise InputError(
                    pp.manifest,
                    f"cluster {f['cluster_id']}: channel {ch} outside the probe's {len(pos)}",
                )
            row = {
                "probe": probe,
                "cluster_id": int(f["cluster_id"]),
                "sorter_label": str(f["label"]),
                "peak_channel": ch,
                "cluster_file": str(f["file"]),
            }
            if have_quality:
                cid = int(f["cluster_id"])
                if q is not None and cid in q.index:
                    row.update({c: float(q.loc[cid, c]) for c in METRIC_COLUMNS})
                    row.update(
                        quality_label=str(q.loc[cid, "quality_label"]),
                        quality_failed=str(q.loc[cid, "quality_failed"]),
                    )
                else:
                    row.update({c: float("nan") for c in METRIC_COLUMNS})
                    row.update(quality_label="", quality_failed="")
            units.append(
                ({"spike_times": arr[0], "electrodes": [first + ch], "electrode_group": group}, row)
            )
    if units:
        from pynwb.misc import Units

        rates = [float(read_json(v.manifest).get("sample_rate") or 0) for v in probes.values()]
        nwbfile.units = Units(
            name="units",
            description=f"Sorted units of every probe; spike_times in {SESSION_CLOCK}",
            resolution=1.0 / max(rates) if max(rates) > 0 else -1.0,
        )
        nwbfile.add_unit_column("probe", "probe (imec<N>)")
        nwbfile.add_unit_column("cluster_id", "sorter cluster id")
        nwbfile.add_unit_column("sorter_label", "Kilosort/Phy label (good or mua)")
        nwbfile.add_unit_column("peak_channel", "sorter's peak channel (saved AP channel index)")
        nwbfile.add_unit_column("cluster_file", "the cluster_data file of the unit")
        if have_quality:
            for c in METRIC_COLUMNS:
                unit = " (uV)" if c == "amplitude_median" else ""
                nwbfile.add_unit_column(c, f"SpikeInterface quality metric {c}{unit}")
            nwbfile.add_unit_column(
                "quality_label", "good when every threshold of the labelling rule holds, else bad"
            )
            nwbfile.add_unit_column("quality_failed", "the labelling rule's failed thresholds")
        for base, row in units:
            nwbfile.add_unit(**base, **row)
    return {"units": len(units)}


# ---------------------------------------------------------------------------------------------- audio
def _add_audio(nwbfile, p: SessionProducts) -> dict:
    from hdmf.backends.hdf5.h5_utils import H5DataIO
    from pynwb import TimeSeries

    side = read_json(Path(p.memmap).with_suffix(".json"))
    shape = tuple(int(x) for x in side["shape"])
    mm = np.memmap(p.memmap, dtype=np.dtype(side["dtype"]).newbyteorder("<"), mode="r", shape=shape)
    mod = nwbfile.processing.get("audio") or nwbfile.create_processing_module(
        "audio", "Microphone geometry and the filtered audio"
    )
    mod.add(
        TimeSeries(
            name="filtered_audio",
            data=H5DataIO(
                mm, compression="gzip", compression_opts=1, chunks=(min(shape[0], 65536), 1)
            ),
            unit="a.u.",
            rate=float(side["sample_rate"]),
            starting_time=0.0,
            description=f"HPSS-harmonic, high-passed audio (int16 counts), columns {', '.join(side['channels'])}",
            comments="sample 0 is the triggerbox pulse of the first recorded frame",
        )
    )
    return {"audio_samples": shape[0], "audio_channels": shape[1]}


# ---------------------------------------------------------------------------------------------- file
def _subject(meta: dict, settings: NwbSettings, animals: list[str] | None):
    from pynwb.file import Subject

    subs = meta.get("Subjects") or []
    subs = [s for s in subs if isinstance(s, dict)]
    ids = [str(s.get("subject_id")) for s in subs if s.get("subject_id")] or list(animals or [])
    if not ids:
        return None
    sexes = {str(s.get("sex", "U"))[:1].upper() for s in subs} or {"U"}
    species = next((str(s["species"]) for s in subs if s.get("species")), settings.species)
    kw = {}
    ages = {str(s["age"]) for s in subs if s.get("age")}
    births = {
        str(s.get("date_of_birth") or s.get("DOB"))
        for s in subs
        if s.get("date_of_birth") or s.get("DOB")
    }
    if len(ages) == 1:
        kw["age"] = ages.pop()
    elif len(births) == 1:
        try:
            kw["date_of_birth"] = dt.datetime.fromisoformat(births.pop()).replace(tzinfo=dt.UTC)
        except ValueError:
            pass
    if not kw and settings.subject_age:
        kw["age"] = settings.subject_age
    desc = "; ".join(", ".join(f"{k}: {v}" for k, v in s.items()) for s in subs) or ", ".join(ids)
    return Subject(
        subject_id="-".join(_safe(i) for i in ids),
        species=species,
        sex=sexes.pop() if len(sexes) == 1 and next(iter(sexes)) in "MFUO" else "U",
        description=f"{len(ids)} animal(s) recorded together: {desc}",
        **kw,
    )


@contextlib.contextmanager
def _seeded_object_ids(seed: str):
    """Give the NWB containers created inside the block reproducible object ids.

    hdmf draws every container's ``object_id`` from ``uuid.uuid4()``, so two exports of the same
    products would differ in every object. Inside the block the ids are version-4 UUIDs drawn from
    a generator seeded by ``seed`` (the session): the same products give the same file bytes.
    """
    import random

    import hdmf.container as hc

    rng = random.Random(uuid.uuid5(uuid.NAMESPACE_URL, f"usvflow:nwb-object-ids:{seed}").int)
    original = hc.uuid4
    hc.uuid4 = lambda: uuid.UUID(int=rng.getrandbits(128), version=4)
    try:
        yield
    finally:
        hc.uuid4 = original


def write_session_nwb(p: SessionProducts, out: str | os.PathLike, settings: NwbSettings) -> dict:
    """Write ``out`` (``<session>.nwb``) from the session's products; return a summary of its content.

    The file is byte-identical for identical products: object ids are seeded by the session and
    ``file_create_date`` is the session start (a rerun does not change the file's content).
    """
    with _seeded_object_ids(p.session_id):
        return _write_session_nwb(p, out, settings)


def _write_session_nwb(p: SessionProducts, out: str | os.PathLike, settings: NwbSettings) -> dict:
    from pynwb import NWBHDF5IO, NWBFile

    meta = read_metadata_yaml(p.metadata_yaml)
    code = p.experimental_code
    if code is None:
        code = str((meta.get("Session") or {}).get("session_experiment_code") or "")
    words = decode_experimental_code(code)
    stamp = p.date_joint or re.sub(r"\D", "", p.session_id)[:14]
    start = session_start_time(stamp, settings.timezone)
    nwbfile = NWBFile(
        session_description=f"{p.kind} session {p.session_id}" + (f": {words}" if words else ""),
        identifier=str(uuid.uuid5(uuid.NAMESPACE_URL, f"usvflow:session:{p.session_id}")),
        session_start_time=start,
        timestamps_reference_time=start,
        # the session start, not the wall clock: a rerun on the same products gives the same bytes
        file_create_date=start,
        session_id=p.session_id,
        experiment_description=(
            f"experimental code {code}: {words}" if code else "rodent social experiment"
        ),
        institution=settings.institution or None,
        lab=settings.lab or None,
        experimenter=list(settings.experimenter) or None,
        keywords=["ultrasonic vocalizations", "social behavior", "pose estimation", "Neuropixels"],
        source_script="usvflow",
        source_script_file_name="usvflow",
        notes=f"Time base: {SESSION_CLOCK}. session_start_time is the video recording's folder time stamp.",
    )
    summary = {"file": str(out), "session_id": p.session_id, "session_clock": SESSION_CLOCK}
    audio_rate = _audio_rate(p)
    usvs = usv_table(p)
    if usvs is not None:
        _add_usvs(nwbfile, usvs)
        summary["usvs"] = int(len(usvs))
    summary.update(_add_pose(nwbfile, p, audio_rate))
    if p.arena_metric is not None:
        chans = read_json(Path(p.memmap).with_suffix(".json"))["channels"] if p.memmap else None
        summary.update(_add_arena(nwbfile, p, chans))
    summary.update(_add_sync(nwbfile, p))
    summary.update(_add_units(nwbfile, p, settings))
    if settings.include_audio and p.memmap is not None:
        summary.update(_add_audio(nwbfile, p))
    nwbfile.subject = _subject(meta, settings, summary.get("animals"))
    with atomic_path(Path(out)) as tmp:
        with NWBHDF5IO(str(tmp), "w") as io:
            io.write(nwbfile)
    return summary
