"""SLEAP ``.slp`` → SLEAP analysis HDF5 (usv-playpen-spec.md step 6), and the analysis-HDF5 reader.

The analysis file follows SLEAP's layout as read with h5py ("matlab" order, what ``sleap-convert
--format analysis`` writes): ``tracks`` (n_tracks, 2, n_nodes, n_frames) float64 with NaN for missing
points, ``track_occupancy`` (n_frames, n_tracks) uint8, ``point_scores`` (n_tracks, n_nodes,
n_frames), ``instance_scores`` and ``tracking_scores`` (n_tracks, n_frames), ``node_names``,
``track_names``, ``edge_names``, ``edge_inds``, ``labels_path``, ``video_path``, ``video_ind``,
``provenance``. Unlike SLEAP ≤1.4 / sleap-io < 0.9, the frame axis always spans the video's frame
count (``n_frames``), padded with NaN after the last labelled frame.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..io.atomic import InputError, atomic_path


def load_slp(path):
    """Load a ``.slp`` with sleap-io (videos not opened); :class:`InputError` if unreadable."""
    import sleap_io as sio

    try:
        return sio.load_slp(str(path), open_videos=False)
    except Exception as exc:  # sleap-io raises many kinds on corrupt files
        raise InputError(path, f"not a readable SLEAP .slp file ({type(exc).__name__}: {exc})") from None


def slp_arrays(labels, path=None) -> dict:
    """Points, scores and names of the first video of ``labels``.

    Returns ``{"points": (n_frames, n_tracks, n_nodes, 2), "point_scores": (n_frames, n_tracks,
    n_nodes), "instance_scores", "tracking_scores": (n_frames, n_tracks), "node_names",
    "track_names", "edge_names", "edge_inds", "video_path"}``. Untracked files give one track per
    instance slot (sleap-io's ``untracked=True``) and empty ``track_names`` (written as ``track_<i>``). User-labelled instances
    win over predictions in the same frame and track.
    """
    if not labels.videos:
        raise InputError(path, "the .slp file has no video")
    if len(labels.skeletons) != 1:
        raise InputError(path, f"expected one skeleton, found {len(labels.skeletons)}")
    video = labels.videos[0]
    skel = labels.skeletons[0]
    tracked = len(labels.tracks) > 0
    arr = labels.numpy(video=video, untracked=not tracked, return_confidence=True)
    n_frames, n_tracks = arr.shape[0], arr.shape[1]
    inst_scores = np.full((n_frames, n_tracks), np.nan)
    trk_scores = np.full((n_frames, n_tracks), np.nan)
    track_index = {id(t): i for i, t in enumerate(labels.tracks)}
    for lf in labels.find(video):
        if lf.frame_idx >= n_frames:
            continue
        slot = 0
        for inst in lf.instances:
            k = track_index.get(id(inst.track)) if tracked else slot
            slot += 1
            if k is None or k >= n_tracks:
                continue
            inst_scores[lf.frame_idx, k] = float(getattr(inst, "score", np.nan))
            trk_scores[lf.frame_idx, k] = float(getattr(inst, "tracking_score", np.nan) or 0.0)
    return {
        "points": arr[..., :2].astype(np.float64),
        "point_scores": arr[..., 2].astype(np.float64),
        "instance_scores": inst_scores,
        "tracking_scores": trk_scores,
        "node_names": [n.name for n in skel.nodes],
        "track_names": [t.name for t in labels.tracks] if tracked else [],
        "edge_names": [(e.source.name, e.destination.name) for e in skel.edges],
        "edge_inds": [(skel.nodes.index(e.source), skel.nodes.index(e.destination)) for e in skel.edges],
        "video_path": str(video.filename),
    }


def slp_to_analysis_h5(slp, out, n_frames: int | None = None) -> dict:
    """Convert ``slp`` to an analysis HDF5 ``out`` padded (or trimmed) to ``n_frames`` frames.

    ``n_frames=None`` keeps sleap-io's frame count (last labelled frame + 1). Returns a summary.
    """
    import h5py

    labels = load_slp(slp)
    a = slp_arrays(labels, slp)
    pts = a["points"]
    have = pts.shape[0]
    n = have if n_frames is None else int(n_frames)
    labelled_beyond = have > n and np.isfinite(pts[n:, ..., 0]).any()
    if labelled_beyond:
        last = int(np.flatnonzero(np.isfinite(pts[..., 0]).any(axis=(1, 2)))[-1])
        raise InputError(slp, f"has points on frame {last}, beyond the video's {n} frames")

    def fit(x):
        out_ = np.full((n,) + x.shape[1:], np.nan)
        m = min(n, x.shape[0])
        out_[:m] = x[:m]
        return out_

    pts, ps = fit(pts), fit(a["point_scores"])
    inst, trk = fit(a["instance_scores"]), fit(a["tracking_scores"])
    occupancy = np.isfinite(pts[..., 0]).any(axis=2).astype(np.uint8)  # (n, tracks)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    provenance = {"converted_by": "usvflow", "source": str(slp), "n_frames": n}
    with atomic_path(out) as tmp:
        with h5py.File(tmp, "w") as h:
            h.attrs["format"] = "analysis"
            h.attrs["preset"] = "matlab"
            kw = dict(compression="gzip", compression_opts=1)
            d = h.create_dataset("tracks", data=pts.transpose(1, 3, 2, 0), **kw)
            d.attrs["dims"] = json.dumps(["track", "xy", "node", "frame"])
            d = h.create_dataset("track_occupancy", data=occupancy, **kw)
            d.attrs["dims"] = json.dumps(["frame", "track"])
            d = h.create_dataset("point_scores", data=ps.transpose(1, 2, 0), **kw)
            d.attrs["dims"] = json.dumps(["track", "node", "frame"])
            for name, x in (("instance_scores", inst), ("tracking_scores", trk)):
                d = h.create_dataset(name, data=x.T, **kw)
                d.attrs["dims"] = json.dumps(["track", "frame"])
            h.create_dataset("node_names", data=np.array([s.encode() for s in a["node_names"]], dtype="S"))
            # untracked files: track_<i> per instance slot, as sleap-io writes them (and reads them back)
            names = a["track_names"] or [f"track_{i}" for i in range(pts.shape[1])]
            h.create_dataset("track_names", data=np.array([s.encode() for s in names], dtype="S").reshape(-1))
            en = np.array([[s.encode(), t.encode()] for s, t in a["edge_names"]], dtype="S").reshape(-1, 2)
            h.create_dataset("edge_names", data=en)
            h.create_dataset("edge_inds", data=np.array(a["edge_inds"], dtype=np.int32).reshape(-1, 2))
            h.create_dataset("labels_path", data=str(slp))
            h.create_dataset("video_path", data=a["video_path"])
            h.create_dataset("video_ind", data=np.int32(0))
            h.create_dataset("provenance", data=json.dumps(provenance))
    return {"frames": n, "labelled_frames": int(occupancy.any(axis=1).sum()), "tracks": a["track_names"],
            "nodes": len(a["node_names"]), "visible_fraction": float(np.isfinite(pts[..., 0]).mean()) if pts.size else 0.0}  # fmt: skip


def _names(ds) -> list[str]:
    if ds.dtype.kind in "SO":
        return [v.decode() if isinstance(v, bytes) else str(v) for v in ds[()]]
    return []


def read_analysis_h5(path, frames: slice | None = None) -> dict:
    """Read an analysis HDF5 (SLEAP's or ours): ``points`` (n_frames, n_tracks, n_nodes, 2) for the
    frames in ``frames`` (a slice; None = all), ``scores`` likewise (n_frames, n_tracks, n_nodes),
    ``node_names``, ``track_names`` and ``n_frames`` (the file's total)."""
    import h5py

    try:
        h = h5py.File(path, "r")
    except OSError as exc:
        raise InputError(path, f"not an HDF5 file ({exc})") from None
    with h:
        if "tracks" not in h or "node_names" not in h:
            raise InputError(path, "not a SLEAP analysis file (no 'tracks' / 'node_names')")
        t = h["tracks"]
        dims = json.loads(t.attrs["dims"]) if "dims" in t.attrs else None
        nodes = _names(h["node_names"])
        if dims is not None and dims[0] == "frame":  # "standard" preset: (frame, track, node, xy)
            n_total = t.shape[0]
            sl = frames or slice(None)
            pts = t[sl]
            sc = h["point_scores"][sl] if "point_scores" in h else np.ones(pts.shape[:-1])
        else:  # matlab preset: (track, xy, node, frame)
            if t.ndim != 4 or t.shape[1] != 2 or t.shape[2] != len(nodes):
                raise InputError(path, f"'tracks' has shape {t.shape}, expected (tracks, 2, {len(nodes)}, frames)")
            n_total = t.shape[3]
            sl = frames or slice(None)
            pts = np.asarray(t[..., sl]).transpose(3, 0, 2, 1)
            sc = np.asarray(h["point_scores"][..., sl]).transpose(2, 0, 1) if "point_scores" in h else np.ones(pts.shape[:-1])
        tracks = _names(h["track_names"]) if "track_names" in h else []
    return {"points": pts.astype(np.float64), "scores": sc.astype(np.float64), "node_names": nodes,
            "track_names": tracks, "n_frames": int(n_total)}  # fmt: skip


def analysis_n_frames(path) -> int:
    """Number of frames of an analysis HDF5 (without reading the points)."""
    return read_analysis_h5(path, frames=slice(0, 0))["n_frames"]
