"""Discovery of what a session folder holds, learnt once from names and headers.

The workflow calls :func:`discover` once per session when it parses the Snakefile; rules then take
their inputs from the returned :class:`SessionLayout` instead of globbing inside every job. A stream
that a session lacks is ``None``/empty here (its rules are disabled for that session); a folder that
is malformed raises :class:`~usvflow.io.atomic.InputError` naming the file and the problem.

Layout of a session folder::

    <session>/audio/original_mc/{m,s}_<YYMMDDHHMMSS>.wav      Avisoft multichannel files
    <session>/video/<YYYYMMDD_HHMMSS>.<serial>/               Loopbio camera folders
    <session>/video/calibration_<YYYYMMDD_HHMMSS>.<serial>/   calibration footage
    <session>/ephys/imec<N>/<name>.imec<N>.ap.bin/.ap.meta     SpikeGLX
    <session>/sync/CoolTerm Capture ... .txt                  Arduino IPI log
    <session>/sync/*.nidq.bin/.meta                           optional NI-DAQ
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..audio.wav import wav_info
from .atomic import InputError
from .config import setting_default
from .loopbio import parse_camera_dir_name

AVISOFT_RE = re.compile(r"^(?P<dev>[a-z])_(?P<ts>\d{12})\.wav$")
PROBE_RE = re.compile(r"^imec\d+$")


@dataclass
class AudioDevice:
    files: list[str]  # multichannel WAVs in time order (names inside audio/original_mc)
    channels: int
    sample_rate: int
    frames: list[int]


@dataclass
class Camera:
    serial: str
    folder: str  # name of the raw camera folder inside video/
    chunks: list[str]  # mp4 chunk names in order
    calibration: bool = False


@dataclass
class Probe:
    name: str  # imec<N>
    bin: str  # path relative to the session folder
    meta: str


@dataclass
class SessionLayout:
    session_id: str
    folder: str
    kind: str
    audio: dict[str, AudioDevice] = field(default_factory=dict)
    audio_stamp: str | None = None  # <ts> of the first master file: names every split/cropped file
    cameras: dict[str, Camera] = field(default_factory=dict)
    calibration_cameras: dict[str, Camera] = field(default_factory=dict)
    date_joint: str | None = None
    probes: dict[str, Probe] = field(default_factory=dict)
    coolterm: str | None = None
    nidq: str | None = None
    metadata_yaml: str | None = None

    @property
    def has_audio(self) -> bool:
        return bool(self.audio)

    @property
    def has_video(self) -> bool:
        return bool(self.cameras)

    def to_dict(self) -> dict:
        return asdict(self)


def _discover_audio(
    folder: Path, devices: list[str], channels: int, rate: int
) -> tuple[dict, str | None]:
    mc = folder / "audio" / "original_mc"
    if not mc.is_dir():
        return {}, None
    wavs = sorted(
        p for p in mc.iterdir() if p.suffix.lower() == ".wav" and not p.name.startswith(".")
    )
    if not wavs:
        return {}, None
    out: dict[str, AudioDevice] = {}
    for p in wavs:
        m = AVISOFT_RE.match(p.name)
        if not m:
            raise InputError(p, "not an Avisoft file name <device>_<YYMMDDHHMMSS>.wav")
        if m["dev"] not in devices:
            raise InputError(
                p, f"device {m['dev']!r} is not among the configured audio.devices {devices}"
            )
        info = wav_info(p)  # InputError naming the file if unreadable or truncated
        if info.samplerate != rate:
            raise InputError(
                p, f"sample rate {info.samplerate} Hz, expected {rate} Hz (audio.sample_rate)"
            )
        if info.channels != channels:
            raise InputError(
                p, f"{info.channels} channels, expected {channels} (audio.channels_per_device)"
            )
        if info.subtype != "PCM_16":
            raise InputError(p, f"sample format {info.subtype}, expected 16-bit PCM")
        dev = out.setdefault(m["dev"], AudioDevice([], info.channels, info.samplerate, []))
        dev.files.append(p.name)
        dev.frames.append(int(info.frames))
    missing = [d for d in devices if d not in out]
    if missing:
        raise InputError(
            mc,
            f"no files of audio device(s) {missing} (found {sorted(out)}); every configured device must be present",
        )
    first = out[devices[0]].files[0] if devices[0] in out else wavs[0].name
    return out, AVISOFT_RE.match(first)["ts"]


def _discover_video(folder: Path, serials: list[str], ext: str) -> tuple[dict, dict, str | None]:
    vdir = folder / "video"
    if not vdir.is_dir():
        return {}, {}, None
    cams: dict[str, Camera] = {}
    cal: dict[str, Camera] = {}
    joint = None
    for d in sorted(p for p in vdir.iterdir() if p.is_dir()):
        parsed = parse_camera_dir_name(d.name)
        if parsed is None or parsed[1] not in serials:
            continue
        stamp, serial, is_cal = parsed
        names = {p.name for p in d.iterdir()}
        chunks = sorted(n for n in names if n.endswith("." + ext) and n[: -len(ext) - 1].isdigit())
        if not chunks:
            raise InputError(d, f"camera folder holds no .{ext} chunks")
        if "metadata.yaml" not in names:
            raise InputError(d, "camera folder has no metadata.yaml (Loopbio store metadata)")
        no_meta = [c for c in chunks if c[: -len(ext) - 1] + ".npz" not in names]
        if no_meta:
            raise InputError(
                d / no_meta[0],
                "video chunk has no frame metadata (.npz with frame_number, frame_time)",
            )
        if joint is None:
            joint = stamp.replace("_", "")
        cam = Camera(serial, d.name, chunks, calibration=is_cal)
        target = cal if is_cal else cams
        if serial in target:
            raise InputError(
                d,
                f"a second {'calibration ' if is_cal else ''}folder for camera {serial} (first: {target[serial].folder})",
            )
        target[serial] = cam
    return cams, cal, joint


def _discover_ephys(folder: Path, file_type: str) -> dict:
    edir = folder / "ephys"
    if not edir.is_dir():
        return {}
    probes = {}
    for d in sorted(p for p in edir.iterdir() if p.is_dir() and PROBE_RE.match(p.name)):
        bins = sorted(p for p in d.iterdir() if p.name.endswith(f".{file_type}.bin"))
        if not bins:
            continue
        if len(bins) > 1:
            raise InputError(d, f"more than one .{file_type}.bin file: {[b.name for b in bins]}")
        meta = bins[0].with_suffix(".meta")
        if not meta.is_file():
            raise InputError(bins[0], f"has no matching meta file {meta.name}")
        rel = lambda p: str(p.relative_to(folder))  # noqa: E731
        probes[d.name] = Probe(d.name, rel(bins[0]), rel(meta))
    return probes


def discover(
    session_id: str,
    folder: str | Path,
    kind: str = "experiment",
    *,
    devices: list[str] | None = None,
    channels_per_device: int | None = None,
    sample_rate: int | None = None,
    camera_serials: list[str] = (),
    video_extension: str = "mp4",
    npx_file_type: str | None = None,
) -> SessionLayout:
    """Learn the streams of one session folder (names and headers only; nothing is modified)."""
    devices = setting_default("audio.devices", devices)
    channels_per_device = setting_default("audio.channels_per_device", channels_per_device)
    sample_rate = setting_default("audio.sample_rate", sample_rate)
    npx_file_type = setting_default("sync.ev.npx_file_type", npx_file_type)
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, f"session folder of {session_id} does not exist")
    audio, stamp = _discover_audio(folder, list(devices), channels_per_device, sample_rate)
    cams, cal, joint = _discover_video(folder, list(camera_serials), video_extension)
    probes = _discover_ephys(folder, npx_file_type)
    sync = folder / "sync"
    coolterm = nidq = None
    if sync.is_dir():
        logs = sorted(p.name for p in sync.iterdir() if "CoolTerm" in p.name and p.is_file())
        coolterm = f"sync/{logs[0]}" if logs else None
        nidqs = sorted(p.name for p in sync.iterdir() if p.name.endswith(".nidq.bin"))
        nidq = f"sync/{nidqs[0]}" if nidqs else None
    metas = sorted(p.name for p in folder.glob("*_metadata.yaml"))
    return SessionLayout(
        session_id=session_id,
        folder=str(folder),
        kind=kind,
        audio=audio,
        audio_stamp=stamp,
        cameras=cams,
        calibration_cameras=cal,
        date_joint=joint,
        probes=probes,
        coolterm=coolterm,
        nidq=nidq,
        metadata_yaml=metas[0] if metas else None,
    )
