"""Read Loopbio/Motif image stores (``imgstore`` ``VideoImgStore`` folders) without the imgstore package.

One camera folder ``video/<YYYYMMDD_HHMMSS>.<serial>/`` (or ``video/calibration_<YYYYMMDD_HHMMSS>.<serial>/``)
holds the video in chunks ``000000.mp4, 000001.mp4, …``; each chunk has a ``000000.npz, …`` beside it with
the per-frame metadata ``frame_number`` (the camera's frame counter; a gap means dropped frames) and
``frame_time`` (epoch seconds), plus ``metadata.yaml`` (the store's settings under ``__store`` and the
user's under ``user``). This module only reads: it never writes inside a camera folder.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from usvflow.io.atomic import InputError

#: a raw camera folder: ``[calibration_]YYYYMMDD_HHMMSS.<serial>``
CAMERA_DIR_RE = re.compile(r"^(?P<cal>calibration_)?(?P<stamp>\d{8}_\d{6})\.(?P<serial>[^.\s]+)$")
_CHUNK_RE = re.compile(r"^(?P<index>\d+)\.(?P<ext>mp4|npz)$")


class _LenientLoader(yaml.SafeLoader):
    """A safe YAML loader that reads unknown tags (e.g. Python-object tags) as plain data."""


def _construct_unknown(loader, tag_suffix, node):
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


_LenientLoader.add_multi_constructor("", _construct_unknown)


@dataclass
class LoopbioStore:
    """One camera folder, its chunks and its concatenated frame metadata."""

    path: Path
    serial: str  # the part after the last '.' of the folder name
    stamp: str  # the part before it (``calibration_`` removed), ``YYYYMMDD_HHMMSS``
    is_calibration: bool
    mp4_paths: list[Path]  # chunks, in chunk order
    npz_paths: list[Path]
    frame_number: np.ndarray  # int64, all chunks concatenated
    frame_time: np.ndarray  # float64 epoch seconds, all chunks concatenated
    metadata: dict = field(default_factory=dict)

    @property
    def frame_count(self) -> int:
        """Frames stored (what the mp4 chunks hold)."""
        return int(len(self.frame_number))

    @property
    def frame_span(self) -> int:
        """Frames the camera counted from its first to its last stored frame (inclusive)."""
        return int(self.frame_number[-1] - self.frame_number[0] + 1)

    @property
    def n_dropped(self) -> int:
        """Frames missing between the first and the last stored frame."""
        return self.frame_span - self.frame_count

    @property
    def has_dropped_frames(self) -> bool:
        return self.n_dropped != 0

    @property
    def date_joint(self) -> str:
        """``YYYYMMDDHHMMSS`` of this folder's stamp."""
        return self.stamp.replace("_", "")


def parse_camera_dir_name(name: str) -> tuple[str, str, bool] | None:
    """``(stamp, serial, is_calibration)`` of a raw camera folder name, or None if it is not one."""
    m = CAMERA_DIR_RE.match(name)
    if not m:
        return None
    return m["stamp"], m["serial"], bool(m["cal"])


def _load_metadata(camera_dir: Path) -> dict:
    meta_path = camera_dir / "metadata.yaml"
    if not meta_path.is_file():
        raise InputError(camera_dir, "camera folder has no metadata.yaml")
    try:
        with open(meta_path) as fh:
            meta = yaml.load(fh, Loader=_LenientLoader)
    except yaml.YAMLError as exc:
        raise InputError(meta_path, f"not valid YAML ({exc})") from None
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise InputError(meta_path, "metadata.yaml is not a mapping")
    return meta


def _chunks(camera_dir: Path) -> tuple[list[Path], list[Path]]:
    found: dict[str, dict[int, Path]] = {"mp4": {}, "npz": {}}
    for p in camera_dir.iterdir():
        m = _CHUNK_RE.match(p.name)
        if m and p.is_file():
            idx = int(m["index"])
            if idx in found[m["ext"]]:
                raise InputError(camera_dir, f"two {m['ext']} files for chunk {idx}")
            found[m["ext"]][idx] = p
    mp4, npz = found["mp4"], found["npz"]
    if not mp4:
        raise InputError(camera_dir, "camera folder has no mp4 chunk")
    no_npz = sorted(mp4.keys() - npz.keys())
    no_mp4 = sorted(npz.keys() - mp4.keys())
    if no_npz:
        raise InputError(
            camera_dir, f"mp4 chunk(s) without npz frame metadata: {[mp4[i].name for i in no_npz]}"
        )
    if no_mp4:
        raise InputError(
            camera_dir, f"npz frame metadata without mp4 chunk: {[npz[i].name for i in no_mp4]}"
        )
    order = sorted(mp4)
    return [mp4[i] for i in order], [npz[i] for i in order]


def _load_npz(camera_dir: Path, npz_path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(npz_path, allow_pickle=False) as z:
            missing = [k for k in ("frame_number", "frame_time") if k not in z.files]
            if missing:
                raise InputError(camera_dir, f"{npz_path.name} lacks {', '.join(missing)}")
            fn = np.asarray(z["frame_number"]).ravel()
            ft = np.asarray(z["frame_time"], dtype=np.float64).ravel()
    except InputError:
        raise
    except Exception as exc:  # corrupt zip, pickled arrays, …
        raise InputError(camera_dir, f"{npz_path.name} cannot be read ({exc})") from None
    if len(fn) != len(ft):
        raise InputError(
            camera_dir,
            f"{npz_path.name}: frame_number ({len(fn)}) and frame_time ({len(ft)}) differ in length",
        )
    if len(fn) and not np.issubdtype(fn.dtype, np.integer):
        if not np.all(np.isfinite(fn)) or np.any(fn != np.round(fn)):
            raise InputError(camera_dir, f"{npz_path.name}: frame_number is not integer")
    return fn.astype(np.int64), ft


def read_store(camera_dir: str | os.PathLike) -> LoopbioStore:
    """Read one camera folder (see the module docstring).

    Raises :class:`InputError` naming the folder when ``metadata.yaml`` is missing, there is no mp4
    chunk, an mp4 lacks its npz (or vice versa), an npz lacks ``frame_number``/``frame_time`` or holds
    arrays of different lengths, the store holds no frame, or ``frame_time``/``frame_number`` do not
    strictly increase across the store.
    """
    camera_dir = Path(camera_dir)
    if not camera_dir.is_dir():
        raise InputError(camera_dir, "camera folder not found")
    parsed = parse_camera_dir_name(camera_dir.name)
    if parsed is not None:
        stamp, serial, is_cal = parsed
    else:  # not a standard name: still usable, split at the last '.'
        head, _, serial = camera_dir.name.rpartition(".")
        is_cal = head.startswith("calibration_")
        stamp = head.removeprefix("calibration_")
        if not head or not serial:
            raise InputError(camera_dir, "folder name is not <YYYYMMDD_HHMMSS>.<serial>")
    metadata = _load_metadata(camera_dir)
    mp4_paths, npz_paths = _chunks(camera_dir)
    numbers, times = [], []
    for npz in npz_paths:
        fn, ft = _load_npz(camera_dir, npz)
        numbers.append(fn)
        times.append(ft)
    frame_number = np.concatenate(numbers)
    frame_time = np.concatenate(times)
    if len(frame_number) == 0:
        raise InputError(camera_dir, "the store holds no frame")
    if not np.all(np.isfinite(frame_time)):
        raise InputError(camera_dir, "frame_time holds non-finite values")
    bad = np.flatnonzero(np.diff(frame_time) <= 0)
    if len(bad):
        raise InputError(
            camera_dir,
            f"frame_time is not increasing ({len(bad)} step(s), first at stored frame {bad[0] + 1})",
        )
    bad = np.flatnonzero(np.diff(frame_number) <= 0)
    if len(bad):
        raise InputError(
            camera_dir,
            f"frame_number is not increasing ({len(bad)} step(s), first at stored frame {bad[0] + 1})",
        )
    return LoopbioStore(
        path=camera_dir,
        serial=serial,
        stamp=stamp,
        is_calibration=is_cal,
        mp4_paths=mp4_paths,
        npz_paths=npz_paths,
        frame_number=frame_number,
        frame_time=frame_time,
        metadata=metadata,
    )


def camera_dirs(video_dir: str | os.PathLike) -> list[Path]:
    """Raw camera folders of ``video_dir`` (``<YYYYMMDD_HHMMSS>.<serial>`` and
    ``calibration_<YYYYMMDD_HHMMSS>.<serial>``), sorted by name."""
    video_dir = Path(video_dir)
    if not video_dir.is_dir():
        raise InputError(video_dir, "video folder not found")
    return sorted(
        (
            p
            for p in video_dir.iterdir()
            if p.is_dir() and parse_camera_dir_name(p.name) is not None
        ),
        key=lambda p: p.name,
    )


def date_joint(video_dir: str | os.PathLike, serials) -> str:
    """``YYYYMMDDHHMMSS`` of the first (sorted) camera folder whose serial is in ``serials``.

    Calibration folders count too, as in the original (``20250430_145027.21241563`` → ``20250430145027``).
    """
    wanted = {str(s) for s in serials}
    for p in camera_dirs(video_dir):
        stamp, serial, _ = parse_camera_dir_name(p.name)
        if serial in wanted:
            return stamp.replace("_", "")
    raise InputError(video_dir, f"no camera folder for any of the serials {sorted(wanted)}")
