"""Video staging (docs/original-pipeline.md step 4): frame-count summary, chunk concatenation,
re-encoding at the empirical rate.

Raw camera folders are only read; every product is written atomically at its own path.

Differences from the original (on purpose):

* **Empirical rate.** The original used ``frame_count / (t_last − t_first)``; that is ``N / ((N−1)·T)``,
  one frame period short in the denominator, and a single late/early timestamp at either end moves it.
  :func:`empirical_rate` fits ``frame_time = a + frame_number · T`` by least squares and returns
  ``1/T``: unbiased, robust to the per-frame timestamp jitter of the Loopbio clock, and, since it uses
  the camera's own frame counter, unaffected by dropped frames.
* **Video time.** ``total_video_time_least = total_frame_number_least / median_empirical_camera_sr``: the
  time spanned by N frame periods, from the onset of frame 0 to the onset of the frame after the last
  common frame. That is the window the audio and e-phys crops span; the original's ``t_last − t_first``
  spans N−1 periods (a one-frame bias).
* **No sentinels.** If no camera recorded without dropped frames the original wrote ``1e9`` sentinels;
  :func:`camera_frame_count_dict` raises :class:`InputError` instead.
* Every ffmpeg call is checked (see :mod:`usvflow.video.ffmpeg`) and the frame counts of the products
  are verified.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from usvflow.io.atomic import InputError, atomic_path
from usvflow.io.loopbio import LoopbioStore
from usvflow.video.ffmpeg import concat_list_line, count_frames, run_ffmpeg

#: decimals kept for the rates in ``camera_frame_count_dict.json``
RATE_DECIMALS = 6


def empirical_rate(frame_number, frame_time) -> float:
    """Empirical frame rate (frames per second) of one camera.

    Least-squares slope ``T`` of ``frame_time`` (s) regressed on ``frame_number`` (the camera's frame
    counter); returns ``1 / T``. Using the frame counter instead of the position in the file makes the
    rate immune to dropped frames; the fit averages out per-frame timestamp jitter (its error falls like
    ``σ / (N^1.5 · T)``), and it avoids the original's ``count / (t_last − t_first)`` off-by-one.
    """
    n = np.asarray(frame_number, dtype=np.float64).ravel()
    t = np.asarray(frame_time, dtype=np.float64).ravel()
    if n.shape != t.shape:
        raise ValueError(f"frame_number ({n.size}) and frame_time ({t.size}) differ in length")
    if n.size < 2:
        raise ValueError("at least two frames are needed to measure a frame rate")
    # centre both (epoch seconds ~1.7e9: subtracting first keeps full float64 precision)
    n = n - n.mean()
    t = t - t[0]
    t = t - t.mean()
    sxx = float(np.dot(n, n))
    if sxx == 0:
        raise ValueError("frame_number does not vary")
    slope = float(np.dot(n, t)) / sxx
    if not slope > 0:
        raise ValueError(f"frame_time does not increase with frame_number (slope {slope})")
    return 1.0 / slope


def camera_frame_count_dict(stores: Iterable[LoopbioStore]) -> dict:
    """Contents of ``video/<date_joint>_camera_frame_count_dict.json``.

    Keys (calibration stores are ignored):

    * ``<serial>``: ``[frame_count, empirical_rate]`` per camera (frames stored; rate from
      :func:`empirical_rate`, rounded to 6 decimals);
    * ``total_frame_number_least``: the fewest frames of any camera without dropped frames
      (``frame_count == frame_number[-1] − frame_number[0] + 1``);
    * ``total_video_time_least``: ``total_frame_number_least / median_empirical_camera_sr`` (s), the time
      spanned by that many frame periods (see the module docstring);
    * ``median_empirical_camera_sr``: median of the cameras' rates (all cameras: dropped frames do not
      bias the fitted rate), rounded to 6 decimals;
    * ``dropped_frames``: ``{serial: frames missing}`` for every camera (0 when clean).

    Raises :class:`InputError` if there is no non-calibration store, a serial appears twice, a store has
    fewer than two frames, or every camera dropped frames.
    """
    cams = [s for s in stores if not s.is_calibration]
    if not cams:
        raise InputError(None, "no (non-calibration) camera store to summarise")
    seen: dict[str, Path] = {}
    out: dict = {}
    rates: list[float] = []
    dropped: dict[str, int] = {}
    clean_counts: list[int] = []
    for st in cams:
        if st.serial in seen:
            raise InputError(st.path, f"camera {st.serial} also recorded in {seen[st.serial]}")
        seen[st.serial] = st.path
        if st.frame_count < 2:
            raise InputError(
                st.path, f"only {st.frame_count} frame(s): cannot measure a frame rate"
            )
        try:
            esr = empirical_rate(st.frame_number, st.frame_time)
        except ValueError as exc:
            raise InputError(st.path, str(exc)) from None
        out[st.serial] = [st.frame_count, round(esr, RATE_DECIMALS)]
        rates.append(esr)
        dropped[st.serial] = st.n_dropped
        if st.n_dropped == 0:
            clean_counts.append(st.frame_count)
    if not clean_counts:
        raise InputError(
            cams[0].path.parent,
            "every camera dropped frames ("
            + ", ".join(f"{k}: {v}" for k, v in dropped.items())
            + "): no frame count common to all cameras can be trusted",
        )
    median_sr = round(float(np.median(rates)), RATE_DECIMALS)
    n_least = int(min(clean_counts))
    out["total_frame_number_least"] = n_least
    out["total_video_time_least"] = n_least / median_sr
    out["median_empirical_camera_sr"] = median_sr
    out["dropped_frames"] = dropped
    return out


def _check_not_inside(out_path: Path, inputs: Iterable[Path]) -> None:
    """Refuse to write into a raw camera folder (the folder of any input chunk)."""
    out_dir = out_path.resolve().parent
    for p in inputs:
        if out_dir == Path(p).resolve().parent:
            raise ValueError(f"refusing to write {out_path} inside the raw input folder {out_dir}")


def concatenate_chunks(
    mp4_paths: Iterable[str | os.PathLike],
    out_mp4: str | os.PathLike,
    log=None,
    verify: bool = True,
) -> Path:
    """Join the chunks ``mp4_paths`` (in the given order) into ``out_mp4`` without re-encoding.

    Uses the ffmpeg concat demuxer with stream copy; the list file lives in a temporary folder (never in
    the camera folder) and names the chunks by absolute, safely quoted paths. A single chunk is copied.
    The output appears atomically. With ``verify`` the packet count of the output must equal the sum of
    the chunks' (RuntimeError otherwise).
    """
    paths = [Path(p) for p in mp4_paths]
    out_mp4 = Path(out_mp4)
    if not paths:
        raise ValueError("no chunk to concatenate")
    for p in paths:
        if not p.is_file():
            raise InputError(p, "video chunk not found")
    _check_not_inside(out_mp4, paths)
    with atomic_path(out_mp4) as tmp:
        if len(paths) == 1:
            shutil.copyfile(paths[0], tmp)
        else:
            with tempfile.TemporaryDirectory(prefix="usvflow-concat-") as td:
                lst = Path(td) / "chunks.txt"
                lst.write_text("".join(concat_list_line(p) for p in paths))
                # fmt: off
                args = [
                    "-v", "warning", "-y", "-f", "concat", "-safe", "0", "-i", lst, "-map", "0:v:0",
                    "-c", "copy", "-f", "mp4", tmp,
                ]
                # fmt: on
                run_ffmpeg(args, log=log, progress_desc=f"concatenate {out_mp4.name}")
        if verify and len(paths) > 1:
            want = sum(count_frames(p, decode=False) for p in paths)
            got = count_frames(tmp, decode=False)
            if got != want:
                raise RuntimeError(
                    f"{out_mp4}: concatenation holds {got} frames, the chunks {want}"
                )
    return out_mp4


def reencode(
    in_mp4: str | os.PathLike,
    out_mp4: str | os.PathLike,
    fps: float,
    crf: int = 16,
    preset: str = "veryfast",
    threads: int | None = None,
    log=None,
    verify: bool = True,
) -> Path:
    """Re-encode ``in_mp4`` to H.264 ``out_mp4`` with every frame re-stamped at ``fps``.

    ``ffmpeg -y -r <fps> -i in -fps_mode passthrough -c:v libx264 -crf <crf> -preset <preset>
    -pix_fmt yuv420p out``: the input-side ``-r`` discards the stored timestamps and stamps frame k at
    ``k / fps``; ``passthrough`` keeps every frame (none duplicated or dropped). The output appears
    atomically. With ``verify`` the output must hold as many frames as the input (RuntimeError otherwise).
    """
    in_mp4, out_mp4 = Path(in_mp4), Path(out_mp4)
    if not in_mp4.is_file():
        raise InputError(in_mp4, "video not found")
    if not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be positive, got {fps}")
    if in_mp4.resolve() == out_mp4.resolve():
        raise ValueError(f"cannot re-encode {in_mp4} onto itself")
    if _looks_raw(in_mp4):
        _check_not_inside(out_mp4, [in_mp4])
    thread_args = [] if threads is None else ["-threads", str(int(threads))]
    with atomic_path(out_mp4) as tmp:
        # fmt: off
        args = [
            "-v", "warning", "-y", "-r", repr(float(fps)), "-i", in_mp4, "-map", "0:v:0", "-fps_mode",
            "passthrough", "-c:v", "libx264", "-crf", str(crf), "-preset", preset, "-pix_fmt",
            "yuv420p", *thread_args, "-f", "mp4", tmp,
        ]
        # fmt: on
        want = count_frames(in_mp4, decode=False) if verify else None
        run_ffmpeg(args, log=log, progress_desc=f"re-encode {in_mp4.name}", progress_total=want)
        if verify:
            got = count_frames(tmp, decode=False)
            if got != want:
                raise RuntimeError(
                    f"{out_mp4}: re-encoded video holds {got} frames, {in_mp4} {want}"
                )
    return out_mp4


def _looks_raw(mp4: Path) -> bool:
    """Whether ``mp4`` is a chunk inside a raw camera folder (one with a metadata.yaml)."""
    return (mp4.parent / "metadata.yaml").is_file()
