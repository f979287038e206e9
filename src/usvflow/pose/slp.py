"""SLEAP ``.slp`` → SLEAP analysis HDF5 (docs/original-pipeline.md step 6), and the analysis-HDF5
reader.

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

#: frames per block when the analysis file is written (and per HDF5 chunk along the frame axis)
FRAME_BLOCK = 4096


def load_slp(path, lazy: bool = False):
    """Load a ``.slp`` with sleap-io (videos not opened); :class:`InputError` if unreadable.

    ``lazy``: sleap-io's lazy mode (raw arrays, no Python object per instance).
    """
    import sleap_io as sio

    try:
        return sio.load_slp(str(path), open_videos=False, lazy=lazy)
    except Exception as exc:  # sleap-io raises many kinds on corrupt files
        raise InputError(
            path, f"not a readable SLEAP .slp file ({type(exc).__name__}: {exc})"
        ) from None


def _check_labels(labels, path) -> None:
    if not labels.videos:
        raise InputError(path, "the .slp file has no video")
    if len(labels.skeletons) != 1:
        raise InputError(path, f"expected one skeleton, found {len(labels.skeletons)}")


def _names_of(labels) -> dict:
    skel = labels.skeletons[0]
    tracked = len(labels.tracks) > 0
    return {
        "node_names": [n.name for n in skel.nodes],
        "track_names": [t.name for t in labels.tracks] if tracked else [],
        "edge_names": [(e.source.name, e.destination.name) for e in skel.edges],
        "edge_inds": [
            (skel.nodes.index(e.source), skel.nodes.index(e.destination)) for e in skel.edges
        ],
        "video_path": str(labels.videos[0].filename),
    }


def slp_arrays(labels, path=None) -> dict:
    """Points, scores and names of the first video of ``labels`` (loaded eagerly or lazily).

    Returns ``{"points": (n_frames, n_tracks, n_nodes, 2), "point_scores": (n_frames, n_tracks,
    n_nodes), "instance_scores", "tracking_scores": (n_frames, n_tracks), "node_names",
    "track_names", "edge_names", "edge_inds", "video_path"}``; frame ``i`` of the arrays is frame
    ``i`` of the video. Untracked files give one track per instance slot (sleap-io's
    ``untracked=True``) and empty ``track_names`` (written as ``track_<i>``). User-labelled
    instances win over predictions in the same frame and track, for the points and the scores.
    """
    _check_labels(labels, path)
    tracked = len(labels.tracks) > 0
    if labels.is_lazy:
        arr, inst_scores, trk_scores = _lazy_arrays(labels._lazy_store, tracked)
    else:
        arr, inst_scores, trk_scores = _eager_arrays(labels, tracked)
    return {
        "points": arr[..., :2].astype(np.float64),
        "point_scores": arr[..., 2].astype(np.float64),
        "instance_scores": inst_scores,
        "tracking_scores": trk_scores,
        **_names_of(labels),
    }


def _eager_arrays(labels, tracked: bool):
    video = labels.videos[0]
    arr = labels.numpy(video=video, untracked=not tracked, return_confidence=True)
    n_frames, n_tracks = arr.shape[0], arr.shape[1]
    inst_scores = np.full((n_frames, n_tracks), np.nan)
    trk_scores = np.full((n_frames, n_tracks), np.nan)
    track_index = {id(t): i for i, t in enumerate(labels.tracks)}
    for lf in labels.find(video):
        if lf.frame_idx >= n_frames:
            continue
        chosen: dict[int, object] = {}
        user = [i for i in lf.instances if not hasattr(i, "score")]
        pred = [i for i in lf.instances if hasattr(i, "score")]
        if tracked:
            for inst in pred + user:  # user instances replace predictions of their track
                k = track_index.get(id(inst.track))
                if k is not None and k < n_tracks:
                    chosen[k] = inst
        else:
            for k, inst in enumerate(_untracked_order(user, pred, n_tracks)):
                chosen[k] = inst
        for k, inst in chosen.items():
            inst_scores[lf.frame_idx, k] = float(getattr(inst, "score", np.nan))
            trk_scores[lf.frame_idx, k] = float(getattr(inst, "tracking_score", np.nan) or 0.0)
    return arr, inst_scores, trk_scores


def _untracked_order(user: list, pred: list, n_slots: int) -> list:
    """Instances of an untracked frame in slot order, as sleap-io fills them: user instances first,
    then (with more than one slot) the predictions that no user instance replaces."""
    if not user:
        return pred[:n_slots]
    out = list(user)
    if n_slots > 1:
        for p in pred:
            if not any(_replaces(u, p) for u in user):
                out.append(p)
    return out[:n_slots]


def _replaces(u, p) -> bool:
    if isinstance(u, dict):  # raw rows
        same_track = u["track"] >= 0 and p["track"] >= 0 and u["track"] == p["track"]
        return same_track or u["from_predicted"] == p["instance_id"]
    same_track = u.track is not None and p.track is not None and u.track is p.track
    return same_track or u.from_predicted is p


def _lazy_arrays(store, tracked: bool):
    """:func:`_eager_arrays` from sleap-io's raw arrays (no object per instance): the points come
    from sleap-io's lazy ``to_numpy``, which starts at the first labelled frame (placed at its frame
    here), the scores from the instance rows."""
    frames = store.frames_data[store.frames_data["video"] == 0]
    inst = store.instances_data
    # the instance rows of every frame (frames hold consecutive instance ids)
    counts = (frames["instance_id_end"] - frames["instance_id_start"]).astype(np.int64)
    rows = _instance_rows(frames)
    fidx = np.repeat(frames["frame_idx"].astype(np.int64), counts)
    r = inst[rows]
    user = r["instance_type"] == 0
    n_nodes = len(store.skeletons[-1].nodes)
    arr = _tracked_points(store, r, fidx, user, n_nodes) if tracked else None
    if arr is None:  # sleap-io's own (slower) fill; its array starts at the first labelled frame
        part = store.to_numpy(untracked=not tracked, return_confidence=True)
        if not len(frames):
            return part, np.full(part.shape[:2], np.nan), np.full(part.shape[:2], np.nan)
        first = int(frames["frame_idx"].min())
        arr = np.full((first + part.shape[0],) + part.shape[1:], np.nan, dtype=part.dtype)
        arr[first:] = part
        del part
    n_frames, n_tracks = arr.shape[0], arr.shape[1]
    if tracked:
        inst_scores, trk_scores = _scores(r, fidx, user, n_tracks, 0, n_frames)
    else:
        inst_scores = np.full((n_frames, n_tracks), np.nan)
        trk_scores = np.full((n_frames, n_tracks), np.nan)
        score = np.where(user, np.nan, r["score"].astype(np.float64))
        # as sleap-io's objects: the stored tracking score, 0 in files older than format 1.2
        has_trk = "tracking_score" in (inst.dtype.names or ())
        trk = r["tracking_score"].astype(np.float64) if has_trk else np.zeros(len(r))
        starts = np.concatenate([[0], np.cumsum(counts)])
        for i in np.flatnonzero(counts):
            a, b = starts[i], starts[i + 1]
            rr = [
                {
                    "track": int(x["track"]),
                    "from_predicted": int(x["from_predicted"]),
                    "instance_id": int(x["instance_id"]),
                    "j": a + j,
                }
                for j, x in enumerate(r[a:b])
            ]
            us = [x for x, u in zip(rr, user[a:b]) if u]
            ps = [x for x, u in zip(rr, user[a:b]) if not u]
            for k, x in enumerate(_untracked_order(us, ps, n_tracks)):
                inst_scores[fidx[x["j"]], k] = score[x["j"]]
                trk_scores[fidx[x["j"]], k] = trk[x["j"]]
    return arr, inst_scores, trk_scores


def _instance_rows(frames) -> np.ndarray:
    """Indices of the instance rows of ``frames`` (each frame holds consecutive instance ids)."""
    spans = zip(frames["instance_id_start"], frames["instance_id_end"])
    parts = [np.arange(a, b, dtype=np.int64) for a, b in spans]
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def _tracked_points(store, r, fidx, user, n_nodes: int):
    """(n_frames, n_tracks, n_nodes, 3) x, y, score of a tracked file from the raw rows (the frame axis
    from 0); None when an instance does not hold ``n_nodes`` points."""
    if (r["point_id_end"] - r["point_id_start"] != n_nodes).any():
        return None
    n_frames = int(fidx.max()) + 1 if len(fidx) else 0
    tables = ((store.pred_points_data, 0), (store.points_data, 0))
    return _fill_tracked(
        r, fidx, user, n_nodes, len(store.tracks), store.format_id, tables, 0, n_frames
    )


def _fill_tracked(r, fidx, user, n_nodes, n_tracks, format_id, tables, frame0, n_frames):
    """Frames ``frame0 .. frame0 + n_frames - 1`` as (n_frames, n_tracks, n_nodes, 3) x, y, score
    from instance rows ``r`` (frames ``fidx``): invisible points NaN as sleap-io's eager arrays, a user
    instance over its track's prediction with score 1. ``tables``: (predicted points, first row
    held), (user points, first row held)."""
    arr = np.full((n_frames, n_tracks, n_nodes, 3), np.nan, dtype=np.float32)
    shift = 0.5 if format_id < 1.1 else 0.0  # sleap-io's legacy pixel-centre convention
    for sel, (table, base) in zip((~user, user), tables):
        k = r["track"][sel].astype(np.int64)
        ok = (k >= 0) & (k < n_tracks)
        if not ok.any():
            continue
        start = r["point_id_start"][sel][ok].astype(np.int64) - base
        p = table[start[:, None] + np.arange(n_nodes)]  # (m, n_nodes)
        xy = np.stack([p["x"] - shift, p["y"] - shift], axis=-1)
        xy[~p["visible"]] = np.nan
        score = p["score"] if "score" in (table.dtype.names or ()) else np.ones(p.shape)
        arr[fidx[sel][ok] - frame0, k[ok]] = np.concatenate([xy, score[..., None]], axis=-1)
    return arr


def _scores(r, fidx, user, n_tracks, frame0, n_frames):
    """Instance and tracking scores (n_frames, n_tracks) of tracked instance rows (user over
    prediction, as the points)."""
    inst_scores = np.full((n_frames, n_tracks), np.nan)
    trk_scores = np.full((n_frames, n_tracks), np.nan)
    score = np.where(user, np.nan, r["score"].astype(np.float64))
    # as sleap-io's objects: the stored tracking score, 0 in files older than format 1.2
    has_trk = "tracking_score" in (r.dtype.names or ())
    trk = r["tracking_score"].astype(np.float64) if has_trk else np.zeros(len(r))
    for sel in (~user, user):
        k = r["track"][sel].astype(np.int64)
        ok = (k >= 0) & (k < n_tracks)
        inst_scores[fidx[sel][ok] - frame0, k[ok]] = score[sel][ok]
        trk_scores[fidx[sel][ok] - frame0, k[ok]] = trk[sel][ok]
    return inst_scores, trk_scores


class _StreamedSlp:
    """Blocks of frames of a tracked ``.slp`` read straight from its HDF5 tables (sleap-io's layout):
    memory is one block, whatever the number of frames. :meth:`open` returns None for files this
    does not cover (untracked, several videos, frames out of order, instances of another size)."""

    @classmethod
    def open(cls, path):
        import h5py
        from sleap_io.io import slp as sio_slp

        try:
            h = h5py.File(path, "r")
        except OSError as exc:
            raise InputError(path, f"not a readable SLEAP .slp file ({exc})") from None
        try:
            self = cls()
            self.h, self.path = h, path
            self.format_id = float(h["metadata"].attrs["format_id"])
            skeletons = sio_slp.read_skeletons(str(path), _hdf5_file=h)
            tracks = sio_slp.read_tracks(str(path), _hdf5_file=h)
            videos = sio_slp.read_videos(str(path), open_backend=False, _hdf5_file=h)
            fr = h["frames"][()]
            inst_pts = h["instances"].fields(["point_id_start", "point_id_end"])[()]
        except (KeyError, ValueError, OSError):
            h.close()
            return None
        n_nodes = len(skeletons[-1].nodes) if skeletons else 0
        ordered = (np.diff(fr["frame_idx"].astype(np.int64)) > 0).all() and (
            fr["instance_id_start"][1:] >= fr["instance_id_end"][:-1]
        ).all()
        sizes = (inst_pts["point_id_end"] - inst_pts["point_id_start"] == n_nodes).all()
        ok = len(videos) == 1 and len(skeletons) == 1 and len(tracks) > 0 and len(fr) > 0
        ok = ok and bool(ordered) and bool(sizes)
        if not ok:
            h.close()
            return None
        self.frames = fr
        self.fidx = fr["frame_idx"].astype(np.int64)
        self.n_have = int(self.fidx[-1]) + 1
        self.n_tracks, self.n_nodes = len(tracks), n_nodes

        class _L:  # what _names_of reads
            pass

        lab = _L()
        lab.skeletons, lab.tracks, lab.videos = skeletons, tracks, videos
        self.names = _names_of(lab)
        return self

    def block(self, s0: int, s1: int):
        """``(x, y, score) (m, T, J, 3)``, instance and tracking scores ``(m, T)`` of frames [s0, s1)."""
        m = s1 - s0
        a, b = np.searchsorted(self.fidx, [s0, s1])
        if a == b:
            nan = np.full((m, self.n_tracks), np.nan)
            return np.full((m, self.n_tracks, self.n_nodes, 3), np.nan, np.float32), nan, nan.copy()
        fr = self.frames[a:b]
        lo, hi = int(fr["instance_id_start"][0]), int(fr["instance_id_end"][-1])
        block_rows = self.h["instances"][lo:hi]
        counts = (fr["instance_id_end"] - fr["instance_id_start"]).astype(np.int64)
        rows = _instance_rows(fr) - lo
        r = block_rows[rows]
        fidx = np.repeat(self.fidx[a:b], counts)
        user = r["instance_type"] == 0
        tables = []
        for sel, name in ((~user, "pred_points"), (user, "points")):
            if sel.any():
                p0 = int(r["point_id_start"][sel].min())
                p1 = int(r["point_id_end"][sel].max())
                tables.append((self.h[name][p0:p1], p0))
            else:
                tables.append((None, 0))
        arr = _fill_tracked(
            r, fidx, user, self.n_nodes, self.n_tracks, self.format_id, tables, s0, m
        )
        inst, trk = _scores(r, fidx, user, self.n_tracks, s0, m)
        return arr, inst, trk

    def close(self):
        self.h.close()


class _InMemorySlp:
    """:class:`_StreamedSlp`'s interface over :func:`slp_arrays` (files it does not cover)."""

    def __init__(self, path):
        a = slp_arrays(load_slp(path, lazy=True), path)
        self.a = a
        self.n_have, self.n_tracks, self.n_nodes = a["points"].shape[:3]
        self.names = {
            k: a[k] for k in ("node_names", "track_names", "edge_names", "edge_inds", "video_path")
        }

    def block(self, s0: int, s1: int):
        a = self.a
        arr = np.concatenate([a["points"][s0:s1], a["point_scores"][s0:s1, ..., None]], axis=-1)
        return arr, a["instance_scores"][s0:s1], a["tracking_scores"][s0:s1]

    def close(self):
        pass


def slp_to_analysis_h5(slp, out, n_frames: int | None = None) -> dict:
    """Convert ``slp`` to an analysis HDF5 ``out`` padded (or trimmed) to ``n_frames`` frames.

    ``n_frames=None`` keeps sleap-io's frame count (last labelled frame + 1). A tracked file is read
    from its HDF5 tables and written in blocks of :data:`FRAME_BLOCK` frames (memory does not grow
    with the number of frames); other files go through sleap-io's lazy arrays. The datasets are
    chunked along the frame axis, so that readers of a range of frames decompress only that range.
    Returns a summary.
    """
    src = _StreamedSlp.open(slp) or _InMemorySlp(slp)
    try:
        return _write_analysis(src, slp, out, n_frames)
    finally:
        src.close()


def _write_analysis(src, slp, out, n_frames) -> dict:
    import h5py

    have, n_tracks, n_nodes = src.n_have, src.n_tracks, src.n_nodes
    n = have if n_frames is None else int(n_frames)
    fb = max(1, min(FRAME_BLOCK, n))
    last = None  # labelled frames beyond the video are an error
    for s0 in range(n, have, FRAME_BLOCK):
        pts = src.block(s0, min(s0 + FRAME_BLOCK, have))[0]
        hit = np.flatnonzero(np.isfinite(pts[..., 0]).any(axis=(1, 2)))
        last = s0 + int(hit[-1]) if len(hit) else last
    if last is not None:
        raise InputError(slp, f"has points on frame {last}, beyond the video's {n} frames")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    names = src.names
    provenance = {"converted_by": "usvflow", "source": str(slp), "n_frames": n}
    kw = dict(compression="gzip", compression_opts=1, fillvalue=np.nan)
    labelled = visible = 0
    with atomic_path(out) as tmp:
        # every write below fills whole chunks, so no chunk cache: HDF5's kept the written chunks
        # until the file closed, ~0.5 MB per 1,000 frames (+20 MB RSS at 45,000 frames)
        with h5py.File(tmp, "w", rdcc_nbytes=0) as h:
            h.attrs["format"] = "analysis"
            h.attrs["preset"] = "matlab"
            sets = {}
            for name, shape, dims in (
                ("tracks", (n_tracks, 2, n_nodes, n), ["track", "xy", "node", "frame"]),
                ("point_scores", (n_tracks, n_nodes, n), ["track", "node", "frame"]),
                ("instance_scores", (n_tracks, n), ["track", "frame"]),
                ("tracking_scores", (n_tracks, n), ["track", "frame"]),
            ):
                chunks = shape[:-1] + (fb,) if n and n_tracks and n_nodes else None
                sets[name] = h.create_dataset(
                    name, shape=shape, dtype=np.float64, chunks=chunks, **kw
                )
                sets[name].attrs["dims"] = json.dumps(dims)
            occ_chunks = (fb, n_tracks) if n and n_tracks else None
            occ = h.create_dataset(
                "track_occupancy",
                shape=(n, n_tracks),
                dtype=np.uint8,
                chunks=occ_chunks,
                compression="gzip",
                compression_opts=1,
            )
            occ.attrs["dims"] = json.dumps(["frame", "track"])
            for s0 in range(0, min(n, have), fb):
                s1 = min(s0 + fb, n, have)
                arr, inst, trk = src.block(s0, s1)
                p = arr[..., :2].astype(np.float64)
                sets["tracks"][..., s0:s1] = p.transpose(1, 3, 2, 0)
                sets["point_scores"][..., s0:s1] = arr[..., 2].astype(np.float64).transpose(1, 2, 0)
                sets["instance_scores"][:, s0:s1] = inst.T
                sets["tracking_scores"][:, s0:s1] = trk.T
                o = np.isfinite(p[..., 0]).any(axis=2)
                occ[s0:s1] = o.astype(np.uint8)
                labelled += int(o.any(axis=1).sum())
                visible += int(np.isfinite(p[..., 0]).sum())
            h.create_dataset(
                "node_names", data=np.array([s.encode() for s in names["node_names"]], dtype="S")
            )
            # untracked files: track_<i> per instance slot, as sleap-io writes them (and reads them back)
            tnames = names["track_names"] or [f"track_{i}" for i in range(n_tracks)]
            h.create_dataset(
                "track_names", data=np.array([s.encode() for s in tnames], dtype="S").reshape(-1)
            )
            en = np.array(
                [[s.encode(), t.encode()] for s, t in names["edge_names"]], dtype="S"
            ).reshape(-1, 2)
            h.create_dataset("edge_names", data=en)
            h.create_dataset(
                "edge_inds", data=np.array(names["edge_inds"], dtype=np.int32).reshape(-1, 2)
            )
            h.create_dataset("labels_path", data=str(slp))
            h.create_dataset("video_path", data=names["video_path"])
            h.create_dataset("video_ind", data=np.int32(0))
            h.create_dataset("provenance", data=json.dumps(provenance))
    total = n * n_tracks * n_nodes
    return {
        "frames": n,
        "labelled_frames": labelled,
        "tracks": names["track_names"],
        "nodes": n_nodes,
        "visible_fraction": visible / total if total else 0.0,
    }


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
                raise InputError(
                    path,
                    f"'tracks' has shape {t.shape}, expected (tracks, 2, {len(nodes)}, frames)",
                )
            n_total = t.shape[3]
            sl = frames or slice(None)
            pts = np.asarray(t[..., sl]).transpose(3, 0, 2, 1)
            sc = (
                np.asarray(h["point_scores"][..., sl]).transpose(2, 0, 1)
                if "point_scores" in h
                else np.ones(pts.shape[:-1])
            )
        tracks = _names(h["track_names"]) if "track_names" in h else []
    return {"points": pts.astype(np.float64), "scores": sc.astype(np.float64), "node_names": nodes,
            "track_names": tracks, "n_frames": int(n_total)}  # fmt: skip


def analysis_n_frames(path) -> int:
    """Number of frames of an analysis HDF5 (without reading the points)."""
    return read_analysis_h5(path, frames=slice(0, 0))["n_frames"]
