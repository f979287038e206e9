"""Model-free sound-source localization of USVs and their assignment to animals.

**Localization** (steered response power with phase-transform weighting, SRP-PHAT). For one USV,
the window ``[start, stop)`` of all microphones (at most ``max_window_s`` around the loudest part)
is band-limited to ``[f_lo_hz, f_hi_hz]``; the generalized cross-correlation with phase transform
(GCC-PHAT) of every microphone pair is computed once by FFT; the response of a candidate source
point ``p`` is the sum over pairs of the pair's GCC at the time difference of arrival that ``p``
implies (``(|p - m_i| - |p - m_j|) / c``, linearly interpolated between lags). The point of largest
response is searched on a coarse grid over the arena (``grid_step_m``, a few heights), then on a
fine grid around the best coarse point (``refine_step_m``). With 24 microphones above the arena and
250 kHz sampling, one lag is 1.4 mm of path difference.

**Assignment.** The estimated source is compared with each animal's nose (or another node) at the
USV's video frame. With an isotropic Gaussian localization error of scale ``sigma_m`` in the
horizontal plane, the posterior probability of animal ``k`` (uniform prior) is
``exp(-d_k^2 / 2 sigma^2) / sum_j exp(-d_j^2 / 2 sigma^2)``; the USV is assigned to the most probable
animal when that probability reaches ``confidence`` and the estimate lies within
``max_distance_m`` of it, else left unassigned. ``sigma_m`` is calibrated on simulated sessions
(``tests/usv/test_localize.py`` checks that the stated confidence is not optimistic).

**Weak evidence.** That posterior assumes the estimate is a real source. It is weighted by the
probability that the localization is valid at all, a function of its coherence (the mean pair GCC
at the estimate): ``1 / (1 + (coherence_half / coherence) ** COHERENCE_EXPONENT)``. On simulated
clips (docs/detector.md) noise and single-channel specks reach 0.001-0.002, calls localized to
millimetres 0.006-0.12, and failed localizations of faint calls (cm errors) 0.001-0.004; so the
half point is 0.003 and a USV localized from noise (coherence 0.002) gets confidence <= 0.15.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np
import scipy.fft as sfft

from ..io.atomic import InputError, atomic_path, save_figure
from ..io.config import defaults_from_schema, setting_default

__all__ = [
    "LocalizeParams",
    "gcc_phat",
    "localize",
    "assign",
    "localization_validity",
    "localize_usvs",
    "write_dset",
]

COHERENCE_EXPONENT = (
    4.0  # steepness of the validity curve: 0.05 at half the half point, 0.94 at twice
)


@dataclass(frozen=True)
@defaults_from_schema("assignment.builtin")
class LocalizeParams:
    """Settings of the built-in localizer (config ``assignment.builtin``)."""

    f_lo_hz: float
    f_hi_hz: float
    speed_of_sound: float
    max_window_s: float
    dynamic_db: float
    grid_step_m: float
    refine_step_m: float
    z_levels_m: tuple
    margin_m: float
    sigma_m: float
    coherence_half: float = 0.003
    confidence: float
    max_distance_m: float
    node: str

    @classmethod
    def from_mapping(cls, m: dict | None) -> LocalizeParams:
        from ..io.config import dataclass_from_mapping

        m = dict(m or {})
        if "z_levels_m" in m:
            m["z_levels_m"] = tuple(m["z_levels_m"])
        return dataclass_from_mapping(cls, m, "localizer setting")


def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    i, j = np.triu_indices(n, k=1)
    return i, j


def gcc_phat(
    x: np.ndarray,
    sr: float,
    max_lag: int,
    f_lo: float,
    f_hi: float,
    dynamic_db: float | None = None,
) -> np.ndarray:
    """GCC-PHAT of every microphone pair ``(i < j)`` of ``x`` (samples × mics).

    Returns the analytic correlation ``(n_pairs, 2 * max_lag + 1)`` (complex; real part the GCC,
    modulus its envelope), lag ``L`` at column ``L + max_lag``, a peak at positive ``L`` when the
    sound reaches ``i`` ``L`` samples *after* ``j``.
    """
    dynamic_db = setting_default("assignment.builtin.dynamic_db", dynamic_db)
    n, m = x.shape
    nfft = sfft.next_fast_len(n + max_lag + 1)
    X = sfft.rfft(np.asarray(x, np.float32), n=nfft, axis=0).T  # (m, nf)
    f = np.arange(X.shape[1]) * sr / nfft
    band = (f >= f_lo) & (f <= f_hi)
    # PHAT whitens every bin to unit weight: keep only the bins that carry the call (within
    # dynamic_db of the strongest bin of the channels' mean power), or noise bins dominate
    pw = np.mean(np.abs(X) ** 2, axis=0)
    if band.any() and pw[band].max() > 0:
        band &= pw >= pw[band].max() * 10 ** (-dynamic_db / 10)
    X = X[:, band]
    X /= np.maximum(np.abs(X), 1e-12)
    i, j = _pairs(m)
    # one-sided spectrum, doubled: the inverse FFT is the analytic correlation, whose real part is
    # the GCC and whose modulus its envelope (free of the carrier's periodicity)
    full = np.zeros((i.size, nfft), np.complex64)
    full[:, : nfft // 2 + 1][:, band] = 2 * X[i] * np.conj(X[j])
    r = sfft.ifft(full, axis=1, overwrite_x=True)
    return np.concatenate([r[:, nfft - max_lag :], r[:, : max_lag + 1]], axis=1)


@numba.njit(cache=True, nogil=True)
def _srp_kernel(gcc, d, pi, pj, scale, offset):  # pragma: no cover - compiled
    G = d.shape[0]
    P = pi.shape[0]
    L = gcc.shape[1]
    out = np.zeros(G, np.float64)
    for g in range(G):
        acc = 0.0
        for q in range(P):
            lag = (d[g, pi[q]] - d[g, pj[q]]) * scale + offset
            if lag < 0.0:
                lag = 0.0
            elif lag > L - 1.001:
                lag = L - 1.001
            k = int(lag)
            w = lag - k
            acc += (1.0 - w) * gcc[q, k] + w * gcc[q, k + 1]
        out[g] = acc
    return out


def _srp(
    gcc: np.ndarray, pts: np.ndarray, mics: np.ndarray, sr: float, c: float, max_lag: int
) -> np.ndarray:
    """Steered response of ``pts``: for each point the sum over pairs of the pair's correlation at
    the point's time difference of arrival (linearly interpolated between lags)."""
    i, j = _pairs(len(mics))
    d = np.linalg.norm(pts[:, None, :] - mics[None, :, :], axis=2)  # (G, M)
    return _srp_kernel(np.ascontiguousarray(gcc, np.float32), d, i.astype(np.int64), j.astype(np.int64),
                       float(sr / c), float(max_lag))  # fmt: skip


def _grid(lo: np.ndarray, hi: np.ndarray, step: float, zs) -> np.ndarray:
    xs = np.arange(lo[0], hi[0] + step / 2, step)
    ys = np.arange(lo[1], hi[1] + step / 2, step)
    gx, gy, gz = np.meshgrid(xs, ys, np.asarray(zs, np.float64), indexing="ij")
    return np.stack([gx.ravel(), gy.ravel(), gz.ravel()], axis=1)


def localize(x: np.ndarray, sr: float, mics: np.ndarray, bounds_xy: tuple, params: LocalizeParams | None = None
             ) -> tuple[np.ndarray, float]:  # fmt: skip
    """Source position (m, the microphones' frame) of the sound in ``x`` (samples × mics) and the
    normalised peak response (mean pair GCC at the estimate, 0–1: how coherent the sound is)."""
    p = params or LocalizeParams()
    mics = np.asarray(mics, np.float64)
    x = np.asarray(x, np.float32)
    if x.shape[1] != len(mics):
        raise ValueError(f"{x.shape[1]} channels but {len(mics)} microphone positions")
    win = int(p.max_window_s * sr)
    if x.shape[0] > win:  # the loudest stretch of the call
        e = np.square(x).sum(axis=1)
        cs = np.concatenate([[0.0], np.cumsum(e, dtype=np.float64)])
        a = int(np.argmax(cs[win:] - cs[:-win]))
        x = x[a : a + win]
    x = x - x.mean(axis=0)
    span = np.ptp(mics, axis=0)
    max_lag = int(math.ceil(np.linalg.norm(span) / p.speed_of_sound * sr)) + 2
    g = gcc_phat(x, sr, max_lag, p.f_lo_hz, p.f_hi_hz, p.dynamic_db)
    (x0, x1), (y0, y1) = bounds_xy
    lo = np.array([x0 - p.margin_m, y0 - p.margin_m])
    hi = np.array([x1 + p.margin_m, y1 + p.margin_m])
    env = np.abs(g).astype(np.float32)
    real = g.real.astype(np.float32)
    # coarse: the envelope's response on a grid over the arena (a narrow-band call's GCC repeats
    # every carrier period, a few mm of path difference: the envelope has no such aliases)
    pts = _grid(lo, hi, p.grid_step_m, p.z_levels_m)
    best = pts[int(np.argmax(_srp(env, pts, mics, sr, p.speed_of_sound, max_lag)))]
    # fine: the GCC itself (carrier phase) around the coarse estimate
    r0 = 2 * p.grid_step_m
    zs = np.arange(min(p.z_levels_m), max(p.z_levels_m) + 1e-9, 0.01)
    fine = _grid(best[:2] - r0, best[:2] + r0, p.refine_step_m, zs)
    r = _srp(real, fine, mics, sr, p.speed_of_sound, max_lag)
    k = int(np.argmax(r))
    # a copy: a row view would keep the whole fine grid alive with every USV's result
    return fine[k].copy(), float(r[k] / g.shape[0])


def localization_validity(coherence: float, params: LocalizeParams | None = None) -> float:
    """Probability that a localization of this coherence is a real source (module docstring)."""
    p = params or LocalizeParams()
    if not math.isfinite(coherence) or coherence <= 0:
        return 0.0
    return float(1.0 / (1.0 + (p.coherence_half / coherence) ** COHERENCE_EXPONENT))


def assign(source_xy: np.ndarray, animals_xy: np.ndarray, params: LocalizeParams | None = None,
           coherence: float | None = None) -> tuple[int, float, np.ndarray]:  # fmt: skip
    """``(animal index or -1, probability of the most probable animal, distances (m))`` for one USV.

    ``animals_xy``: ``(n_animals, 2)``; rows with NaN (animal not tracked at that frame) get
    probability 0. With ``coherence`` (of the localization) the probability is weighted by
    :func:`localization_validity`. Unassigned (-1) when the probability is below ``confidence``,
    the closest animal is farther than ``max_distance_m``, or no animal is tracked.
    """
    p = params or LocalizeParams()
    d = np.linalg.norm(
        np.asarray(animals_xy, np.float64) - np.asarray(source_xy, np.float64)[None, :2], axis=1
    )
    ok = np.isfinite(d)
    if not ok.any():
        return -1, math.nan, d
    ll = np.where(ok, -0.5 * (np.where(ok, d, 0) / p.sigma_m) ** 2, -np.inf)
    post = np.exp(ll - ll[ok].max())
    post /= post.sum()
    k = int(np.argmax(post))
    conf = float(post[k])
    if coherence is not None:
        conf *= localization_validity(coherence, p)
    if conf < p.confidence or d[k] > p.max_distance_m:
        return -1, conf, d
    return k, conf, d


def localize_usvs(mm: np.ndarray, sr: float, summary, mics: np.ndarray, bounds_xy: tuple,
                  animals_at, track_names: list[str], params: LocalizeParams | None = None,
                  progress: bool = False, workers: int = 1):  # fmt: skip
    """Localize and assign every USV of a summary DataFrame (``start``, ``stop`` in s).

    ``animals_at(t)`` returns the animals' ``(n_animals, 3)`` node positions (m) at session time
    ``t`` (s since the first video frame). Returns ``(estimates DataFrame, emitters list)``: per USV
    ``usv_id, x_m, y_m, z_m, coherence, confidence, emitter, dist_<track>_m``. ``workers``: USVs
    localized at the same time (threads: the steered-response kernel and the FFTs release the GIL;
    the result does not depend on it). ``mm`` must allow reads from several threads (a
    :class:`~usvflow.io.rows.RowReader` or an array).
    """
    from concurrent.futures import ThreadPoolExecutor

    import pandas as pd

    p = params or LocalizeParams()
    rows, emitters = [], []
    n = mm.shape[0]
    usvs = list(summary.itertuples(index=False))

    def one(u):
        a, b = max(0, int(math.floor(u.start * sr))), min(n, int(math.ceil(u.stop * sr)))
        if b - a < 64:
            return np.full(3, np.nan), math.nan
        return localize(np.asarray(mm[a:b, :], np.float32), sr, mics, bounds_xy, p)

    with ThreadPoolExecutor(max_workers=max(1, int(workers))) as ex:
        located = ex.map(one, usvs)  # in summary order
        if progress:
            from ..io.progress import progress as bar

            located = bar(located, total=len(usvs), desc="localize USVs", unit="USV")
        located = list(located)
    for u, (xyz, coh) in zip(usvs, located):
        animals = np.asarray(animals_at(float(u.start)), np.float64)
        if np.isfinite(xyz).all():
            k, conf, d = assign(xyz[:2], animals[:, :2], p, coherence=coh)
        else:
            k, conf, d = -1, math.nan, np.full(len(track_names), np.nan)
        emitter = track_names[k] if k >= 0 else None
        emitters.append(emitter)
        rows.append({"usv_id": u.usv_id, "x_m": xyz[0], "y_m": xyz[1], "z_m": xyz[2], "coherence": coh,
                     "confidence": conf, "emitter": emitter,
                     **{f"dist_{t}_m": float(v) for t, v in zip(track_names, d)}})  # fmt: skip
    cols = ["usv_id", "x_m", "y_m", "z_m", "coherence", "confidence", "emitter"] + [
        f"dist_{t}_m" for t in track_names
    ]
    return pd.DataFrame(rows, columns=cols), emitters


# ---------------------------------------------------------------------------------------- vocalocator


def write_dset(path: str | os.PathLike, mm: np.ndarray, sr: int, summary, locations_at, node_names: list[str],
               fps: float, arena_dims_m: tuple[float, float], n_animals: int) -> Path:  # fmt: skip
    """Write vocalocator's input ``dset.h5`` (docs/original-pipeline.md step 14a), one USV at a
    time.

    ``audio`` float16 (sum of lengths, channels), samples ``int16 / 32767`` from ``[int(start·sr),
    int(stop·sr))``; ``length_idx`` (n + 1,) int64 from 0; ``locations`` float64 (n, animals, nodes, 3)
    in **mm** at the USV's video frame (``locations_at(frame)`` gives metres); ``node_names`` bytes;
    ``animal_id`` int32 (n, animals). Attributes ``audio_sr``, ``video_fps``, ``arena_dims`` with
    ``arena_dims_units = "mm"`` -- in millimetres (the original stored metres under that label).
    """
    import h5py

    path = Path(path)
    n = len(summary)
    nch = mm.shape[1]
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as h:
            audio = h.create_dataset("audio", shape=(0, nch), maxshape=(None, nch), dtype="float16",
                                     chunks=(min(65536, max(1024, int(sr) // 4)), nch))  # fmt: skip
            locs = np.zeros((n, n_animals, len(node_names), 3), np.float64)
            length = [0]
            for i, u in enumerate(summary.itertuples(index=False)):
                a, b = int(u.start * sr), int(u.stop * sr)
                if not (0 <= a < b <= mm.shape[0]):
                    raise InputError(
                        path, f"USV {u.usv_id} [{u.start}, {u.stop}] s lies outside the audio"
                    )
                x = (np.asarray(mm[a:b, :], np.float32) / 32767.0).astype(np.float16)
                audio.resize(audio.shape[0] + x.shape[0], axis=0)
                audio[-x.shape[0] :] = x
                length.append(length[-1] + x.shape[0])
                frame = int(u.start * fps)
                locs[i] = np.asarray(locations_at(frame), np.float64) * 1000.0
            h.create_dataset("length_idx", data=np.asarray(length, np.int64))
            h.create_dataset("locations", data=locs)
            h.create_dataset("node_names", data=np.array([s.encode() for s in node_names]))
            h.create_dataset(
                "animal_id", data=np.tile(np.arange(n_animals, dtype=np.int32), (n, 1))
            )
            h.attrs["audio_sr"] = int(sr)
            h.attrs["video_fps"] = float(fps)
            h.attrs["arena_dims"] = np.asarray(arena_dims_m, np.float64) * 1000.0
            h.attrs["arena_dims_units"] = "mm"
    return path


# ---------------------------------------------------------------------------------------- session I/O


def read_metric_tracks(path: str | os.PathLike) -> dict:
    """``tracks`` (frames, animals, nodes, 3) metres, ``node_names``, ``track_names`` of a
    ``*_points3d_translated_rotated_metric.h5`` (tracks read lazily through an open h5py dataset)."""
    import h5py

    path = Path(path)
    try:
        h = h5py.File(path, "r")
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except OSError as exc:
        raise InputError(path, f"not an HDF5 file ({exc})") from None
    for key in ("tracks", "node_names"):
        if key not in h:
            raise InputError(path, f"no '{key}' dataset (not a points3d file)")
    t = h["tracks"]
    if t.ndim != 4 or t.shape[-1] != 3:
        raise InputError(path, f"tracks of shape {t.shape}, expected (frames, tracks, nodes, 3)")
    dec = lambda a: [x.decode() if isinstance(x, bytes) else str(x) for x in np.asarray(a).ravel()]  # noqa: E731
    names = (
        dec(h["track_names"][()])
        if "track_names" in h
        else [f"track_{k}" for k in range(t.shape[1])]
    )
    return {"file": h, "tracks": t, "node_names": dec(h["node_names"][()]), "track_names": names}


def arena_geometry(arena_h5: str | os.PathLike, n_channels: int, pattern: str = "ch_{j}") -> dict:
    """Microphone positions ``(n_channels, 3)`` (memmap column order) and the corners' xy bounds from
    the arena's metric file (frame 0, track 0)."""
    a = read_metric_tracks(arena_h5)
    names = a["node_names"]
    pts = np.asarray(a["tracks"][0, 0], np.float64)
    a["file"].close()
    want = [pattern.format(j=j, j1=j + 1) for j in range(n_channels)]
    missing = [w for w in want if w not in names]
    if missing:
        raise InputError(arena_h5, f"no microphone node(s) {missing[:4]}{'…' if len(missing) > 4 else ''} "
                                   f"(pattern {pattern!r}; nodes: {names[:8]}…)")  # fmt: skip
    mics = np.stack([pts[names.index(w)] for w in want])
    corners = [c for c in ("North", "West", "South", "East") if c in names]
    if len(corners) < 4:
        raise InputError(
            arena_h5, f"arena corners North/West/South/East not all labelled (nodes: {names[:8]}…)"
        )
    cxy = np.stack([pts[names.index(c), :2] for c in corners])
    if not np.isfinite(mics).all() or not np.isfinite(cxy).all():
        raise InputError(arena_h5, "a microphone or corner position is NaN")
    bounds = (
        (float(cxy[:, 0].min()), float(cxy[:, 0].max())),
        (float(cxy[:, 1].min()), float(cxy[:, 1].max())),
    )
    return {"mics": mics, "bounds": bounds, "corners_xy": cxy}


def plot_sources(
    estimates, animals_xy: np.ndarray, track_names: list[str], bounds, mics, path, title=""
) -> Path:
    """SVG: estimated sources over the arena (coloured by emitter, unassigned grey) with each animal's
    position at the USV and a line from estimate to the assigned animal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, ax = plt.subplots(figsize=(6.4, 6.4), layout="constrained")
    (x0, x1), (y0, y1) = bounds
    ax.plot([x0, x1, x1, x0, x0], [y0, y0, y1, y1, y0], color="0.6", lw=1)
    ax.scatter(mics[:, 0], mics[:, 1], marker="s", s=12, color="0.3", label="microphones")
    colours = plt.get_cmap("tab10")
    for k, name in enumerate(track_names):
        ax.scatter(animals_xy[:, k, 0], animals_xy[:, k, 1], s=14, marker="o", facecolors="none",
                   edgecolors=colours(k), label=f"{name} at the USV")  # fmt: skip
        m = (estimates["emitter"] == name).to_numpy()
        ax.scatter(estimates["x_m"][m], estimates["y_m"][m], s=16, marker="x", color=colours(k),
                   label=f"source -> {name} ({int(m.sum())})")  # fmt: skip
        for i in np.flatnonzero(m):
            ax.plot([estimates["x_m"].iloc[i], animals_xy[i, k, 0]], [estimates["y_m"].iloc[i], animals_xy[i, k, 1]],
                    color=colours(k), lw=0.5, alpha=0.6)  # fmt: skip
    un = estimates["emitter"].isna().to_numpy()
    ax.scatter(estimates["x_m"][un], estimates["y_m"][un], s=16, marker="x", color="0.5",
               label=f"unassigned ({int(un.sum())})")  # fmt: skip
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper right", frameon=False)
    save_figure(fig, path, "svg")
    plt.close(fig)
    return path


def assign_session(summary_csv, memmap, tracks_h5, arena_h5, fps: float, estimates_csv, assigned_csv, plot_svg,
                   params: LocalizeParams | dict | None = None, mic_node_pattern: str | None = None,
                   progress: bool = False, workers: int = 1) -> dict:  # fmt: skip
    """The built-in assignment of one session (rule ``localize_usvs``); returns counts (``workers``:
    see :func:`localize_usvs`)."""
    mic_node_pattern = setting_default("assignment.builtin.mic_node_pattern", mic_node_pattern)
    from ..audio.memmap import open_memmap_reader, parse_memmap_name
    from .curate import read_summary, write_summary

    p = params if isinstance(params, LocalizeParams) else LocalizeParams.from_mapping(params)
    summ = read_summary(summary_csv)
    mm = open_memmap_reader(memmap)
    sr = parse_memmap_name(memmap)["sample_rate"]
    geo = arena_geometry(arena_h5, mm.shape[1], mic_node_pattern)
    tr = read_metric_tracks(tracks_h5)
    try:
        node = tr["node_names"].index(p.node) if p.node in tr["node_names"] else None
        if node is None:
            raise InputError(tracks_h5, f"no node {p.node!r} (nodes: {tr['node_names']})")
        n_frames = tr["tracks"].shape[0]

        def animals_at(t):
            f = int(np.clip(int(t * fps), 0, n_frames - 1))
            return np.asarray(tr["tracks"][f, :, node, :], np.float64)

        est, emitters = localize_usvs(mm, sr, summ, geo["mics"], geo["bounds"], animals_at, tr["track_names"], p,
                                      progress=progress, workers=workers)  # fmt: skip
        animals_xy = np.stack([animals_at(t)[:, :2] for t in summ["start"]]) if len(summ) else \
            np.zeros((0, len(tr["track_names"]), 2))  # fmt: skip
    finally:
        tr["file"].close()
    with atomic_path(Path(estimates_csv)) as tmp:
        est.to_csv(tmp, index=False, float_format="%.6g")
    out = summ.copy()
    out["emitter"] = pd_object(emitters)
    write_summary(out, assigned_csv)
    plot_sources(
        est,
        animals_xy,
        tr["track_names"],
        geo["bounds"],
        geo["mics"],
        plot_svg,
        title=f"{Path(summary_csv).name}: {sum(e is not None for e in emitters)} of {len(emitters)} assigned",
    )
    return {"usvs": len(summ), "assigned": int(sum(e is not None for e in emitters)),
            "per_track": {t: emitters.count(t) for t in tr["track_names"]}}  # fmt: skip


def pd_object(values):
    import pandas as pd

    return pd.array(list(values), dtype="object")


def vocalocator_ssl_assignments(npz_path: str | os.PathLike, n_usvs: int) -> np.ndarray:
    """Assignments (int, -1 = unassigned) from vocalocator-ssl's predictions after ``vocalocatorssl.assign``:
    the first array whose name ends in ``assignments``."""
    path = Path(npz_path)
    try:
        z = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except (OSError, ValueError) as exc:
        raise InputError(path, f"not an .npz file ({exc})") from None
    keys = sorted(k for k in z.files if k.endswith("assignments"))
    if not keys:
        raise InputError(
            path, f"no '*assignments' array (has {z.files}): did vocalocatorssl.assign run?"
        )
    a = np.asarray(z[keys[0]]).astype(np.int64).ravel()
    if a.size != n_usvs:
        raise InputError(path, f"{a.size} assignments for {n_usvs} USVs in the summary")
    return a
