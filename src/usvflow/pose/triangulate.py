"""3D triangulation of the per-camera analysis files with aniposelib (docs/original-pipeline.md
step 7b).

Animal mode: aniposelib's ``triangulate_optim`` problem per track (the config's constraints, temporal
smoothing, loss and reprojection threshold; solved by :func:`usvflow.pose.optim.triangulate_optim`, the
same objective with an analytic Jacobian), on chunks of frames processed in parallel worker processes.
Each chunk is read from the analysis files on its own (memory does not grow with the session) and is
extended by ``margin`` frames of context on both sides, which are dropped afterwards, so that the
temporal smoothing sees no artificial border. Tracks are matched across views by name.

Arena mode: frame 0 of the arena labelling (one instance, 28 nodes), aniposelib's defaults.

Camera screening (:func:`screen_views`): before the solve, a sample of frames is triangulated linearly
with every view and with each view left out. A view *stands out* (a camera moved or re-focused after
calibration) when its median reprojection error is at least ``view_outlier_min_px`` and
``view_outlier_ratio`` times the median of the other views, and leaving it out brings the other views'
error down by that ratio too (a view that is merely noisy does not do that: its geometry agrees with the
others). A flagged view is logged and written to the QC JSON; with ``auto_exclude_views`` it is
dropped and the session is triangulated from the rest (again screened, while three views or more remain).

Output ``<date_joint>_points3d.h5``: ``tracks`` (n_frames, n_tracks, n_nodes, 3) float64 in the
calibration's units and frame (NaN where not triangulable), ``node_names``, ``track_names``,
``frames`` (start, stop), ``camera_names``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

import numpy as np

from ..io.atomic import InputError, atomic_path
from ..io.config import with_schema_defaults
from ..io.progress import progress
from ._pool import process_pool
from .cameras import Cameras
from .optim import triangulate_optim
from .slp import read_analysis_h5

log = logging.getLogger(__name__)

ANIPOSE_DEFAULTS = dict(scale_smooth=4, scale_length=2, scale_length_weak=0.5, reproj_error_threshold=15,
                        reproj_loss="soft_l1", n_deriv_smooth=1)  # fmt: skip


def optim_kwargs(tri: dict, node_names: list[str]) -> dict:
    """aniposelib ``triangulate_optim`` keyword arguments from the config's ``pose.triangulation``.

    Constraints are node-name pairs (or index pairs) → index pairs.
    """
    tri = with_schema_defaults("pose.triangulation", tri)

    def pairs(key):
        out = []
        for p in tri.get(key, []) or []:
            if len(p) != 2:
                raise ValueError(f"pose.triangulation.{key}: {p!r} is not a pair of nodes")
            idx = []
            for v in p:
                if isinstance(v, str):
                    if v not in node_names:
                        raise ValueError(
                            f"pose.triangulation.{key}: unknown node {v!r} (nodes: {node_names})"
                        )
                    idx.append(node_names.index(v))
                else:
                    idx.append(int(v))
            out.append(idx)
        return out

    return dict(
        constraints=pairs("rigid_body_constraints"),
        constraints_weak=pairs("weak_body_constraints"),
        scale_smooth=float(tri["smooth_scale"]),
        scale_length=float(tri["weight_rigid"]),
        scale_length_weak=float(tri["weight_weak"]),
        reproj_error_threshold=float(tri["reprojection_error_threshold"]),
        reproj_loss=str(tri["regularization_function"]),
        n_deriv_smooth=int(tri["n_deriv_smooth"]),
    )


def _load_group(calibration, views: list[str] | None = None):
    """The calibration's cameras (those of ``views``, in that order): :class:`Cameras` (numpy and
    OpenCV, a light worker), or aniposelib's ``CameraGroup`` for fisheye cameras."""
    try:
        cg = Cameras.load(calibration)
        names = cg.names()
    except NotImplementedError:
        from aniposelib.cameras import CameraGroup

        try:
            cg = CameraGroup.load(str(calibration))
        except Exception as exc:
            raise InputError(calibration, f"not an aniposelib calibration TOML ({exc})") from None
        names = cg.get_names()
    if views is None:
        return cg
    missing = [v for v in views if v not in names]
    if missing:
        raise InputError(calibration, f"has no camera(s) {missing} (cameras: {names})")
    return cg.subset(views) if isinstance(cg, Cameras) else cg.subset_cameras_names(views)


def _views(h5_by_camera: dict, calibration, excluded) -> tuple[list[str], dict]:
    cg = _load_group(calibration)
    names = cg.names() if isinstance(cg, Cameras) else cg.get_names()
    views = [n for n in names if n in h5_by_camera and n not in set(map(str, excluded))]
    if len(views) < 2:
        raise InputError(
            calibration,
            f"fewer than two views to triangulate (calibrated {names}, files for {sorted(h5_by_camera)}, excluded {list(excluded)})",
        )
    heads = {v: read_analysis_h5(h5_by_camera[v], frames=slice(0, 0)) for v in views}
    first = heads[views[0]]
    for v in views[1:]:
        if heads[v]["node_names"] != first["node_names"]:
            raise InputError(
                h5_by_camera[v],
                f"node names {heads[v]['node_names']} differ from {h5_by_camera[views[0]]}",
            )
    return views, heads


def _track_order(head: dict, tracks: list[str], path) -> list[int]:
    """Index of each of ``tracks`` in a view's file; -1 where the view has no such track."""
    if not tracks:
        return list(range(len(head["track_names"])))
    return [head["track_names"].index(t) if t in head["track_names"] else -1 for t in tracks]


def _all_tracks(heads: dict, views: list[str]) -> list[str]:
    """The tracks of every view: the first view's, then those only other views have (sleap-nn names
    the tracks of each camera on its own and may start new ones, ``track_2``, ... in one view only)."""
    names = list(heads[views[0]]["track_names"])
    for v in views[1:]:
        names += [t for t in heads[v]["track_names"] if t not in names]
    return names


def _take(points: np.ndarray, order: list[int]) -> np.ndarray:
    """``points[:, order]`` (frames, tracks, nodes, 2), NaN for the tracks a view lacks (-1)."""
    order = np.asarray(order, dtype=np.int64)
    if points.shape[1] == 0:
        return np.full((points.shape[0], len(order)) + points.shape[2:], np.nan)
    out = points[:, np.maximum(order, 0)]  # a copy
    out[:, order < 0] = np.nan
    return out


# reprojection-error histogram bins (px): fine below 100 px, coarse above; medians are read from it
ERR_BINS = np.concatenate([np.arange(0.0, 100.0, 0.05), np.arange(100.0, 2000.0, 1.0), [np.inf]])


def _hist_median(hist: np.ndarray) -> float | None:
    n = hist.sum()
    if n == 0:
        return None
    k = int(np.searchsorted(np.cumsum(hist), n / 2.0))
    return (
        float(ERR_BINS[k] + (ERR_BINS[k + 1] - ERR_BINS[k]) / 2)
        if k < len(ERR_BINS) - 2
        else float(ERR_BINS[k])
    )


def _project(cg, pts: np.ndarray) -> np.ndarray:
    """(C, N, 2) projections of (N, 3) points (``Cameras`` or aniposelib ``CameraGroup``)."""
    if isinstance(cg, Cameras):
        return cg.project(pts)
    return np.asarray(cg.project(pts)).reshape(len(cg.cameras), -1, 2)


def _dlt(cg, flat: np.ndarray) -> np.ndarray:
    if isinstance(cg, Cameras):
        return cg.triangulate(flat)
    with contextlib.redirect_stdout(io.StringIO()):
        return cg.triangulate(flat, undistort=True, progress=False)


def _sample_frames(
    start: int, stop: int, n_blocks: int = 20, block: int = 50
) -> list[tuple[int, int]]:
    """Up to ``n_blocks`` blocks of ``block`` frames spread evenly over [start, stop)."""
    n = stop - start
    if n <= n_blocks * block:
        return [(start, stop)]
    firsts = np.linspace(start, stop - block, n_blocks).astype(int)
    return [(int(a), int(a) + block) for a in firsts]


def screen_views(calibration, views: list[str], files: dict, orders: dict, blocks, ratio: float | None,
                 min_px: float | None) -> dict:  # fmt: skip
    """Median reprojection error (px) per view of a linear triangulation of the sampled frames with
    all ``views`` (``error_px``), the other views' median error with each view left out
    (``others_without_px``), and the views that stand out (``flagged``, module docstring)."""
    p2d = []
    for v in views:
        parts = [
            _take(read_analysis_h5(files[v], frames=slice(a, b))["points"], orders[v])
            for a, b in blocks
        ]
        p2d.append(np.concatenate(parts))
    flat = np.stack(p2d).reshape(len(views), -1, 2)  # (C, P, 2)
    cg = _load_group(calibration, views)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        err = np.linalg.norm(_project(cg, _dlt(cg, flat)) - flat, axis=-1)  # (C, P)
        med = {v: _nanmedian(err[i]) for i, v in enumerate(views)}
        without = {}
        if len(views) >= 3:
            for v in views:
                rest = [w for w in views if w != v]
                idx = [views.index(w) for w in rest]
                sub = _load_group(calibration, rest)
                e = np.linalg.norm(_project(sub, _dlt(sub, flat[idx])) - flat[idx], axis=-1)
                without[v] = _nanmedian(e)
    flagged = []
    if without and ratio is not None and min_px is not None:
        ratio, min_px = float(ratio), float(min_px)
        worst = max((v for v in views if med[v] is not None), key=lambda v: med[v], default=None)
        if worst is not None:
            others = [med[v] for v in views if v != worst and med[v] is not None]
            others_med = float(np.median(others)) if others else None
            w = without.get(worst)
            if (others_med and w is not None and med[worst] >= min_px and med[worst] >= ratio * others_med
                    and others_med >= ratio * w):  # fmt: skip
                flagged.append(worst)
    n_points = int((np.isfinite(flat[..., 0]).sum(axis=0) >= 2).sum())
    return {"frames": int(sum(b - a for a, b in blocks)), "points": n_points, "error_px": med,
            "others_without_px": without, "flagged": flagged}  # fmt: skip


def _nanmedian(x: np.ndarray) -> float | None:
    x = x[np.isfinite(x)]
    return float(np.median(x)) if len(x) else None


def _chunk_job(args):
    """Triangulate frames [a, b) (with context [a0, b0)) of every track; returns (a, b, (b-a, T, J, 3),
    per view the reprojection-error histogram and the number of observed 2D points of [a, b))."""
    calibration, views, files, orders, a0, a, b, b0, kwargs, arena = args
    cg = _load_group(calibration, views)
    p2d = []
    for v in views:
        r = read_analysis_h5(files[v], frames=slice(a0, b0))
        p2d.append(_take(r["points"], orders[v]))
    p2d = np.stack(p2d)  # (C, n, T, J, 2)
    n_tracks, n_nodes = p2d.shape[2], p2d.shape[3]
    out = np.full((b0 - a0, n_tracks, n_nodes, 3), np.nan)
    from threadpoolctl import threadpool_limits

    chatter = io.StringIO()
    # one BLAS thread: the solver's many small sparse products are >10x slower with OpenBLAS's
    # thread pool (and the chunks already run in parallel processes)
    with contextlib.redirect_stdout(chatter), np.errstate(all="ignore"), warnings.catch_warnings(), \
            threadpool_limits(limits=1):  # fmt: skip
        warnings.simplefilter("ignore")  # numba's object-mode fallback notes, empty-slice means
        for k in range(n_tracks):
            pts = p2d[:, :, k]
            if np.isfinite(pts[..., 0]).sum(axis=0).max(initial=0) < 2:
                continue
            if arena:
                res = cg.triangulate(pts.reshape(len(views), -1, 2), undistort=True).reshape(
                    pts.shape[1:3] + (3,)
                )
            else:
                res = triangulate_optim(cg, pts, **kwargs)
            # points seen by fewer than two views are not triangulable: aniposelib's optimiser still
            # returns a value there (interpolated), keep NaN
            seen = np.isfinite(pts[..., 0]).sum(axis=0) >= 2
            res = np.where(seen[..., None], res, np.nan)
            out[:, k] = res
    core = slice(a - a0, b - a0)
    obs = p2d[:, core]  # (C, b-a, T, J, 2)
    flat = obs.reshape(len(views), -1, 2)
    with np.errstate(all="ignore"):
        err = np.linalg.norm(_project(cg, out[core].reshape(-1, 3)) - flat, axis=-1)
    hists = np.stack([np.histogram(e[np.isfinite(e)], bins=ERR_BINS)[0] for e in err])
    observed = np.isfinite(flat[..., 0]).sum(axis=1)
    return a, b, out[core], hists, observed


def triangulate(
    h5_by_camera: dict[str, str],
    calibration,
    out,
    tri: dict | None = None,
    arena: bool = False,
    frames: tuple[int, int] | None = None,
    threads: int = 1,
    chunk: int = 500,
    margin: int = 50,
) -> dict:
    """Triangulate analysis files ``{camera name: path}`` with ``calibration``; write ``out``.

    ``tri``: the config's ``pose.triangulation`` (ignored in ``arena`` mode except excluded views and
    the reprojection threshold). ``frames``: ``[start, stop)`` (default all frames common to the
    views; arena mode: frame 0). Returns a summary.
    """
    import h5py

    tri = with_schema_defaults("pose.triangulation", tri)
    excluded = [str(v) for v in tri["excluded_views"] or []]
    views, heads = _views(h5_by_camera, calibration, excluded)
    node_names = heads[views[0]]["node_names"]
    track_names = _all_tracks(heads, views)
    if arena:
        track_names = track_names[:1]
    orders = {v: _track_order(heads[v], track_names, h5_by_camera[v]) for v in views}
    n_common = min(h["n_frames"] for h in heads.values())
    if arena:
        frames = (0, 1)
    start, stop = (
        (0, n_common) if frames is None else (int(frames[0]), min(int(frames[1]), n_common))
    )
    if not 0 <= start < stop:
        raise InputError(
            h5_by_camera[views[0]],
            f"no frames to triangulate in [{start}, {stop}) ({n_common} frames)",
        )
    # without the thresholds (a library call without them) the views are measured, none is flagged
    ratio, min_px = tri.get("view_outlier_ratio"), tri.get("view_outlier_min_px")
    blocks = _sample_frames(start, stop)
    files = {v: str(h5_by_camera[v]) for v in views}
    screens, auto_excluded, flagged = [], [], []
    while True:
        scr = screen_views(calibration, views, files, orders, blocks, ratio, min_px)
        screens.append(dict(scr, views=list(views)))
        for v in scr["flagged"]:
            others = {w: e for w, e in scr["error_px"].items() if w != v}
            log.warning("camera %s stands out: median reprojection error %.1f px, the other views %s px;"
                        " without it the others fall to %.1f px (moved after calibration?)", v,
                        scr["error_px"][v], {w: round(e, 1) for w, e in others.items() if e is not None},
                        scr["others_without_px"][v])  # fmt: skip
        flagged += scr["flagged"]
        if not (scr["flagged"] and tri.get("auto_exclude_views") and len(views) >= 3):
            break
        views = [v for v in views if v not in scr["flagged"]]
        auto_excluded += scr["flagged"]
        log.warning("pose.triangulation.auto_exclude_views: camera(s) %s left out, triangulating from %s",
                    scr["flagged"], views)  # fmt: skip
    kwargs = {} if arena else optim_kwargs(tri, node_names)
    if tri.get("ransac") and not arena:
        kwargs["init_ransac"] = True
    jobs = []
    for a in range(start, stop, chunk):
        b = min(a + chunk, stop)
        a0, b0 = max(start, a - margin), min(stop, b + margin)
        jobs.append(
            (
                str(calibration),
                views,
                {v: files[v] for v in views},
                orders,
                a0,
                a,
                b,
                b0,
                kwargs,
                arena,
            )
        )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    shape = (stop - start, len(track_names) or 1, len(node_names), 3)
    n_done = n_finite = 0
    hists = np.zeros((len(views), len(ERR_BINS) - 1), dtype=np.int64)
    observed = np.zeros(len(views), dtype=np.int64)
    posed = np.zeros(
        shape[1], dtype=np.int64
    )  # frames with a 3D pose (half the nodes or more) per track
    with atomic_path(out) as tmp:
        with h5py.File(tmp, "w") as h:
            d = h.create_dataset("tracks", shape=shape, dtype=np.float64, fillvalue=np.nan,
                                 chunks=(min(shape[0], 1024),) + shape[1:], compression="gzip", compression_opts=1)  # fmt: skip
            d.attrs["Description"] = (
                "3D points (frames, tracks, nodes, xyz) in the calibration's frame and units"
            )
            h.create_dataset("frames", data=np.array([start, stop], dtype=np.int64))
            h.create_dataset(
                "node_names", data=np.array([s.encode() for s in node_names], dtype="S")
            )
            h.create_dataset(
                "track_names",
                data=np.array([s.encode() for s in track_names], dtype="S").reshape(-1),
            )
            h.create_dataset("camera_names", data=np.array([s.encode() for s in views], dtype="S"))
            with contextlib.ExitStack() as stack:
                if threads > 1 and len(jobs) > 1:
                    ex = stack.enter_context(process_pool(min(threads, len(jobs))))
                    results = ex.map(_chunk_job, jobs)  # results come back in frame order
                else:
                    results = map(_chunk_job, jobs)
                results = progress(
                    results, total=len(jobs), desc=f"triangulate {out.name}", unit="chunk"
                )
                for a, b, res, hist, obs in results:
                    d[a - start : b - start] = res
                    n_done += res.shape[0]
                    fin = np.isfinite(res[..., 0])
                    n_finite += int(fin.sum())
                    hists += hist
                    observed += obs
                    posed += (fin.sum(axis=-1) * 2 >= shape[2]).sum(axis=0)
    total = n_done * shape[1] * shape[2]
    n_2d = n_done * shape[1] * shape[2]
    qc = {
        "cameras": {
            v: {
                "median_reprojection_error_px": _hist_median(hists[i]),
                "missing_fraction": float(1.0 - observed[i] / n_2d) if n_2d else 1.0,
            }
            for i, v in enumerate(views)
        },  # fmt: skip
        "animals": {
            t: {"pose_fraction": float(posed[k] / n_done) if n_done else 0.0}
            for k, t in enumerate(track_names)
        },  # fmt: skip
        "flagged_views": flagged,
        "auto_excluded_views": auto_excluded,
        "excluded_views": [v for v in excluded if v in h5_by_camera],
        "screening": screens,
        "view_outlier_ratio": ratio,
        "view_outlier_min_px": min_px,
    }
    if auto_excluded:
        qc["verdict"] = "camera_excluded"
        qc["message"] = (
            f"camera(s) {auto_excluded} stood out and were left out; triangulated from {views}"
        )
    elif flagged:
        qc["verdict"] = "camera_flagged"
        qc["message"] = (f"camera(s) {flagged} stand out (moved after calibration?): every 3D point is biased;"
                         " recalibrate, exclude it (pose.triangulation.excluded_views) or set"
                         " pose.triangulation.auto_exclude_views: true")  # fmt: skip
    else:
        qc["verdict"] = "ok"
        qc["message"] = "no camera stands out"
    summary = {"frames": [start, stop], "views": views, "tracks": track_names, "nodes": len(node_names),
               "finite_fraction": n_finite / total if total else 0.0, "qc": qc}  # fmt: skip
    log.info("triangulated %s", {k: v for k, v in summary.items() if k != "qc"})
    log.info("pose QC: %s (%s)", qc["verdict"], qc["message"])
    return summary


def read_points3d(path, frames: slice | None = None) -> dict:
    """``tracks`` (frames, tracks, nodes, 3), ``node_names``, ``track_names`` of a points3d HDF5."""
    import h5py

    try:
        h = h5py.File(path, "r")
    except OSError as exc:
        raise InputError(path, f"not an HDF5 file ({exc})") from None
    with h:
        if "tracks" not in h:
            raise InputError(path, "has no 'tracks' dataset")
        t = h["tracks"]
        if t.ndim != 4 or t.shape[-1] != 3:
            raise InputError(
                path, f"'tracks' has shape {t.shape}, expected (frames, tracks, nodes, 3)"
            )

        def names(k):
            if k not in h:
                return []
            return [v.decode() if isinstance(v, bytes) else str(v) for v in h[k][()]]

        return {"tracks": np.asarray(t[frames or slice(None)], dtype=np.float64), "node_names": names("node_names"),
                "track_names": names("track_names"), "n_frames": int(t.shape[0])}  # fmt: skip
