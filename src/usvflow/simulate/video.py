"""Simulated Loopbio/Motif camera recordings (``video/<stamp>.<serial>/`` image stores).

Each camera folder holds H.264 mp4 chunks (``000000.mp4`` …, ``chunksize`` frames each), one npz of frame
metadata per chunk (``frame_number`` int64, ``frame_time`` float64 epoch seconds) and an imgstore-like
``metadata.yaml``. Frame ``k`` of every camera is taken at true time ``timeline.frame_times_s[k]`` (the
triggerbox clock); its ``frame_time`` is ``epoch0 + true time + N(0, frame_time_jitter_s)``.

Frames show a static gray floor texture with mild per-frame sensor noise and dark moving blobs (the
animals). On the sync cameras the three LED pixels (3×3 spots) are bright (230) while the Arduino LED is
on and dark (30) otherwise. Frames are streamed to ffmpeg one at a time; every file appears atomically.
"""

from __future__ import annotations

import datetime as _dt
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import yaml

from usvflow.io.atomic import atomic_open, atomic_path
from usvflow.io.progress import progress as progress_bar
from usvflow.simulate.timeline import Timeline
from usvflow.video.ffmpeg import ffmpeg_exe

NOMINAL_FPS = 150
LED_ON_LEVEL = 230
LED_OFF_LEVEL = 30
LED_NAMES = ("LED_top", "LED_middle", "LED_bottom")
#: frames larger than this (pixels) take their sensor noise from a pool of pre-drawn noisy floors
POOLED_NOISE_PIXELS = 1 << 18
#: noisy floors per camera in that pool
NOISE_POOL = 16

#: the "current" LED pixel table of the original (row y, col x) for 1024×1280 frames
REAL_LED_PIXELS = {
    "21372315": {"LED_top": [504, 1267], "LED_middle": [551, 1268], "LED_bottom": [599, 1265]},
    "21241563": {"LED_top": [296, 1234], "LED_middle": [339, 1244], "LED_bottom": [383, 1252]},
}
REAL_SHAPE = (1024, 1280)


def scaled_led_pixels(
    height: int, width: int, serials: Iterable[str] = ("21372315", "21241563")
) -> dict:
    """The original's LED pixel table scaled to ``height``×``width`` frames (kept ≥2 px off the border)."""
    out = {}
    for s in serials:
        out[s] = {}
        for name, (y, x) in REAL_LED_PIXELS[s].items():
            yy = int(round(y * height / REAL_SHAPE[0]))
            xx = int(round(x * width / REAL_SHAPE[1]))
            out[s][name] = [min(max(yy, 2), height - 3), min(max(xx, 2), width - 3)]
    return out


# --------------------------------------------------------------------------------------------- encoding


class H264Writer:
    """Stream uint8 gray frames into an H.264 (yuv420p) mp4 written atomically at ``path``."""

    def __init__(
        self, path, width: int, height: int, fps: float, crf: int = 15, preset: str = "veryfast"
    ):
        if width % 2 or height % 2:
            raise ValueError(f"yuv420p needs even frame sizes, got {height}×{width}")
        self.path = Path(path)
        self.shape = (height, width)
        self._atomic = atomic_path(self.path)
        self._tmp = self._atomic.__enter__()
        self._err = tempfile.TemporaryFile()
        # fmt: off
        cmd = [
            ffmpeg_exe(), "-hide_banner", "-nostats", "-loglevel", "error", "-y", "-f", "rawvideo",
            "-pix_fmt", "gray", "-s", f"{width}x{height}", "-r", str(fps), "-i", "-", "-c:v", "libx264",
            "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p", "-threads", "1", "-f", "mp4",
            str(self._tmp),
        ]
        # fmt: on
        self._cmd = cmd
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._err
        )
        self.n = 0

    def write(self, frame: np.ndarray) -> None:
        if frame.shape != self.shape or frame.dtype != np.uint8:
            raise ValueError(f"frame must be uint8 {self.shape}, got {frame.dtype} {frame.shape}")
        try:
            self._proc.stdin.write(np.ascontiguousarray(frame).tobytes())
        except BrokenPipeError:
            raise (
                self._finish(commit=False)
                or RuntimeError(f"ffmpeg closed its input early: {self.path}")
            ) from None
        self.n += 1

    def _finish(self, commit: bool) -> RuntimeError | None:
        """Close the pipe and wait; keep the file only if ``commit`` and ffmpeg succeeded.

        Returns the error (not raised) when ffmpeg failed, else None.
        """
        try:
            self._proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        rc = self._proc.wait()
        self._err.seek(0)
        err = self._err.read().decode(errors="replace")
        self._err.close()
        if commit and rc == 0:
            self._atomic.__exit__(None, None, None)  # rename into place
            return None
        exc = RuntimeError(
            f"ffmpeg failed (exit {rc}) writing {self.path}: {' '.join(self._cmd)}\n{err[-2000:]}"
        )
        self._atomic.__exit__(RuntimeError, exc, None)  # removes the temporary file
        return exc if rc != 0 else None

    def close(self) -> None:
        exc = self._finish(commit=True)
        if exc is not None:
            raise exc

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        elif self._proc.returncode is None:
            self._finish(commit=False)
        return False


# --------------------------------------------------------------------------------------------- content


def _smooth_noise(rng: np.random.Generator, height: int, width: int, scale: int = 4) -> np.ndarray:
    """A smooth random texture in [-1, 1] (coarse noise, bilinearly upsampled)."""
    gh, gw = height // scale + 2, width // scale + 2
    g = rng.standard_normal((gh, gw))
    yi = np.linspace(0, gh - 1.001, height)
    xi = np.linspace(0, gw - 1.001, width)
    y0, x0 = yi.astype(int), xi.astype(int)
    fy, fx = (yi - y0)[:, None], (xi - x0)[None, :]
    a = g[y0][:, x0] * (1 - fx) + g[y0][:, x0 + 1] * fx
    b = g[y0 + 1][:, x0] * (1 - fx) + g[y0 + 1][:, x0 + 1] * fx
    t = a * (1 - fy) + b * fy
    return t / (np.abs(t).max() + 1e-12)


def floor_texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A static gray textured floor (float, ~100–180)."""
    tex = (
        140.0
        + 25.0 * _smooth_noise(rng, height, width, 8)
        + 8.0 * _smooth_noise(rng, height, width, 2)
    )
    return np.clip(tex, 60, 200)


def _noisy_floor(texture: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The floor with one draw of sensor noise (uint8)."""
    return np.clip(np.rint(texture + rng.normal(0.0, 1.5, size=texture.shape)), 0, 255).astype(
        np.uint8
    )


def random_motion(
    rng: np.random.Generator, height: int, width: int, n_animals: int = 2
) -> Callable:
    """Smooth random animal paths: ``f(t) -> array (n_animals, 2)`` of pixel positions ``(x, y)``.

    Each coordinate is a sum of three slow sinusoids kept inside the central 70 % of the frame.
    """
    freqs = rng.uniform(0.05, 0.6, size=(n_animals, 2, 3))
    phases = rng.uniform(0, 2 * np.pi, size=(n_animals, 2, 3))
    amps = rng.uniform(0.5, 1.0, size=(n_animals, 2, 3))
    amps /= amps.sum(axis=-1, keepdims=True)
    centre = np.array([width / 2.0, height / 2.0])
    half = 0.35 * np.array([width, height])

    def xy(t: float) -> np.ndarray:
        s = (amps * np.sin(2 * np.pi * freqs * float(t) + phases)).sum(axis=-1)  # (n, 2) in [-1, 1]
        return centre + half * s

    return xy


def _blob_box(x: float, y: float, radius: float, shape: tuple[int, int]) -> tuple[slice, slice]:
    """Rows and columns outside of which a blob at ``(x, y)`` leaves the frame unchanged.

    The shade ``1.6 - d2`` is positive only inside the ellipse ``d2 < 1.6``: ``|x'-x| < 1.4 r √1.6``,
    ``|y'-y| < r √1.6``; outside it the frame is multiplied by exactly 1.
    """
    h, w = shape
    ry, rx = radius * np.sqrt(1.6), 1.4 * radius * np.sqrt(1.6)
    r0, r1 = max(int(np.floor(y - ry)), 0), min(int(np.ceil(y + ry)) + 1, h)
    c0, c1 = max(int(np.floor(x - rx)), 0), min(int(np.ceil(x + rx)) + 1, w)
    return slice(r0, max(r0, r1)), slice(c0, max(c0, c1))


def _blob_factor(x: float, y: float, radius: float, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    d2 = ((xx - x) / (1.4 * radius)) ** 2 + ((yy - y) / radius) ** 2
    shade = np.clip(1.6 - d2, 0.0, 1.0)  # solid body with a soft edge
    return 1.0 - 0.75 * shade


def _draw_blobs(
    frame: np.ndarray, xy: np.ndarray, radius: float, yy: np.ndarray, xx: np.ndarray
) -> None:
    """Darken ``frame`` (float) by the animal blobs, inside each blob's bounding box only."""
    for x, y in np.asarray(xy, dtype=np.float64).reshape(-1, 2):
        rows, cols = _blob_box(x, y, radius, frame.shape)
        frame[rows, cols] *= _blob_factor(x, y, radius, yy[rows, cols], xx[rows, cols])


def _draw_blobs_u8(
    frame: np.ndarray, xy: np.ndarray, radius: float, yy: np.ndarray, xx: np.ndarray
) -> None:
    """:func:`_draw_blobs` on a uint8 frame (rounded inside each blob's box)."""
    for x, y in np.asarray(xy, dtype=np.float64).reshape(-1, 2):
        rows, cols = _blob_box(x, y, radius, frame.shape)
        f = frame[rows, cols] * _blob_factor(x, y, radius, yy[rows, cols], xx[rows, cols])
        frame[rows, cols] = np.clip(np.rint(f), 0, 255)


def _draw_leds(frame: np.ndarray, pixels: dict, on: bool) -> None:
    level = LED_ON_LEVEL if on else LED_OFF_LEVEL
    h, w = frame.shape
    for name in LED_NAMES:
        y, x = (int(v) for v in pixels[name])
        frame[max(y - 1, 0) : min(y + 2, h), max(x - 1, 0) : min(x + 2, w)] = level


# --------------------------------------------------------------------------------------------- store files


def _metadata(
    rng: np.random.Generator,
    height: int,
    width: int,
    chunksize: int,
    frame_rate: float,
    created: str,
    user: dict,
) -> dict:
    return {
        "__store": {
            "class": "VideoImgStore",
            "version": 2,
            "chunksize": int(chunksize),
            "encoding": "libx264-crf-yuv420p",
            "format": "mp4",
            "extension": ".mp4",
            "imgshape": [int(height), int(width)],
            "imgdtype": "uint8",
            "frame_rate": frame_rate,
            "created": created,
            "uuid": rng.bytes(16).hex(),
        },
        "user": user,
    }


def _write_yaml(path: Path, data: dict) -> None:
    with atomic_open(path, "w") as fh:
        yaml.safe_dump(data, fh, sort_keys=False, default_flow_style=None)


def _write_npz(path: Path, frame_number: np.ndarray, frame_time: np.ndarray) -> None:
    with atomic_open(path, "wb") as fh:
        np.savez(
            fh,
            frame_number=np.asarray(frame_number, dtype=np.int64),
            frame_time=np.asarray(frame_time, dtype=np.float64),
        )


def _created(video_stamp: str) -> str:
    return _dt.datetime.strptime(video_stamp, "%Y%m%d_%H%M%S").replace(tzinfo=_dt.UTC).isoformat()


def _write_store(
    store_dir: Path,
    frames: Iterator[np.ndarray],
    frame_number: np.ndarray,
    frame_time: np.ndarray,
    height: int,
    width: int,
    chunksize: int,
    fps_encode: float,
    crf: int,
    meta: dict,
    preset: str = "veryfast",
) -> int:
    """Write chunks ``000000.mp4/.npz …`` from the ``frames`` iterator; returns the number of chunks."""
    store_dir.mkdir(parents=True, exist_ok=True)
    n = len(frame_number)
    n_chunks = max(1, -(-n // chunksize))
    for c in range(n_chunks):
        a, b = c * chunksize, min((c + 1) * chunksize, n)
        with H264Writer(
            store_dir / f"{c:06d}.mp4", width, height, fps_encode, crf=crf, preset=preset
        ) as w:
            for _ in range(a, b):
                w.write(next(frames))
        _write_npz(store_dir / f"{c:06d}.npz", frame_number[a:b], frame_time[a:b])
    _write_yaml(store_dir / "metadata.yaml", meta)
    return n_chunks


def _check_stamp(video_stamp: str) -> None:
    try:
        _dt.datetime.strptime(video_stamp, "%Y%m%d_%H%M%S")
    except ValueError:
        raise ValueError(f"video_stamp must be YYYYMMDD_HHMMSS, got {video_stamp!r}") from None


def write_loopbio_cameras(
    session_dir: str | os.PathLike,
    timeline: Timeline,
    rng: np.random.Generator,
    video_stamp: str,
    led_pixels: dict | None,
    height: int = 128,
    width: int = 160,
    chunksize: int = 300,
    epoch0: float = 1_746_024_635.0,
    frame_time_jitter_s: float = 1e-4,
    sync_serials: Iterable[str] = ("21372315",),
    animal_xy: Callable[[float], np.ndarray] | None = None,
    dropped_frames: dict[str, Iterable[int]] | None = None,
    frame_callback: Callable[[np.ndarray, str, int], None] | None = None,
    crf: int = 15,
    preset: str | None = None,
    progress: bool = False,
    workers: int = 1,
) -> dict:
    """Write one Loopbio image store per camera of ``timeline`` under ``session_dir/video/``.

    ``video/<video_stamp>.<serial>/{000000.mp4, 000000.npz, …, metadata.yaml}``; camera ``serial`` records
    ``timeline.camera_frames[serial]`` frames, frame ``k`` at true time ``timeline.frame_times_s[k]``.

    * ``led_pixels``: ``{serial: {"LED_top": [y, x], "LED_middle": [y, x], "LED_bottom": [y, x]}}``; the
      LEDs are drawn on the ``sync_serials`` cameras (each must have an entry). ``None`` → the original's
      table scaled to the frame size (:func:`scaled_led_pixels`; below ~100 px height the scaled spots
      touch each other, so pass explicit pixels for tiny frames).
    * ``animal_xy(t)``: pixel positions ``[(x, y), …]`` of the animals at true time ``t``; default smooth
      random motion of two animals.
    * ``dropped_frames``: ``{serial: [frame indices]}`` absent from the mp4 and from ``frame_number``.
    * ``frame_callback(frame, serial, k)``: may modify the uint8 frame of camera frame ``k`` in place
      just before it is encoded (tests use it to stamp frame indices).
    * ``epoch0``: unix time of true ``t = 0``.
    * Frames of at most :data:`POOLED_NOISE_PIXELS` pixels draw fresh sensor noise for every frame and
      are encoded with the x264 preset ``veryfast``. Larger frames (the real 1280×1024) take one of
      :data:`NOISE_POOL` pre-drawn noisy floors per frame (drawn at random) and are encoded with
      ``ultrafast``: about 10× faster to render and 2× faster to encode, so that a 20-minute session
      (5 × 180,000 frames) is practical. ``preset`` overrides the x264 preset.
    * ``progress``: a progress bar per camera (stderr); ``workers``: cameras written at the same time
      (threads; each runs its own ffmpeg). The files are the same for any ``workers``.

    Returns the truth ``{"video_stamp", "date_joint", "cameras": {serial: {"frames", "fps_true",
    "dropped", "stored_frames", "chunks"}}, "led_pixels", "resolution", "chunksize", "epoch0",
    "frame_time_jitter_s", "sync_serials"}``.
    """
    _check_stamp(video_stamp)
    session_dir = Path(session_dir)
    sync_serials = [str(s) for s in sync_serials]
    if led_pixels is None:
        led_pixels = scaled_led_pixels(
            height, width, [s for s in sync_serials if s in REAL_LED_PIXELS]
        )
    for s in sync_serials:
        if s in timeline.camera_frames and s not in led_pixels:
            raise ValueError(f"sync camera {s} has no entry in led_pixels")
    for s in sync_serials:
        if s in led_pixels:
            for name in LED_NAMES:
                y, x = led_pixels[s][name]
                if not (0 <= y < height and 0 <= x < width):
                    raise ValueError(
                        f"LED pixel {s} {name} [{y}, {x}] lies outside {height}×{width}"
                    )
    dropped_frames = {
        str(k): sorted({int(i) for i in v}) for k, v in (dropped_frames or {}).items()
    }
    if animal_xy is None:
        animal_xy = random_motion(rng, height, width)
    radius = max(2.0, min(height, width) / 14.0)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    pooled = height * width > POOLED_NOISE_PIXELS
    if preset is None:
        preset = "ultrafast" if pooled else "veryfast"
    frame_times = timeline.frame_times_s
    video_dir = session_dir / "video"

    # animals are the same in every view (no per-camera geometry yet): evaluate once per frame
    n_max = max(timeline.camera_frames.values())
    positions = [np.asarray(animal_xy(float(t)), dtype=np.float64) for t in frame_times[:n_max]]
    led_on = np.asarray(timeline.led_is_on(frame_times[:n_max]), dtype=bool)

    truth_cams, jobs = {}, []
    for serial, n in timeline.camera_frames.items():
        serial = str(serial)
        drop = dropped_frames.get(serial, [])
        if any(i < 0 or i >= n for i in drop):
            raise ValueError(f"dropped frame index out of range for camera {serial} ({n} frames)")
        keep = np.setdiff1d(np.arange(n, dtype=np.int64), np.asarray(drop, dtype=np.int64))
        jitter = (
            rng.normal(0.0, frame_time_jitter_s, size=n) if frame_time_jitter_s > 0 else np.zeros(n)
        )
        frame_time_all = epoch0 + frame_times[:n] + jitter
        texture = floor_texture(rng, height, width)
        noise_rng = np.random.default_rng(rng.integers(2**63))
        draw_led = serial in sync_serials

        def frames(
            keep=keep, texture=texture, noise_rng=noise_rng, draw_led=draw_led, serial=serial
        ):
            if pooled:
                pool = [_noisy_floor(texture, noise_rng) for _ in range(NOISE_POOL)]
            bar = progress_bar(
                total=len(keep),
                desc=f"camera {serial}",
                unit="frames",
                unit_scale=True,
                enabled=progress,
            )
            for k in keep:
                if pooled:
                    out = pool[noise_rng.integers(NOISE_POOL)].copy()
                    _draw_blobs_u8(out, positions[k], radius, yy, xx)
                    if draw_led:
                        _draw_leds(out, led_pixels[serial], bool(led_on[k]))
                else:
                    f = texture + noise_rng.normal(0.0, 1.5, size=texture.shape)
                    _draw_blobs(f, positions[k], radius, yy, xx)
                    if draw_led:
                        _draw_leds(f, led_pixels[serial], bool(led_on[k]))
                    out = np.clip(np.rint(f), 0, 255).astype(np.uint8)
                if frame_callback is not None:
                    frame_callback(out, serial, int(k))
                bar.update()
                yield out
            bar.close()

        meta = _metadata(
            rng,
            height,
            width,
            chunksize,
            NOMINAL_FPS,
            _created(video_stamp),
            {
                "camera_serial": serial,
                "motif_version": "5.2.0 (simulated)",
                "sync_camera": draw_led,
            },
        )
        store = (video_dir / f"{video_stamp}.{serial}", frames(), keep, frame_time_all[keep], height, width,
                 chunksize, NOMINAL_FPS, crf, meta, preset)  # fmt: skip
        jobs.append(store)
        truth_cams[serial] = {
            "frames": int(n),
            "fps_true": float(timeline.fps),
            "dropped": [int(i) for i in drop],
            "stored_frames": int(len(keep)),
        }
    # every camera's random state is drawn above, in camera order: the files do not depend on workers
    with ThreadPoolExecutor(max_workers=max(1, int(workers))) as pool:
        chunks = list(pool.map(lambda job: _write_store(*job), jobs))
    for serial, n_chunks in zip(truth_cams, chunks):
        truth_cams[serial]["chunks"] = n_chunks
    return {
        "video_stamp": video_stamp,
        "date_joint": video_stamp.replace("_", ""),
        "cameras": truth_cams,
        "led_pixels": {
            s: {k: [int(v) for v in led_pixels[s][k]] for k in LED_NAMES}
            for s in sync_serials
            if s in led_pixels and s in timeline.camera_frames
        },
        "resolution": [int(height), int(width)],
        "chunksize": int(chunksize),
        "epoch0": float(epoch0),
        "frame_time_jitter_s": float(frame_time_jitter_s),
        "sync_serials": [s for s in sync_serials if s in timeline.camera_frames],
    }


def checkerboard_frame(height: int, width: int, t: float, square: int | None = None) -> np.ndarray:
    """A checkerboard (uint8) drifting and swaying over a gray background at time ``t`` (s)."""
    square = square or max(4, min(height, width) // 8)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    ox = 0.25 * width * np.sin(0.7 * t)
    oy = 0.2 * height * np.sin(0.5 * t + 1.0)
    ang = 0.3 * np.sin(0.4 * t)
    cy, cx = height / 2 + oy, width / 2 + ox
    u = (xx - cx) * np.cos(ang) + (yy - cy) * np.sin(ang)
    v = -(xx - cx) * np.sin(ang) + (yy - cy) * np.cos(ang)
    board = (np.floor(u / square) + np.floor(v / square)) % 2
    inside = (np.abs(u) < 3 * square) & (np.abs(v) < 2 * square)
    return np.where(inside, np.where(board > 0, 235, 20), 128).astype(np.uint8)


def write_calibration_cameras(
    session_dir: str | os.PathLike,
    rng: np.random.Generator,
    video_stamp: str,
    serials: Iterable[str],
    n_frames: int = 20,
    fps: float = 10,
    height: int = 128,
    width: int = 160,
    epoch0: float = 1_746_024_000.0,
    crf: int = 15,
    frames: dict[str, list[np.ndarray]] | None = None,
) -> dict:
    """Write ``video/calibration_<video_stamp>.<serial>/{000000.mp4, 000000.npz, metadata.yaml}``.

    Every camera films the same moving checkerboard (placeholder for a ChArUco board) for ``n_frames``
    frames at ``fps``; ``frame_time = epoch0 + k / fps``. ``frames``: ``{serial: [uint8 frames]}`` to
    encode instead (e.g. a rendered ChArUco board at full resolution; they set ``n_frames`` and the
    frame size). Returns ``{"video_stamp", "date_joint", "cameras": {serial: {"frames", "fps_true"}},
    "resolution"}``.
    """
    _check_stamp(video_stamp)
    video_dir = Path(session_dir) / "video"
    truth = {}
    if frames is not None:
        first = next(iter(frames.values()))
        n_frames, (height, width) = len(first), first[0].shape
    for serial in (str(s) for s in serials):
        k = np.arange(n_frames, dtype=np.int64)
        if frames is not None:
            frames_iter = iter(frames[serial])
        else:
            frames_iter = (checkerboard_frame(height, width, float(i) / fps) for i in k)
        meta = _metadata(
            rng,
            height,
            width,
            max(n_frames, 1),
            fps,
            _created(video_stamp),
            {"camera_serial": serial, "motif_version": "5.2.0 (simulated)", "calibration": True},
        )
        _write_store(
            video_dir / f"calibration_{video_stamp}.{serial}",
            frames_iter,
            k,
            epoch0 + k / float(fps),
            height,
            width,
            max(n_frames, 1),
            fps,
            crf,
            meta,
        )
        truth[serial] = {"frames": int(n_frames), "fps_true": float(fps)}
    return {
        "video_stamp": video_stamp,
        "date_joint": video_stamp.replace("_", ""),
        "cameras": truth,
        "resolution": [int(height), int(width)],
    }
