"""Camera calibration from ChArUco footage with aniposelib (docs/original-pipeline.md step 7a).

Every camera's calibration video is decoded frame by frame (streamed), the board is detected in every
frame (``CharucoBoard.detect_image``; aniposelib's own ``detect_video`` skips frames), and
``CameraGroup.calibrate_rows`` initialises intrinsics and extrinsics and bundle-adjusts them. Frames
are matched across cameras by frame index (the cameras are triggered together). Units are the
board's (mm with the lab's 24 mm squares); the world frame is aniposelib's (arbitrary, rigid).

Outputs: the calibration TOML (aniposelib's format), a metadata HDF5 (per-camera detections, the
per-point reprojection errors of the final calibration, the board) and an SVG histogram of the
reprojection errors.
"""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path

import numpy as np

from ..io.atomic import InputError, atomic_path, save_figure
from ..io.config import setting_default
from ..io.progress import progress
from ._pool import process_pool

log = logging.getLogger(__name__)


def make_board(board_xy=None, square_len=None, marker_len_bits=None, dict_size=None):
    """aniposelib ``CharucoBoard`` from the config's ``pose.calibration`` values."""
    board_xy = setting_default("pose.calibration.board_xy", board_xy)
    square_len = setting_default("pose.calibration.square_len", square_len)
    marker_len_bits = setting_default("pose.calibration.marker_len_bits", marker_len_bits)
    dict_size = setting_default("pose.calibration.dict_size", dict_size)
    from aniposelib.boards import CharucoBoard

    bx, by = (int(v) for v in board_xy)
    mlen, bits = float(marker_len_bits[0]), int(marker_len_bits[1])
    if mlen >= square_len:
        raise ValueError(
            f"marker length {mlen} must be smaller than the square length {square_len}"
        )
    return CharucoBoard(bx, by, float(square_len), mlen, marker_bits=bits, dict_size=int(dict_size))


@contextlib.contextmanager
def seeded_global_numpy(seed: int):
    """Seed numpy's global generator (used by aniposelib) for the block; restore its state after."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def detect_video(video, board_kwargs: dict) -> tuple[list[dict], tuple[int, int]]:
    """Board detections in every frame of ``video``: aniposelib rows and the frame size (w, h)."""
    from ..video.ffmpeg import iter_frames

    board = make_board(**board_kwargs)
    rows, size = [], None
    try:
        for k, frame in enumerate(iter_frames(video, gray=True)):
            size = (frame.shape[1], frame.shape[0])
            corners, ids = board.detect_image(frame)
            if corners is not None and len(corners) > 0:
                rows.append({"framenum": k, "corners": corners, "ids": ids})
    except RuntimeError as exc:
        raise InputError(video, f"cannot decode the calibration video ({exc})") from None
    if size is None:
        raise InputError(video, "calibration video has no frames")
    return board.fill_points_rows(rows), size


def calibrate(
    videos: dict[str, str],
    board_kwargs: dict,
    out_toml,
    out_metadata,
    out_histogram,
    threads: int = 1,
    min_boards: int = 6,
    seed: int = 0,
) -> dict:
    """Calibrate the cameras ``{name: calibration video}``; write TOML, metadata HDF5 and histogram.

    Raises :class:`InputError` naming the video of a camera that saw the board in fewer than
    ``min_boards`` frames. Returns a summary (boards per camera, reprojection error percentiles).
    """
    from aniposelib.cameras import CameraGroup

    names = list(videos)
    workers = max(1, min(threads, len(names)))
    bar = dict(total=len(names), desc="calibration: board detection", unit="camera")
    if workers > 1:
        with process_pool(workers) as ex:
            done = ex.map(detect_video, [videos[n] for n in names], [board_kwargs] * len(names))
            results = list(progress(done, **bar))
    else:
        results = [detect_video(videos[n], board_kwargs) for n in progress(names, **bar)]
    all_rows = [r for r, _ in results]
    for n, rows in zip(names, all_rows):
        log.info("camera %s: board in %d frame(s)", n, len(rows))
        if len(rows) < min_boards:
            raise InputError(
                videos[n],
                f"ChArUco board detected in only {len(rows)} frame(s) (need >= {min_boards})",
            )
    board = make_board(**board_kwargs)
    cgroup = CameraGroup.from_names(names)
    for cam, (_, size) in zip(cgroup.cameras, results):
        cam.set_size(size)
    rows_posed = [[dict(r) for r in rows] for rows in all_rows]
    chatter = io.StringIO()  # aniposelib prints its progress
    with contextlib.redirect_stdout(chatter), seeded_global_numpy(seed):
        # calibrate_rows replaces each camera's rows by rows with board poses (rvec, tvec); it picks
        # boards and cameras with numpy's global generator, seeded here so that reruns are identical
        error = cgroup.calibrate_rows(
            rows_posed, board, init_intrinsics=True, init_extrinsics=True, verbose=False
        )
    log.debug("aniposelib: %s", chatter.getvalue())
    errors = reprojection_errors(cgroup, board, rows_posed)
    summary = {
        "cameras": names,
        "boards_per_camera": {n: len(r) for n, r in zip(names, all_rows)},
        "bundle_adjust_error": float(error),
        "reprojection_error_px": {
            "median": float(np.median(errors)) if errors.size else None,
            "p95": float(np.percentile(errors, 95)) if errors.size else None,
            "n_points": int(errors.size),
        },
    }
    out_toml = Path(out_toml)
    with atomic_path(out_toml) as tmp:
        cgroup.metadata = {"usvflow": "calibrated from ChArUco footage"}
        cgroup.dump(str(tmp))
    write_metadata(out_metadata, names, all_rows, errors, board_kwargs, summary)
    plot_histogram(errors, out_histogram)
    return summary


def reprojection_errors(cgroup, board, all_rows) -> np.ndarray:
    """Per-point reprojection errors (px) of the boards seen by at least two cameras (rows with poses)."""
    from aniposelib.boards import extract_points, merge_rows

    rows = [[dict(r) for r in cam_rows] for cam_rows in all_rows]
    merged = merge_rows(rows)
    imgp, _ = extract_points(merged, board, min_cameras=2)
    p3d = cgroup.triangulate(imgp, undistort=True)
    err = cgroup.reprojection_error(p3d, imgp, mean=False)  # (C, N, 2)
    d = np.linalg.norm(err, axis=-1)
    return d[np.isfinite(d)]


def write_metadata(path, names, all_rows, errors, board_kwargs, summary) -> None:
    import json

    import h5py

    with atomic_path(Path(path)) as tmp:
        with h5py.File(tmp, "w") as h:
            h.attrs["summary"] = json.dumps(summary)
            h.attrs["board"] = json.dumps(
                {k: list(v) if isinstance(v, tuple) else v for k, v in board_kwargs.items()}
            )
            h.create_dataset("reprojection_errors_px", data=errors.astype(np.float64))
            for n, rows in zip(names, all_rows):
                g = h.create_group(f"detections/{n}")
                g.create_dataset(
                    "frames", data=np.array([r["framenum"] for r in rows], dtype=np.int64)
                )
                g.create_dataset(
                    "n_corners", data=np.array([len(r["ids"]) for r in rows], dtype=np.int32)
                )


def plot_histogram(errors: np.ndarray, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    if errors.size:
        ax.hist(np.clip(errors, 0, np.percentile(errors, 99.5)), bins=50, color="0.3")
        ax.axvline(np.median(errors), color="C3", label=f"median {np.median(errors):.2f} px")
        ax.legend(frameon=False)
    ax.set_xlabel("reprojection error (px)")
    ax.set_ylabel("board corners")
    ax.set_title("calibration reprojection errors")
    fig.tight_layout()
    save_figure(fig, path, "svg")
    plt.close(fig)


def compare_calibrations(estimated, truth) -> dict:
    """Camera position (world units) and orientation (degrees) errors of ``estimated`` against ``truth``
    (aniposelib ``CameraGroup`` or TOML paths, same camera names) after the best rigid alignment of the
    two world frames (a calibration's world frame is arbitrary): ``{"position": {name: err},
    "orientation_deg": {name: err}}``."""
    import cv2
    from aniposelib.cameras import CameraGroup

    est = CameraGroup.load(str(estimated)) if not hasattr(estimated, "cameras") else estimated
    tru = CameraGroup.load(str(truth)) if not hasattr(truth, "cameras") else truth
    tru = tru.subset_cameras_names(est.get_names())
    rot = lambda c: cv2.Rodrigues(np.asarray(c.get_rotation(), float))[0]  # noqa: E731
    Re = [rot(c) for c in est.cameras]
    Rt = [rot(c) for c in tru.cameras]
    ce = np.array([-R.T @ np.asarray(c.get_translation(), float) for R, c in zip(Re, est.cameras)])
    ct = np.array([-R.T @ np.asarray(c.get_translation(), float) for R, c in zip(Rt, tru.cameras)])
    # world_true = A @ world_est + b; camera rotations give A (R_true = R_est @ A^T)
    U, _, Vt = np.linalg.svd(sum(rt.T @ re for re, rt in zip(Re, Rt)))
    A = U @ Vt
    b = (ct - ce @ A.T).mean(axis=0)
    pos = np.linalg.norm(ce @ A.T + b - ct, axis=1)
    ang = [
        np.degrees(np.arccos(np.clip((np.trace(re @ A.T @ rt.T) - 1) / 2, -1, 1)))
        for re, rt in zip(Re, Rt)
    ]
    names = est.get_names()
    return {
        "position": dict(zip(names, pos.tolist())),
        "orientation_deg": dict(zip(names, map(float, ang))),
    }
