"""Sorted clusters split back into sessions (docs/original-pipeline.md step 3).

For one session of a concatenated, sorted recording, :func:`split_session` writes one file per kept
cluster, ``<out_dir>/imec<N>_cl<CCCC>_ch<HHH>_<good|mua>.npy``: float64, shape ``(2, n)``, row 0 the
seconds from the session's tracking start (at the headstage's calibrated rate), row 1 the video frame
index, clipped to the last frame. With the frame onsets the E/V check found in the sync word
(``frame_onsets``), the frame is the one whose triggerbox onset is nearest the spike (ties: the
earlier), exact on the probe's own clock however long the session; without them it is the original's
``round(seconds * median_empirical_camera_sr)``, which drifts by the error of the empirical rate.

* Spikes are those in ``[tracking_start, tracking_end)`` of the changepoints JSON (concatenated-file
  samples).
* Duplicates: with ``remove_duplicates`` a spike is dropped when it falls within ``censor_samples``
  (``round(duplicate_censored_period_ms * rate)``) of the previous *kept* spike of its cluster
  (SpikeInterface's ``keep_first_iterative``). The spikes of the ``margin_samples`` before the window
  are included in that pass, so a spike is judged as in the whole recording.
* Labels: Phy's ``cluster_info.tsv`` (``cluster_id``/``id``, ``group``, ``ch``) when present, else
  ``cluster_group.tsv`` (header ``group`` or ``KSLabel``), else ``cluster_KSLabel.tsv``, with the peak
  channel from ``templates.npy`` and ``channel_map.npy`` (channel of the largest absolute template
  value). Only ``good`` and ``mua`` are kept; ``noise`` and unlabelled clusters are counted.
* A cluster is written when it has more than ``min_spike_num`` spikes in the session.

``spike_times.npy``/``spike_clusters.npy`` are memory-mapped and only the session's part is read.
Every input is checked before anything is written; the output folder is replaced as a whole.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from usvflow.io.atomic import InputError, temporary_name
from usvflow.io.progress import progress

from ..io.config import setting_default

__all__ = [
    "dedup_keep_first",
    "load_labels",
    "load_spikes",
    "peak_channels",
    "session_cluster_spikes",
    "split_session",
]

KEPT_LABELS = ("good", "mua")


def dedup_keep_first(t: np.ndarray, censor: int) -> np.ndarray:
    """Mask of spikes kept by ``keep_first_iterative``: drop a spike within ``censor`` samples of the
    previous kept one (``t`` sorted)."""
    t = np.asarray(t, dtype=np.int64)
    keep = np.ones(len(t), dtype=bool)
    if len(t) < 2:
        return keep
    close = np.diff(t) <= censor  # close[i]: spike i+1 within censor of spike i
    keep[1:] = ~close
    # Runs of two or more consecutive close pairs need the iterative rule (the next spike is compared
    # with the last kept one, not with its removed neighbour). They are rare: loop over them only.
    if close.size > 1:
        both = close[1:] & close[:-1]
        if both.any():
            run_start = np.flatnonzero(np.diff(np.concatenate([[0], close.astype(np.int8)])) == 1)
            run_end = np.flatnonzero(np.diff(np.concatenate([close.astype(np.int8), [0]])) == -1)
            for a, b in zip(run_start, run_end):  # close[a..b] all True: spikes a..b+1
                if b == a:
                    continue
                last = t[a]
                for i in range(a + 1, b + 2):
                    if t[i] - last <= censor:
                        keep[i] = False
                    else:
                        keep[i] = True
                        last = t[i]
    return keep


def session_cluster_spikes(
    times: np.ndarray,
    clus: np.ndarray,
    start: int,
    end: int,
    *,
    remove_duplicates: bool,
    censor_samples: int,
    margin_samples: int,
    return_duplicates: bool = False,
):
    """``{cluster_id: spike samples in [start, end)}`` (concatenation samples, ascending cluster ids).

    Every cluster with a spike in ``[start - margin_samples, end)`` is listed (possibly with no spike
    in the window). With ``remove_duplicates`` a spike within ``censor_samples`` of the previous kept
    spike of its cluster is dropped, the margin's spikes taking part so that a spike is judged as in
    the whole recording. ``return_duplicates``: also the number of duplicates dropped in the window.
    """
    lo = int(np.searchsorted(times, max(0, start - margin_samples), side="left"))
    a = int(np.searchsorted(times, start, side="left"))
    b = int(np.searchsorted(times, end, side="left"))
    t = np.asarray(times[lo:b], dtype=np.int64)
    c = np.asarray(clus[lo:b], dtype=np.int64)
    in_win = np.arange(lo, b) >= a
    order = np.argsort(c, kind="stable")
    bounds = np.flatnonzero(np.diff(c[order])) + 1
    out, dups = {}, 0
    for idx in np.split(order, bounds) if len(order) else []:
        st, win = t[idx], in_win[idx]
        if remove_duplicates and len(st) > 1:
            k = dedup_keep_first(st, censor_samples)
            dups += int(np.count_nonzero(~k & win))
            st, win = st[k], win[k]
        out[int(c[idx[0]])] = st[win]
    return (out, dups) if return_duplicates else out


def _read_tsv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except Exception as exc:
        raise InputError(path, f"cannot be read as a tab-separated table ({exc})") from None


def _load_npy(path: Path, mmap: bool = True) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r" if mmap else None)
    except FileNotFoundError:
        raise InputError(path, "sorter output file not found") from None
    except ValueError as exc:
        raise InputError(path, f"not a .npy file ({exc})") from None


def peak_channels(ks_dir: str | os.PathLike) -> np.ndarray:
    """Peak channel (in ``channel_map`` numbering) of every template: largest absolute value."""
    ks_dir = Path(ks_dir)
    tpl = _load_npy(ks_dir / "templates.npy")
    cmap = np.asarray(_load_npy(ks_dir / "channel_map.npy", mmap=False)).ravel()
    if tpl.ndim != 3:
        raise InputError(
            ks_dir / "templates.npy", f"expected (templates, samples, channels), found {tpl.shape}"
        )
    if tpl.shape[2] != len(cmap):
        raise InputError(
            ks_dir / "channel_map.npy", f"{len(cmap)} channels but templates have {tpl.shape[2]}"
        )
    amp = np.abs(np.asarray(tpl, dtype=np.float32)).max(axis=1)
    return cmap[np.argmax(amp, axis=1)].astype(np.int64)


def load_labels(ks_dir: str | os.PathLike) -> tuple[dict[int, tuple[str, int]], str]:
    """``{cluster_id: (label, peak_channel)}`` and the file the labels came from (see module doc)."""
    ks_dir = Path(ks_dir)
    info = ks_dir / "cluster_info.tsv"
    if info.is_file():
        df = _read_tsv(info)
        idcol = "cluster_id" if "cluster_id" in df.columns else "id" if "id" in df.columns else None
        missing = [c for c in ("group", "ch") if c not in df.columns]
        if idcol is None or missing:
            raise InputError(
                info,
                f"lacks column(s) {(['cluster_id'] if idcol is None else []) + missing} (Phy's cluster_info.tsv)",
            )
        try:
            ids = df[idcol].astype(int)
            chs = df["ch"].astype(int)
        except ValueError as exc:
            raise InputError(info, f"non-integer cluster id or channel ({exc})") from None
        return {
            int(c): (str(g).strip(), int(h)) for c, g, h in zip(ids, df["group"], chs)
        }, info.name
    for name in ("cluster_group.tsv", "cluster_KSLabel.tsv"):
        p = ks_dir / name
        if not p.is_file():
            continue
        df = _read_tsv(p)
        col = "group" if "group" in df.columns else "KSLabel" if "KSLabel" in df.columns else None
        if "cluster_id" not in df.columns or col is None:
            raise InputError(p, "expected columns cluster_id and group (or KSLabel)")
        peaks = peak_channels(ks_dir)
        out = {}
        for c, g in zip(df["cluster_id"].astype(int), df[col]):
            if not 0 <= c < len(peaks):
                raise InputError(
                    p, f"cluster {c} has no template in templates.npy ({len(peaks)} templates): "
                    "merged clusters need Phy's cluster_info.tsv for their peak channel",
                )  # fmt: skip
            out[int(c)] = (str(g).strip(), int(peaks[c]))
        return out, name
    raise InputError(
        ks_dir,
        "no cluster labels: none of cluster_info.tsv (Phy), cluster_group.tsv, cluster_KSLabel.tsv (Kilosort)",
    )


def load_spikes(ks_dir: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Memory-mapped ``spike_times`` and ``spike_clusters`` (1-D), checked for length and order."""
    ks_dir = Path(ks_dir)
    times = _load_npy(ks_dir / "spike_times.npy")
    clus = _load_npy(ks_dir / "spike_clusters.npy")
    if times.ndim == 2 and times.shape[1] == 1:
        times = times[:, 0]
    if clus.ndim == 2 and clus.shape[1] == 1:
        clus = clus[:, 0]
    if times.ndim != 1 or clus.ndim != 1:
        raise InputError(
            ks_dir, f"spike_times {times.shape} / spike_clusters {clus.shape} are not 1-D"
        )
    if len(times) != len(clus):
        raise InputError(
            ks_dir / "spike_clusters.npy",
            f"{len(clus)} entries but spike_times.npy has {len(times)}",
        )
    if not (np.issubdtype(times.dtype, np.integer) and np.issubdtype(clus.dtype, np.integer)):
        raise InputError(
            ks_dir,
            f"spike_times ({times.dtype}) and spike_clusters ({clus.dtype}) must be integers",
        )
    step = 1 << 22
    prev = None
    for a in range(0, len(times), step):
        x = np.asarray(times[a : a + step], dtype=np.int64)
        if (prev is not None and len(x) and x[0] < prev) or np.any(np.diff(x) < 0):
            raise InputError(ks_dir / "spike_times.npy", "spike times are not in ascending order")
        if len(x):
            prev = x[-1]
    return times, clus


def split_session(
    ks_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    probe: str,
    window: tuple[int, int],
    sample_rate: float,
    esr: float,
    n_frames: int,
    *,
    min_spike_num: int | None = None,
    remove_duplicates: bool = True,
    censor_samples: int = 9,
    margin_samples: int | None = None,
    frame_onsets: np.ndarray | None = None,
) -> dict:
    """Write one session's cluster files into ``out_dir`` (replaced); return the manifest dict.

    ``window`` is the session's ``tracking_start_end`` in concatenated-file samples. The manifest
    lists every written file with its cluster, channel, label and spike count, and counts what was
    left out (noise, unlabelled, too few spikes). ``frame_onsets``: onsets of frames ``0..n_frames-1``
    and of the pulse after the last frame, in concatenated-file samples (``n_frames + 1`` values,
    the first equal to the window's start).
    """
    min_spike_num = setting_default("ephys.spikes.min_spike_num", min_spike_num)
    start, end = int(window[0]), int(window[1])
    if not (0 <= start < end):
        raise InputError(None, f"bad tracking window {window}")
    if not (sample_rate > 0 and esr > 0 and n_frames >= 1):
        raise InputError(
            None, f"bad rates or frame count: rate={sample_rate}, esr={esr}, frames={n_frames}"
        )
    if frame_onsets is not None:
        frame_onsets = np.asarray(frame_onsets, dtype=np.int64)
        if len(frame_onsets) != n_frames + 1 or frame_onsets[0] != start or frame_onsets[-1] != end:
            raise InputError(
                None, f"{len(frame_onsets)} frame onsets from {frame_onsets[:1]} to {frame_onsets[-1:]} do not "
                f"describe {n_frames} frames in the window [{start}, {end})",
            )  # fmt: skip
        if np.any(np.diff(frame_onsets) <= 0):
            raise InputError(None, "frame onsets are not strictly increasing")
    ks_dir, out_dir = Path(ks_dir), Path(out_dir)
    times, clus = load_spikes(ks_dir)
    labels, label_source = load_labels(ks_dir)
    margin = int(round(sample_rate)) if margin_samples is None else int(margin_samples)
    spikes, dups = session_cluster_spikes(
        times,
        clus,
        start,
        end,
        remove_duplicates=remove_duplicates,
        censor_samples=censor_samples,
        margin_samples=margin,
        return_duplicates=True,
    )
    unknown = sorted(set(spikes) - set(labels))
    if unknown:
        raise InputError(
            ks_dir,
            f"spike_clusters has cluster(s) {unknown[:10]} without a label in {label_source}",
        )

    files, below, noise, unsorted = [], [], [], []
    arrays = {}
    for cid, st in progress(
        spikes.items(), total=len(spikes), desc=f"split spikes {probe}", unit="cluster"
    ):
        label, ch = labels[cid]
        if label not in KEPT_LABELS:
            (noise if label == "noise" else unsorted).append(cid)
            continue
        if len(st) <= min_spike_num:
            below.append({"cluster_id": cid, "n_spikes": int(len(st))})
            continue
        sec = (st - start) / float(sample_rate)
        if frame_onsets is None:
            frames = np.round(sec * float(esr))
        else:
            j = np.searchsorted(frame_onsets, st, side="right") - 1  # last onset <= spike
            nxt = frame_onsets[np.minimum(j + 1, n_frames)]
            frames = np.where(nxt - st < st - frame_onsets[j], j + 1, j).astype(np.float64)
        frames[frames >= n_frames] = n_frames - 1
        name = f"{probe}_cl{cid:04d}_ch{ch:03d}_{label}.npy"
        arrays[name] = np.vstack((sec, frames)).astype(np.float64)
        files.append(
            {
                "file": name,
                "cluster_id": cid,
                "channel": ch,
                "label": label,
                "n_spikes": int(len(st)),
            }
        )

    # Replace out_dir as a whole: write a sibling temporary folder, then swap.
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(out_dir)
    old = temporary_name(out_dir, "old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        for name, arr in arrays.items():
            with open(tmp / name, "wb") as fh:
                np.save(fh, arr)
                fh.flush()
                os.fsync(fh.fileno())
        if out_dir.exists():
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return {
        "probe": probe,
        "sorter_dir": str(ks_dir),
        "labels_from": label_source,
        "tracking_start_end": [start, end],
        "sample_rate": float(sample_rate),
        "median_empirical_camera_sr": float(esr),
        "frame_index": "round(seconds * median_empirical_camera_sr)"
        if frame_onsets is None
        else "nearest triggerbox frame onset in the sync word",
        "total_frame_number_least": int(n_frames),
        "min_spike_num": int(min_spike_num),
        "remove_duplicate_spikes": bool(remove_duplicates),
        "censor_samples": int(censor_samples),
        "duplicates_removed": dups,
        "files": sorted(files, key=lambda f: f["cluster_id"]),
        "below_min_spike_num": below,
        "noise_cluster_ids": sorted(noise),
        "unsorted_cluster_ids": sorted(unsorted),
    }
