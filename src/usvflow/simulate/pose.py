"""Simulated pose streams: 3D skeletons, known cameras, per-camera SLEAP files, ChArUco footage, arena labels.

The truth lives in two frames:

* the **arena frame** (metres; :mod:`usvflow.simulate.geometry`), the frame the re-coordinate step must
  recover;
* the **lab frame** of the cameras (millimetres, like a ChArUco calibration with 24 mm squares): an
  arbitrary rigid transform of the arena frame, ``X_lab = 1000 · R_LAB @ X_arena + T_LAB_MM``. The true
  cameras (an aniposelib ``CameraGroup`` dumped as ``calibration.toml``) are expressed in it, so that
  triangulation returns lab-frame millimetres and only the re-coordinate step brings them back.

Five cameras (1280×1024 px, no lens distortion) look at the arena: one from above and four obliquely
from the sides. Per camera, the animals' 15-node skeletons are projected and written as a SLEAP
prediction file (sleap-io) with 2D noise, occasional outliers (low scores), bursts of missing nodes
(occlusion) and two consistent tracks; the calibration session gets ChArUco footage (board posed in
many positions) and, in every view, a hand labelling of its first frame with the 28-node arena
skeleton (corners ``North, West, South, East`` and microphones ``ch_0 … ch_23``).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np

from ..io.atomic import atomic_path
from .geometry import (
    ARENA_SIDE_M,
    MOUSE_SKELETON,
    AnimalTracks,
    arena_corners,
    microphone_positions,
)

CAMERA_SIZE = (1280, 1024)
"""(width, height) of the simulated cameras (pixels), as the real FLIR Blackfly S."""

ARENA_NODES = ("North", "West", "South", "East") + tuple(f"ch_{j}" for j in range(24))
"""The arena labelling skeleton (``playpen_skeleton.json`` node order)."""

MOUSE_EDGES = (
    ("Nose", "Head"), ("Head", "Ear_R"), ("Head", "Ear_L"), ("Head", "Neck"), ("Neck", "Shoulder_left"),
    ("Neck", "Shoulder_right"), ("Neck", "Trunk"), ("Trunk", "Haunch_left"), ("Trunk", "Haunch_right"),
    ("Trunk", "TTI"), ("TTI", "Tail_0"), ("Tail_0", "Tail_1"), ("Tail_1", "Tail_2"), ("Tail_2", "TailTip"),
)  # fmt: skip

# Body-frame offsets from the head (m): x forward along the body axis, y to the left, z up.
_BODY = {
    "Ear_R": (-0.008, -0.010, 0.006), "Ear_L": (-0.008, 0.010, 0.006), "Neck": (-0.018, 0.0, -0.002),
    "Shoulder_left": (-0.028, 0.012, -0.010), "Shoulder_right": (-0.028, -0.012, -0.010),
    "Trunk": (-0.045, 0.0, -0.004), "Haunch_left": (-0.066, 0.013, -0.010),
    "Haunch_right": (-0.066, -0.013, -0.010), "TTI": (-0.086, 0.0, -0.014), "Tail_0": (-0.105, 0.0, -0.020),
    "Tail_1": (-0.128, 0.0, -0.024), "Tail_2": (-0.152, 0.0, -0.026), "TailTip": (-0.180, 0.0, -0.028),
}  # fmt: skip

R_LAB = None  # set below
T_LAB_MM = np.array([143.0, -87.0, 1012.0])


def _rot(axis: str, a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


R_LAB = _rot("z", math.radians(23.0)) @ _rot("x", math.radians(-2.5)) @ _rot("y", math.radians(1.5))


def arena_to_lab_mm(x_arena) -> np.ndarray:
    """Arena-frame metres (…, 3) → lab-frame millimetres (…, 3)."""
    return 1000.0 * np.asarray(x_arena, dtype=np.float64) @ R_LAB.T + T_LAB_MM


def lab_mm_to_arena(x_lab) -> np.ndarray:
    """Inverse of :func:`arena_to_lab_mm`."""
    return ((np.asarray(x_lab, dtype=np.float64) - T_LAB_MM) @ R_LAB) / 1000.0


def arena_points() -> np.ndarray:
    """True positions (28, 3) of the arena labelling nodes (:data:`ARENA_NODES`), arena frame (m)."""
    c = arena_corners(ARENA_SIDE_M)
    return np.concatenate([np.stack([c["N"], c["W"], c["S"], c["E"]]), microphone_positions()])


# --------------------------------------------------------------------------------------------- skeletons


def skeleton_points(tracks: AnimalTracks, t) -> np.ndarray:
    """The 15-node skeletons (n_t, n_animals, 15, 3) in the arena frame (m) at true times ``t``.

    Head and nose come from ``tracks``; the body follows a lagged body yaw (the body turns behind the
    head) and the tail sways. Nodes stay above the floor (``z >= 2 mm``).
    """
    t = np.asarray(t, dtype=np.float64)
    out = np.empty((len(t), tracks.n_animals, len(MOUSE_SKELETON), 3))
    idx = {n: i for i, n in enumerate(MOUSE_SKELETON)}
    for a in range(tracks.n_animals):
        head = tracks.position_at(a, "Head", t)
        nose = tracks.position_at(a, "Nose", t)
        yaw = tracks.heading_at(a, t)
        # body yaw: exponential lag (0.25 s) of the head yaw on the track's own grid
        tg, hg = tracks.t, tracks.heading[a]
        alpha = min(1.0, (tg[1] - tg[0]) / 0.25) if len(tg) > 1 else 1.0
        body = np.empty_like(hg)
        acc = hg[0]
        for i, h in enumerate(hg):
            acc += alpha * (h - acc)
            body[i] = acc
        byaw = np.interp(t, tg, body)
        sway = 0.35 * np.sin(2 * np.pi * 0.7 * t + a)
        out[:, a, idx["Head"]] = head
        out[:, a, idx["Nose"]] = nose
        for name, (bx, by, bz) in _BODY.items():
            # ears follow the head yaw, the rest the body yaw; tail nodes sway progressively
            ang = yaw if name.startswith("Ear") else byaw
            if name.startswith("Tail"):
                ang = byaw + sway * (-bx - 0.09) / 0.09
            c, s = np.cos(ang), np.sin(ang)
            p = np.stack(
                [head[:, 0] + c * bx - s * by, head[:, 1] + s * bx + c * by, head[:, 2] + bz],
                axis=-1,
            )
            p[:, 2] = np.maximum(p[:, 2], 0.002)
            out[:, a, idx[name]] = p
    return out


# --------------------------------------------------------------------------------------------- cameras


def _look_at(center, target, up, roll):
    z = np.asarray(target, float) - center
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z])  # world -> camera (rows are the camera axes)
    return _rot("z", roll) @ R


def camera_group(serials):
    """The true cameras (aniposelib ``CameraGroup``, lab frame, mm), one per serial, deterministic.

    Camera 0 looks down from 1.05 m above the arena centre; the others look obliquely from the sides
    (0.72 m out, 0.62–0.70 m up) at the arena centre. Focal lengths 1000–1150 px, principal point at
    the image centre, square pixels, no distortion (the model aniposelib calibrates).
    """
    import cv2
    from aniposelib.cameras import Camera, CameraGroup

    w, h = CAMERA_SIZE
    cams = []
    for i, serial in enumerate(serials):
        if i == 0:
            c_ar = np.array([0.012, -0.018, 1.05])
            R_ar = _look_at(c_ar, [0.0, 0.0, 0.0], np.array([0.0, 1.0, 0.0]), 0.03)
            f = 1010.0
        else:
            az = math.radians(20.0 + 90.0 * (i - 1) + 7.0 * i)
            c_ar = np.array([0.72 * math.cos(az), 0.72 * math.sin(az), 0.62 + 0.02 * i])
            R_ar = _look_at(c_ar, [0.0, 0.0, 0.03], np.array([0.0, 0.0, 1.0]), 0.02 * (-1) ** i)
            f = 1100.0 + 12.0 * i
        R = R_ar @ R_LAB.T  # lab -> camera
        center = arena_to_lab_mm(c_ar)
        tvec = -R @ center
        # aniposelib's pinhole model: principal point at the image centre, square pixels
        K = np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1.0]])
        rvec = cv2.Rodrigues(R)[0].ravel()
        cams.append(
            Camera(matrix=K, dist=np.zeros(5), size=(w, h), rvec=rvec, tvec=tvec, name=str(serial))
        )
    return CameraGroup(cams)


def camera_centers(cgroup) -> np.ndarray:
    """Camera centres (n_cams, 3) in the group's world frame."""
    import cv2

    out = []
    for cam in cgroup.cameras:
        R = cv2.Rodrigues(np.asarray(cam.get_rotation(), float))[0]
        out.append(-R.T @ np.asarray(cam.get_translation(), float))
    return np.array(out)


def project(cgroup, pts_lab: np.ndarray) -> np.ndarray:
    """Pixel positions (n_cams, …, 2) of lab-frame points (…, 3); NaN where out of image or behind."""
    pts = np.asarray(pts_lab, dtype=np.float64)
    out = np.stack([project_camera(cam, pts) for cam in cgroup.cameras])
    return out.reshape((len(cgroup.cameras),) + pts.shape[:-1] + (2,))


def project_camera(cam, pts_lab: np.ndarray) -> np.ndarray:
    """:func:`project` through one camera: pixel positions (…, 2), NaN where out of image or behind."""
    import cv2

    pts = np.asarray(pts_lab, dtype=np.float64)
    flat = pts.reshape(-1, 3)
    out = np.full((len(flat), 2), np.nan)
    R = cv2.Rodrigues(np.asarray(cam.get_rotation(), float))[0]
    pc = flat @ R.T + np.asarray(cam.get_translation(), float)
    K = cam.get_camera_matrix()
    with np.errstate(invalid="ignore", divide="ignore"):
        uv = pc[:, :2] / pc[:, 2:3] @ K[:2, :2].T + K[:2, 2]
    w, h = cam.get_size()
    ok = (pc[:, 2] > 1.0) & (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)
    out[ok] = uv[ok]
    return out.reshape(pts.shape[:-1] + (2,))


# --------------------------------------------------------------------------------------------- SLEAP files


def mouse_skeleton():
    import sleap_io as sio

    return sio.Skeleton(
        nodes=list(MOUSE_SKELETON), edges=[list(e) for e in MOUSE_EDGES], name="mouse"
    )


def arena_skeleton():
    import sleap_io as sio

    return sio.Skeleton(nodes=list(ARENA_NODES), edges=[], name="playpen")


def noisy_detections(
    rng: np.random.Generator,
    clean: np.ndarray,
    noise_px: float = 1.5,
    p_miss: float = 0.04,
    miss_burst: float = 5.0,
    p_outlier: float = 0.004,
) -> np.ndarray:
    """SLEAP-like detections from clean projections ``clean`` (n_frames, n_tracks, n_nodes, 2).

    Gaussian noise (``noise_px`` per axis), bursts of missing nodes (occlusions: each node of each
    track drops out with stationary probability ``p_miss`` in bursts of mean ``miss_burst`` frames; the
    tail tip twice as often), and outliers (10–40 px off, low score) with probability ``p_outlier``.
    Returns (n_frames, n_tracks, n_nodes, 3): x, y, score (NaN where missing).
    """
    n, k, j, _ = clean.shape
    p_end = 1.0 / miss_burst
    p_start = np.full((k, j), p_miss * p_end / (1 - p_miss))
    if "TailTip" in MOUSE_SKELETON and j == len(MOUSE_SKELETON):
        p_start[:, MOUSE_SKELETON.index("TailTip")] *= 2
    u = rng.random((n, k, j))
    missing = np.empty((n, k, j), dtype=bool)
    state = rng.random((k, j)) < p_miss
    for i in range(n):
        state = np.where(state, u[i] >= p_end, u[i] < p_start)
        missing[i] = state
    xy = clean + rng.normal(0.0, noise_px, size=clean.shape)
    score = np.clip(rng.normal(0.9, 0.05, size=(n, k, j)), 0.5, 1.0)
    out = rng.random((n, k, j)) < p_outlier
    if out.any():
        ang = rng.uniform(0, 2 * np.pi, size=out.sum())
        r = rng.uniform(10, 40, size=out.sum())
        xy[out] += np.stack([r * np.cos(ang), r * np.sin(ang)], axis=-1)
        score[out] = rng.uniform(0.2, 0.5, size=out.sum())
    res = np.concatenate([xy, score[..., None]], axis=-1)
    res[missing | ~np.isfinite(clean[..., 0])] = np.nan
    return res


def write_slp(
    path, points: np.ndarray, skeleton, track_names, video_path: str, predicted: bool = True
) -> None:
    """Write a SLEAP ``.slp`` (sleap-io) of ``points`` (n_frames, n_tracks, n_nodes, 3: x, y, score).

    ``predicted``: instances are predictions (with scores) as from SLEAP inference; otherwise user
    labels. ``track_names`` empty → untracked instances. Frames without any point are left out.
    """
    import sleap_io as sio

    video = sio.Video(filename=str(video_path), open_backend=False)
    tracks = [sio.Track(name=str(t)) for t in track_names]
    if predicted:
        _write_predictions_slp(Path(path), points, skeleton, tracks, video)
        return
    lfs = []
    for f in range(points.shape[0]):
        insts = []
        for k in range(points.shape[1]):
            p = points[f, k]
            if not np.isfinite(p[:, 0]).any():
                continue
            track = tracks[k] if tracks else None
            if predicted:
                sc = np.nan_to_num(p[:, 2], nan=0.0)
                score = float(np.nanmean(p[:, 2]))
                insts.append(sio.PredictedInstance.from_numpy(
                    points_data=p[:, :2], point_scores=sc, score=score, skeleton=skeleton, track=track,
                    tracking_score=1.0))  # fmt: skip
            else:
                insts.append(sio.Instance.from_numpy(p[:, :2], skeleton=skeleton, track=track))
        if insts:
            lfs.append(sio.LabeledFrame(video=video, frame_idx=f, instances=insts))
    labels = sio.Labels(labeled_frames=lfs, videos=[video], skeletons=[skeleton], tracks=tracks)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        sio.save_slp(labels, str(tmp))


def _write_predictions_slp(path: Path, points: np.ndarray, skeleton, tracks, video) -> None:
    """:func:`write_slp` of predictions without one Python object per instance.

    sleap-io writes the file's metadata (skeleton, tracks, video) with no frames; the frame,
    instance and point tables are then written as the structured arrays sleap-io's writer builds
    (same fields and order: frames with at least one point, instances in track order, missing
    points NaN and not visible, score 0). 180,000 frames take seconds instead of minutes.
    """
    import h5py
    import sleap_io as sio

    n_frames, n_tracks, n_nodes, _ = points.shape
    has = np.isfinite(points[..., 0]).any(axis=2)  # (frames, tracks): an instance
    f_idx, k_idx = np.nonzero(has)  # frame-major, tracks in order within a frame
    n_inst = len(f_idx)
    frames_with = np.flatnonzero(has.any(axis=1))
    per_frame = has.sum(axis=1)[frames_with]
    frame_id = np.repeat(np.arange(len(frames_with)), per_frame)
    p = points[f_idx, k_idx]  # (n_inst, n_nodes, 3)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        inst_score = np.nanmean(p[..., 2], axis=1)
    frame_dt = np.dtype([("frame_id", "<u8"), ("video", "<u4"), ("frame_idx", "<u8"),
                         ("instance_id_start", "<u8"), ("instance_id_end", "<u8")])  # fmt: skip
    inst_dt = np.dtype([("instance_id", "<i8"), ("instance_type", "u1"), ("frame_id", "<u8"), ("skeleton", "<u4"),
                        ("track", "<i4"), ("from_predicted", "<i8"), ("score", "<f4"), ("point_id_start", "<u8"),
                        ("point_id_end", "<u8"), ("tracking_score", "<f4")])  # fmt: skip
    pt_dt = np.dtype(
        [("x", "<f8"), ("y", "<f8"), ("visible", "?"), ("complete", "?"), ("score", "<f8")]
    )
    fr = np.zeros(len(frames_with), frame_dt)
    fr["frame_id"] = np.arange(len(frames_with))
    fr["frame_idx"] = frames_with
    ends = np.cumsum(per_frame)
    fr["instance_id_start"], fr["instance_id_end"] = ends - per_frame, ends
    ins = np.zeros(n_inst, inst_dt)
    ins["instance_id"] = np.arange(n_inst)
    ins["instance_type"] = 1  # predicted
    ins["frame_id"] = frame_id
    ins["track"] = k_idx if tracks else -1
    ins["from_predicted"] = -1
    ins["score"] = inst_score
    ins["point_id_start"] = np.arange(n_inst) * n_nodes
    ins["point_id_end"] = ins["point_id_start"] + n_nodes
    ins["tracking_score"] = 1.0
    pts = np.zeros(n_inst * n_nodes, pt_dt)
    flat = p.reshape(-1, 3)
    pts["x"], pts["y"] = flat[:, 0], flat[:, 1]
    pts["visible"] = ~np.isnan(flat[:, 0]) & ~np.isnan(flat[:, 1])
    pts["score"] = np.nan_to_num(flat[:, 2], nan=0.0)
    labels = sio.Labels(labeled_frames=[], videos=[video], skeletons=[skeleton], tracks=tracks)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        sio.save_slp(labels, str(tmp))
        with h5py.File(tmp, "a") as h:
            for name, data in (("frames", fr), ("instances", ins), ("pred_points", pts)):
                del h[name]
                h.create_dataset(name, data=data, dtype=data.dtype)


# --------------------------------------------------------------------------------------------- ChArUco


def charuco_board(cfg: dict | None = None):
    """The aniposelib ``CharucoBoard`` of the config's ``pose.calibration`` (defaults: the lab's board)."""
    from aniposelib.boards import CharucoBoard

    cfg = cfg or {}
    bx, by = cfg.get("board_xy", [8, 11])
    mlen, bits = cfg.get("marker_len_bits", [18.75, 4])
    return CharucoBoard(int(bx), int(by), float(cfg.get("square_len", 24)), float(mlen),
                        marker_bits=int(bits), dict_size=int(cfg.get("dict_size", 1000)))  # fmt: skip


def board_poses(rng: np.random.Generator, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` poses (R, t) of the board in the arena frame (board mm → arena m): over the arena floor,
    3–25 cm up, tilted up to 40° in random directions, its printed face up."""
    poses = []
    for _ in range(n):
        yaw = rng.uniform(-np.pi, np.pi)
        tilt = math.radians(rng.uniform(0, 40))
        tdir = rng.uniform(-np.pi, np.pi)
        # board z (into the print) points down; then tilt about a horizontal axis, then yaw
        R0 = np.diag([1.0, -1.0, -1.0])
        axis = np.array([math.cos(tdir), math.sin(tdir), 0.0])
        import cv2

        Rt = cv2.Rodrigues(axis * tilt)[0]
        R = _rot("z", yaw) @ Rt @ R0 / 1000.0  # mm -> m
        centre = np.array(
            [rng.uniform(-0.17, 0.17), rng.uniform(-0.17, 0.17), rng.uniform(0.03, 0.25)]
        )
        poses.append((R, centre))
    return poses


def render_charuco_frames(cgroup, board, poses, rng: np.random.Generator, size=CAMERA_SIZE):
    """Per camera a list of uint8 frames (height, width) of the board at ``poses`` through ``cgroup``.

    The printed board image is mapped onto the camera by its homography (no distortion), over a
    gray noisy background; a camera that sees the board's back or too obliquely (> 75°) sees none.
    """
    import cv2

    w, h = size
    bx, by = board.board.getChessboardSize()
    sq = board.square_length
    ppm = 2.0  # board image pixels per mm (about the projected scale: little aliasing)
    img = board.board.generateImage((int(bx * sq * ppm), int(by * sq * ppm)), marginSize=0)
    S = np.diag([1.0 / ppm, 1.0 / ppm, 1.0])  # board image px -> board mm
    frames = [[] for _ in cgroup.cameras]
    bg_base = 110 + 20 * rng.random((h // 16 + 1, w // 16 + 1))
    bg = cv2.resize(bg_base, (w, h), interpolation=cv2.INTER_CUBIC)
    for R_b, c_b in poses:
        # board mm -> arena m: X = R_b @ x + c_b - R_b @ (board centre)
        off = np.array([bx * sq / 2, by * sq / 2, 0.0])
        for ci, cam in enumerate(cgroup.cameras):
            R = cv2.Rodrigues(np.asarray(cam.get_rotation(), float))[0]
            t = np.asarray(cam.get_translation(), float)
            # board mm -> lab mm: 1000*R_LAB@(R_b@(x-off)+c_b) + T
            A = 1000.0 * R_LAB @ R_b
            b = 1000.0 * R_LAB @ (c_b - R_b @ off) + T_LAB_MM
            Rc, tc = R @ A, R @ b + t  # board mm -> camera mm
            K = cam.get_camera_matrix()
            frame = bg + rng.normal(0, 2.0, size=(h, w))
            normal_cam = Rc[:, 2] / np.linalg.norm(Rc[:, 2])
            centre_cam = Rc @ off + tc
            cosang = float(normal_cam @ centre_cam / np.linalg.norm(centre_cam))
            if cosang > math.cos(math.radians(75)):  # front face visible
                H = K @ np.column_stack([Rc[:, 0], Rc[:, 1], tc]) @ S
                warped = cv2.warpPerspective(img.astype(np.float32), H, (w, h), flags=cv2.INTER_LINEAR,
                                             borderMode=cv2.BORDER_CONSTANT, borderValue=-1)  # fmt: skip
                mask = cv2.warpPerspective(
                    np.ones_like(img, dtype=np.float32), H, (w, h), flags=cv2.INTER_LINEAR
                )
                inside = mask > 0.5
                frame[inside] = (
                    20 + 0.85 * warped[inside] + rng.normal(0, 2.0, size=int(inside.sum()))
                )
            frame = cv2.GaussianBlur(frame, (0, 0), 0.6)  # optics
            frames[ci].append(np.clip(np.rint(frame), 0, 255).astype(np.uint8))
    return frames


# --------------------------------------------------------------------------------------------- sessions


def write_session_pose(
    session_dir,
    truth_dir,
    cgroup,
    tracks: AnimalTracks,
    frame_times_s: np.ndarray,
    n_frames: dict,
    date_joint: str,
    rng: np.random.Generator,
    noise_px: float = 1.5,
    proofread: bool = False,
) -> dict:
    """Write ``video/<date_joint>/<serial>/<serial>-<date_joint>.predictions.slp`` for every camera.

    Camera ``serial`` has ``n_frames[serial]`` frames at true times ``frame_times_s``; the 3D truth is
    saved to ``truth_dir/pose_truth.npz`` (``points3d`` (n_frames, 2, 15, 3) arena m, ``node_names``,
    ``track_names``). ``proofread`` also writes the proofread ``<serial>-<date_joint>.slp`` (the same
    content: the simulated predictions have no identity errors). Returns the truth dict.
    """
    session_dir, truth_dir = Path(session_dir), Path(truth_dir)
    n_max = max(n_frames.values())
    pts = skeleton_points(tracks, frame_times_s[:n_max])
    truth_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(truth_dir / "pose_truth.npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(
                fh,
                points3d=pts,
                node_names=np.array(MOUSE_SKELETON),
                track_names=np.array(tracks.names),
            )
    pts_lab = arena_to_lab_mm(pts)
    del pts
    skel = mouse_skeleton()
    files = {}
    for cam in cgroup.cameras:  # one camera's projections at a time
        serial = cam.get_name()
        uv = project_camera(cam, pts_lab[: n_frames[serial]])  # (n, 2, 15, 2)
        det = noisy_detections(rng, uv, noise_px=noise_px)
        del uv
        d = session_dir / "video" / date_joint / serial
        video = d / f"{serial}-{date_joint}.mp4"
        write_slp(d / f"{serial}-{date_joint}.predictions.slp", det, skel, tracks.names, str(video))
        if proofread:
            write_slp(d / f"{serial}-{date_joint}.slp", det, skel, tracks.names, str(video))
        files[serial] = {
            "frames": int(n_frames[serial]),
            "visible_fraction": float(np.isfinite(det[..., 0]).mean()),
        }
    return {
        "truth_file": str(truth_dir / "pose_truth.npz"),
        "track_names": list(tracks.names),
        "node_names": list(MOUSE_SKELETON),
        "noise_px": noise_px,
        "cameras": files,
    }


def write_arena_labels(
    session_dir, cgroup, date_joint: str, rng: np.random.Generator, noise_px: float = 0.5
) -> dict:
    """Hand labels of the arena (28 nodes) on frame 0 of every view of the calibration session:
    ``video/<date_joint>/<serial>/<serial>-<date_joint>.slp`` (user instances, untracked)."""
    session_dir = Path(session_dir)
    uv = project(cgroup, arena_to_lab_mm(arena_points()))  # (C, 28, 2)
    skel = arena_skeleton()
    for ci, cam in enumerate(cgroup.cameras):
        serial = cam.get_name()
        p = uv[ci] + rng.normal(0, noise_px, size=uv[ci].shape)
        pts = np.concatenate([p, np.ones((len(p), 1))], axis=-1)[None, None]
        d = session_dir / "video" / date_joint / serial
        video = d / "calibration_images" / f"{serial}-{date_joint}-calibration.mp4"
        write_slp(d / f"{serial}-{date_joint}.slp", pts, skel, [], str(video), predicted=False)
    return {
        "node_names": list(ARENA_NODES),
        "points_arena_m": arena_points().tolist(),
        "visible_views": np.isfinite(uv[..., 0]).sum(axis=0).tolist(),
        "noise_px": noise_px,
    }


def lab_transform_truth() -> dict:
    """The arena→lab transform (for the ground truth JSON)."""
    return {"R_lab": R_LAB.tolist(), "t_lab_mm": T_LAB_MM.tolist(), "scale": 1000.0}


class PosePainter:
    """Draws the animals' projected skeletons into a camera's frames (``frame_callback`` of
    :func:`usvflow.simulate.video.write_loopbio_cameras`), so that a pose model can be trained on and run
    over the simulated videos: per view, a dark body along the skeleton's edges and one bright disc per
    node, a distinct gray level per node. Frames of another size than the cameras' 1280×1024 show the
    projections scaled to it. ``no_animals`` is the ``animal_xy`` that leaves out the default blobs.
    """

    BODY_LEVEL = 45

    def __init__(self, cgroup, tracks: AnimalTracks, frame_times_s, n_frames: int, frame_size):
        height, width = frame_size
        w, h = CAMERA_SIZE
        pts_lab = arena_to_lab_mm(skeleton_points(tracks, np.asarray(frame_times_s)[:n_frames]))
        self.scale = np.array([width / w, height / h])
        self.uv = {
            cam.get_name(): project_camera(cam, pts_lab) * self.scale for cam in cgroup.cameras
        }
        self.edges = [(MOUSE_SKELETON.index(a), MOUSE_SKELETON.index(b)) for a, b in MOUSE_EDGES]
        n = len(MOUSE_SKELETON)
        self.levels = [int(v) for v in np.linspace(255, 125, n)]
        self.radius = max(1, int(round(5 * self.scale[0])))
        self.thickness = max(1, int(round(9 * self.scale[0])))

    @staticmethod
    def no_animals(t: float) -> np.ndarray:
        return np.zeros((0, 2))

    def __call__(self, frame: np.ndarray, serial: str, k: int) -> None:
        import cv2

        uv = self.uv.get(str(serial))
        if uv is None or k >= len(uv):
            return
        for animal in uv[k]:  # (n_nodes, 2)
            ok = np.isfinite(animal[:, 0])
            for a, b in self.edges:
                if ok[a] and ok[b]:
                    pa, pb = np.rint(animal[[a, b]]).astype(int)
                    cv2.line(
                        frame,
                        (int(pa[0]), int(pa[1])),
                        (int(pb[0]), int(pb[1])),
                        self.BODY_LEVEL,
                        self.thickness,
                        cv2.LINE_AA,
                    )
            for j in np.flatnonzero(ok):
                p = (int(round(animal[j, 0])), int(round(animal[j, 1])))
                cv2.circle(frame, p, self.radius, self.levels[j], -1, cv2.LINE_AA)


class PoseSimulator:
    """The pose part of a simulated cohort (used by :func:`usvflow.simulate.cohort.simulate_cohort`).

    Holds its own random generator (so the other streams draw the same numbers with or without it),
    the true cameras and where the truth goes.
    """

    def __init__(self, truth_root, serials, seed: int, n_board_poses: int = 24, noise_px: float = 1.5,
                 proofread: bool = False):  # fmt: skip
        self.rng = np.random.default_rng([int(seed), 0x9053])
        self.truth_root = Path(truth_root)
        self.cgroup = camera_group([str(s) for s in serials])
        self.n_board_poses = n_board_poses
        self.noise_px = noise_px
        self.proofread = proofread

    def animals(self, timeline) -> AnimalTracks:
        """Trajectories covering the frames and every audio device's recording."""
        from .geometry import simulate_animals

        ft = timeline.frame_times_s
        starts = [c.start_s for c in timeline.audio.values()] + [float(ft[0])]
        ends = [c.start_s + timeline.audio_duration_s[d] for d, c in timeline.audio.items()] + [
            float(ft[-1])
        ]
        return simulate_animals(self.rng, min(starts) - 0.2, max(ends) + 0.2)

    def painter(self, timeline, tracks: AnimalTracks, frame_size) -> PosePainter:
        """The :class:`PosePainter` of a session's experiment videos."""
        n = max(timeline.camera_frames.values())
        return PosePainter(self.cgroup, tracks, timeline.frame_times_s, n, frame_size)

    def session(self, folder, sid: str, timeline, video_truth: dict, tracks: AnimalTracks) -> dict:
        n_frames = {s: c["frames"] for s, c in video_truth["cameras"].items()}
        return write_session_pose(
            folder, self.truth_root / sid, self.cgroup, tracks, timeline.frame_times_s, n_frames,
            video_truth["date_joint"], self.rng, noise_px=self.noise_px, proofread=self.proofread,
        )  # fmt: skip

    def calibration_frames(self) -> dict:
        """``{serial: [frames]}`` of the ChArUco footage (board in ``n_board_poses`` poses)."""
        board = charuco_board()
        poses = board_poses(self.rng, self.n_board_poses)
        frames = render_charuco_frames(self.cgroup, board, poses, self.rng)
        return {cam.get_name(): f for cam, f in zip(self.cgroup.cameras, frames)}

    def calibration(self, folder, sid: str, date_joint: str) -> dict:
        """Arena labels of the calibration session + the true calibration TOML; returns the truth."""
        arena = write_arena_labels(folder, self.cgroup, date_joint, self.rng)
        tdir = self.truth_root / sid
        tdir.mkdir(parents=True, exist_ok=True)
        toml = tdir / f"{date_joint}_calibration.toml"
        with atomic_path(toml) as tmp:
            self.cgroup.dump(str(tmp))
        return {
            "calibration_toml": str(toml),
            "camera_centers_lab_mm": camera_centers(self.cgroup).tolist(),
            "lab_frame": lab_transform_truth(),
            "arena": arena,
            "board_poses": self.n_board_poses,
        }
