"""Re-coordinate triangulated points into the metric arena frame (docs/original-pipeline.md step
7c).

The arena's labelled corners (frame 0, track 0 of the arena's ``points3d.h5``) define the transform,
row-vector convention ``x' = ((x · k) − mid) @ Rz(θz) @ Ry(θy) @ Rx(θx) @ Rz(−π/4)``:

1. ``k = static_reference_len / mean(|N−E|, |N−W|, |S−E|, |S−W|)`` (metres per calibration unit);
2. ``mid`` = mean of the scaled corners (the floor centre becomes the origin);
3. ``θz = −atan2(N.y − S.y, N.x − S.x)``; 4. ``θy = atan2(N.z − S.z, N.x − S.x) + π``;
5. ``θx = −atan2(E.z − W.z, E.y − W.y)`` (each angle from the corners as rotated so far);
6. a fixed ``Rz(−π/4)``: the corners end on the diagonals, ``N (−, +)``, ``W (−, −)``, ``S (+, −)``,
   ``E (+, +)``, floor at ``z = 0``.

The arena's own output additionally snaps its corners outward by ``rail_offset`` to the rail edge (as
the original); animals are clamped to ``z >= 0``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..io.atomic import InputError, atomic_path
from ..io.config import setting_default

CORNERS = ("North", "West", "South", "East")


def _Rz(t):
    c, s = math.cos(t), math.sin(t)
    return np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])


def _Ry(t):
    c, s = math.cos(t), math.sin(t)
    return np.array([[c, 0.0, -s], [0.0, 1.0, 0.0], [s, 0.0, c]])


def _Rx(t):
    c, s = math.cos(t), math.sin(t)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, s], [0.0, -s, c]])


def arena_transform(
    corners: dict[str, np.ndarray], static_reference_len: float | None = None, path=None
) -> dict:
    """The transform ``{"k", "mid", "R"}`` (``x' = (x·k − mid) @ R``) from the corners N, W, S, E."""
    static_reference_len = setting_default("pose.arena.static_reference_len", static_reference_len)
    C = {n: np.asarray(corners[n], dtype=np.float64) for n in CORNERS}
    if any(not np.isfinite(v).all() for v in C.values()):
        bad = [n for n, v in C.items() if not np.isfinite(v).all()]
        raise InputError(path, f"arena corner(s) {bad} were not triangulated")
    edges = [np.linalg.norm(C["North"] - C["East"]), np.linalg.norm(C["North"] - C["West"]),
             np.linalg.norm(C["South"] - C["East"]), np.linalg.norm(C["South"] - C["West"])]  # fmt: skip
    mean_edge = float(np.mean(edges))
    if mean_edge <= 0:
        raise InputError(path, "arena corners coincide")
    k = static_reference_len / mean_edge
    P = np.stack([C[n] for n in CORNERS]) * k
    mid = P.mean(axis=0)
    P = P - mid
    N, W, S, E = range(4)
    R = np.eye(3)
    Rz = _Rz(-math.atan2(P[N, 1] - P[S, 1], P[N, 0] - P[S, 0]))
    P, R = P @ Rz, R @ Rz
    Ry = _Ry(math.atan2(P[N, 2] - P[S, 2], P[N, 0] - P[S, 0]) + math.pi)
    P, R = P @ Ry, R @ Ry
    Rx = _Rx(-math.atan2(P[E, 2] - P[W, 2], P[E, 1] - P[W, 1]))
    P, R = P @ Rx, R @ Rx
    R = R @ _Rz(-math.pi / 4)
    return {"k": k, "mid": mid, "R": R, "mean_edge": mean_edge}


def apply(points: np.ndarray, T: dict) -> np.ndarray:
    """Points (…, 3) in the calibration frame → the metric arena frame."""
    return (np.asarray(points, dtype=np.float64) * T["k"] - T["mid"]) @ T["R"]


def snap_corners(corner_xyz: np.ndarray, rail_offset: float | None = None) -> np.ndarray:
    """Corners (4, 3) in N, W, S, E order, snapped to the rail edge as the original does.

    ``d = max(|min xy|, |max xy|)``; every corner goes to ``(sgn(x)·(d + rail_offset),
    sgn(y)·(d + rail_offset), 0)`` (N → (−, +), W → (−, −), S → (+, −), E → (+, +)).
    """
    rail_offset = setting_default("pose.arena.rail_offset", rail_offset)
    xy = corner_xyz[:, :2]
    d = max(abs(float(np.nanmin(xy))), float(np.nanmax(xy)))
    out = np.zeros((4, 3))
    for i in range(4):
        out[i, 0] = math.copysign(d, xy[i, 0]) + math.copysign(rail_offset, xy[i, 0])
        out[i, 1] = math.copysign(d, xy[i, 1]) + math.copysign(rail_offset, xy[i, 1])
    return out


def arena_corners_from(points3d: dict, path=None) -> dict[str, np.ndarray]:
    """Corners N, W, S, E (frame 0, track 0) of an arena points3d dict (see ``read_points3d``)."""
    names = points3d["node_names"]
    missing = [c for c in CORNERS if c not in names]
    if missing:
        raise InputError(path, f"arena points lack the corner node(s) {missing} (nodes: {names})")
    t = points3d["tracks"]
    return {c: t[0, 0, names.index(c)] for c in CORNERS}


def _write(path, tracks, node_names, track_names, attrs: dict, extra: dict | None = None) -> None:
    import h5py

    with atomic_path(Path(path)) as tmp:
        with h5py.File(tmp, "w") as h:
            d = h.create_dataset("tracks", data=tracks, compression="gzip", compression_opts=1)
            d.attrs["Description"] = "metres in the arena frame (origin arena centre, floor z = 0)"
            h.create_dataset(
                "node_names", data=np.array([s.encode() for s in node_names], dtype="S")
            )
            if track_names is not None:
                h.create_dataset(
                    "track_names",
                    data=np.array([s.encode() for s in track_names], dtype="S").reshape(-1),
                )
            for k, v in (extra or {}).items():
                h.create_dataset(k, data=v)
            for k, v in attrs.items():
                h.attrs[k] = v


def transform_attrs(T: dict) -> dict:
    return {"scale_k": T["k"], "mid": T["mid"], "rotation_row_vector": T["R"]}


def recoordinate_arena(arena_h5, out, static_reference_len=None, rail_offset=None) -> dict:
    """Arena points3d → ``<stem>_translated_rotated_metric.h5`` (corners snapped to the rail edge)."""
    rail_offset = setting_default("pose.arena.rail_offset", rail_offset)
    static_reference_len = setting_default("pose.arena.static_reference_len", static_reference_len)
    from .triangulate import read_points3d

    a = read_points3d(arena_h5)
    T = arena_transform(arena_corners_from(a, arena_h5), static_reference_len, arena_h5)
    m = apply(a["tracks"], T)
    names = a["node_names"]
    unsnapped = np.stack([m[0, 0, names.index(c)] for c in CORNERS])
    snapped = snap_corners(unsnapped, rail_offset)
    for i, c in enumerate(CORNERS):
        m[0, 0, names.index(c)] = snapped[i]
    _write(out, m, names, a["track_names"], transform_attrs(T), {"corners_unsnapped": unsnapped})
    return {"k": T["k"], "mean_edge": T["mean_edge"], "corners": snapped.tolist()}


def recoordinate_animals(points_h5, arena_h5, out, static_reference_len=None, track_names=None,
                         experimental_code="", frame_rate=float("nan"), chunk=20000) -> dict:  # fmt: skip
    """Animal points3d → metric arena frame using the arena's transform, in chunks of frames.

    Writes ``tracks`` (F, n_animals, n_nodes, 3) float64 (``z < 0 → 0``), ``node_names``,
    ``track_names`` (``track_names`` or the file's), ``experimental_code``, ``recording_frame_rate``.
    """
    static_reference_len = setting_default("pose.arena.static_reference_len", static_reference_len)
    import h5py

    from .triangulate import read_points3d

    a = read_points3d(arena_h5)
    T = arena_transform(arena_corners_from(a, arena_h5), static_reference_len, arena_h5)
    head = read_points3d(points_h5, frames=slice(0, 0))
    n = head["n_frames"]
    names = list(track_names) if track_names else head["track_names"]
    if len(names) != len(head["track_names"]):
        raise InputError(
            points_h5, f"{len(head['track_names'])} tracks but {len(names)} subject names {names}"
        )
    with atomic_path(Path(out)) as tmp:
        with h5py.File(tmp, "w") as h, h5py.File(points_h5, "r") as src:
            shape = src["tracks"].shape
            d = h.create_dataset("tracks", shape=shape, dtype=np.float64, chunks=(min(max(shape[0], 1), 1024),) + shape[1:],
                                 compression="gzip", compression_opts=1)  # fmt: skip
            d.attrs["Description"] = "metres in the arena frame (origin arena centre, floor z = 0)"
            for s in range(0, n, chunk):
                x = apply(src["tracks"][s : s + chunk], T)
                x[..., 2] = np.where(x[..., 2] < 0, 0.0, x[..., 2])
                d[s : s + chunk] = x
            h.create_dataset(
                "node_names", data=np.array([s.encode() for s in head["node_names"]], dtype="S")
            )
            h.create_dataset(
                "track_names", data=np.array([s.encode() for s in names], dtype="S").reshape(-1)
            )
            h.create_dataset("experimental_code", data=str(experimental_code))
            h.create_dataset("recording_frame_rate", data=float(frame_rate))
            for k, v in transform_attrs(T).items():
                h.attrs[k] = v
    return {"frames": n, "tracks": names, "k": T["k"]}
