"""Step 15e: the A/V sync verdict of a session (LED in video ↔ LSB in audio ↔ Arduino log, optional NIDQ).

Every stream's IPIs are aligned with the Arduino log (:func:`usvflow.sync.ipi.match_to_arduino`); an
audio IPI and a video IPI are the same LED pulse when they align with the same Arduino IPI (the original
instead trims the sequences' first/last elements until the lengths agree). For each such pair

    discrepancy_ms = (audio_start_sample / sr - video_event_s) * 1000

where ``video_event_s`` is the time of the LED-off transition in the video: midway between the last
frame showing the LED on and the first frame showing it off, ``(first_dark_frame - 0.5) / ESR``
(ESR = the sync camera's empirical rate from the frame-count JSON, looked up by serial, B14), or the
midpoint of the two frames' Loopbio ``frame_time`` stamps with ``extract_exact_video_frame_times``. The
original uses the last bright frame, which biases the discrepancy by +½ frame (3.3 ms at 150 fps); the
midpoint leaves a zero-mean ±½-frame quantization.

Verdict per audio device (and for the NIDQ): **pass** when its IPIs and the video's align with the
Arduino log, every paired IPI agrees with the log within the tolerance, and every |discrepancy| is
within the tolerance; the session passes when every device (and the cross-device check) does. The
JSON keeps every IPI's discrepancy, per-device statistics (median, mean, SD, SEM, 99 % CI = mean ±
2.58 SEM, range, drift slope, largest step between consecutive IPIs) and the reasons of a failure.
No file is deleted (the original removes ``audio/original`` on success, B9).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from usvflow.io.atomic import InputError, read_json, write_json
from usvflow.io.coolterm import read_ipis

from ..io.config import setting_default
from .ipi import AudioIPIs, Match, audio_ipis, match_to_arduino, video_ipi_candidates
from .leds import read_led_pixels

__all__ = ["av_sync_check", "discrepancy_stats", "select_video_ipis", "write_nidq_ipi_data"]


def discrepancy_stats(disc_ms, frames=None, fps: float | None = None) -> dict:
    """Statistics of a discrepancy series (ms); ``frames``/``fps`` add the drift slope (ms per minute)."""
    d = np.asarray(disc_ms, dtype=np.float64)
    d = d[np.isfinite(d)]
    n = len(d)
    if n == 0:
        return {"n": 0}
    mean = float(d.mean())
    std = float(d.std(ddof=1)) if n > 1 else 0.0
    sem = std / np.sqrt(n) if n > 1 else float("nan")
    out = {
        "n": n,
        "median_ms": float(np.median(d)),
        "mean_ms": mean,
        "std_ms": std,
        "sem_ms": float(sem),
        "ci99_ms": [mean - 2.58 * sem, mean + 2.58 * sem],
        "min_ms": float(d.min()),
        "max_ms": float(d.max()),
        "max_abs_ms": float(np.abs(d).max()),
    }
    if n > 1:
        steps = np.diff(d)
        j = int(np.argmax(np.abs(steps)))
        out["largest_step_ms"] = float(steps[j])
        out["largest_step_after_ipi"] = j
    if frames is not None and fps and n > 2:
        f = np.asarray(frames, dtype=np.float64)
        t_min = f / fps / 60.0
        if np.ptp(t_min) > 0:
            out["drift_ms_per_min"] = float(np.polyfit(t_min, d, 1)[0])
    return out


def select_video_ipis(px: np.ndarray, fps: float, arduino: np.ndarray, tolerance_ms: float, upper: float = 1.0,
                      min_duration: int = 35, min_fraction: float = 0.8):  # fmt: skip
    """The video IPI candidate that aligns best with the Arduino log.

    Candidates come from :func:`usvflow.sync.ipi.video_ipi_candidates` (median brightness then max,
    thresholds high to low); the first one whose every IPI agrees is taken, else the accepted one with
    the most agreeing IPIs. Returns ``(VideoIPIs | None, Match | None, tried)`` where ``tried`` counts
    candidates and says what was swept.
    """
    best = None
    n_cand = 0
    for cand in video_ipi_candidates(px, fps, upper, min_duration):
        n_cand += 1
        m = match_to_arduino(cand.ipi_ms, arduino, tolerance_ms, min_fraction)
        if m.accepted and m.n_matched == m.n_overlap and m.n_matched == len(cand.ipi_ms):
            return cand, m, n_cand
        if best is None or (m.accepted, m.n_matched) > (best[1].accepted, best[1].n_matched):
            best = (cand, m)
    if best is None:
        return None, None, n_cand
    return best[0], best[1], n_cand


def _video_event_s(
    start_frames: np.ndarray, fps: float, frame_times: np.ndarray | None
) -> np.ndarray:
    f = np.asarray(start_frames, dtype=np.int64)
    if frame_times is None:
        return (f - 0.5) / fps
    t = np.asarray(frame_times, dtype=np.float64)
    if f.max(initial=0) >= len(t):
        raise InputError(
            None, f"video IPI at frame {int(f.max())} beyond the {len(t)} Loopbio frame times"
        )
    return 0.5 * (t[f - 1] + t[f]) - t[0]


def _pairs(m_a: Match, m_b: Match) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices ``(ia, ib, arduino_k)`` of the IPIs of two aligned sequences that share an Arduino IPI."""
    ka, kb = m_a.arduino_index, m_b.arduino_index
    common, ia, ib = np.intersect1d(ka[ka >= 0], kb[kb >= 0], return_indices=True)
    # intersect1d returns indices into the filtered arrays: map back
    ia = np.flatnonzero(ka >= 0)[ia]
    ib = np.flatnonzero(kb >= 0)[ib]
    return ia, ib, common


def _video_block(serial, px_path, sidecar, fps, arduino, tol, upper, min_dur, min_frac, n_frames):
    px = read_led_pixels(px_path, n_frames)
    entry = {"serial": serial, "sync_px": str(px_path), "esr": fps, "n_frames": int(len(px))}
    if sidecar is not None and Path(sidecar).is_file():
        side = read_json(sidecar)
        entry["led_pixels"] = side.get("pixels")
        entry["led_refined"] = side.get("refined")
        entry["led_contrast"] = side.get("contrast")
    cand, m, tried = select_video_ipis(px, fps, arduino, tol, upper, min_dur, min_frac)
    entry["candidates_tried"] = tried
    if cand is None:
        b = px.astype(np.float64).mean(axis=2)
        lo, hi = (float(b.min()), float(b.max())) if len(b) else (float("nan"), float("nan"))
        entry["error"] = (
            f"no LED flashes found: every relative-intensity threshold from {max(upper - 0.01, 0.2):.2f} down to "
            f"0.20 (median and max over the 3 LEDs) and a {min_dur}-frame glitch filter gave no complete IPI; "
            f"LED intensities span {lo:.0f}..{hi:.0f} (check sync.av.led_pixels / led_px_version)"
        )
        return entry, None, None
    entry.update(
        threshold=cand.threshold,
        brightness=cand.how,
        n_ipis=int(len(cand.ipi_ms)),
        ipi_ms=cand.ipi_ms,
        ipi_start_frames=cand.start_frames,
        ipi_end_frames=cand.end_frames,
        arduino_match=m.summary(),
    )
    if not m.accepted:
        entry["error"] = f"video IPIs of camera {serial}: {m.reason}"
    return entry, cand, m


#: words of the reasons that are a measured disagreement (evidence against the sync), as opposed to
#: pulses not found or not matched
_DISAGREEMENT = ("by more than", "ms (>", "disagree by up to")


def av_sync_check(
    *,
    session_id: str,
    frame_counts: str | os.PathLike,
    led_px: Mapping[str, str | os.PathLike],
    audio: Mapping[str, str | os.PathLike],
    coolterm: str | os.PathLike,
    led_sidecars: Mapping[str, str | os.PathLike] | None = None,
    frames_in_audio: Mapping[str, str | os.PathLike] | None = None,
    nidq: Mapping | None = None,
    frame_times: Mapping[str, np.ndarray] | None = None,
    tolerance_ms: float = 12.0,
    relative_intensity_threshold: float | None = None,
    min_event_duration_frames: int | None = None,
    min_matched_fraction: float | None = None,
    min_paired_ipis: int | None = None,
) -> dict:
    """Run the A/V check of one session; returns the JSON-able result (see the module docstring).

    The verdict is "pass", "fail", or "insufficient" when nothing failed but a device has fewer than
    ``min_paired_ipis`` IPIs paired with the Arduino log and the video (too little evidence to pass).

    ``led_px``: ``{serial: sync_px file}`` of the sync cameras (the first that aligns with the Arduino
    log is the reference); ``audio``: ``{device: cropped sync-channel WAV}``; ``frames_in_audio``:
    ``{device: sync/<dev>_video_frames_in_audio_samples.txt}`` for the frame cross-check; ``nidq``: the
    result of :func:`usvflow.sync.ipi.nidq_ipis` (or None); ``frame_times``: ``{serial: Loopbio
    frame_time}`` to time video events by the camera's stamps instead of frame / ESR.
    """
    min_event_duration_frames = setting_default(
        "sync.av.min_event_duration_frames", min_event_duration_frames
    )
    min_paired_ipis = setting_default("sync.av.min_paired_ipis", min_paired_ipis)
    min_matched_fraction = setting_default("sync.av.min_matched_fraction", min_matched_fraction)
    relative_intensity_threshold = setting_default(
        "sync.av.relative_intensity_threshold", relative_intensity_threshold
    )
    counts = read_json(frame_counts)
    try:
        n_frames = int(counts["total_frame_number_least"])
    except (KeyError, TypeError, ValueError):
        raise InputError(frame_counts, "no total_frame_number_least") from None
    arduino = read_ipis(coolterm)
    tol = float(tolerance_ms)
    reasons: list[str] = []
    result: dict = {
        "session_id": session_id,
        "tolerance_ms": tol,
        "arduino": {"log": str(coolterm), "n_ipis": int(len(arduino))},
        "video": {},
        "audio": {},
        "devices": {},
        "cross_device": {},
        "nidq": None,
        "video_timing": "frame_time" if frame_times else "frame_index/esr",
    }

    # ---- video ------------------------------------------------------------------------------------
    ref = None
    for serial, path in led_px.items():
        serial = str(serial)
        if serial not in counts or not isinstance(counts[serial], list):
            raise InputError(frame_counts, f"no [frames, rate] entry for sync camera {serial}")
        fps = float(counts[serial][1])
        side = (led_sidecars or {}).get(serial)
        entry, cand, m = _video_block(serial, path, side, fps, arduino, tol, relative_intensity_threshold,
                                      min_event_duration_frames, min_matched_fraction, n_frames)  # fmt: skip
        result["video"][serial] = entry
        if "error" in entry:
            reasons.append(entry["error"])
        elif ref is None:
            ref = (serial, fps, cand, m)
    if ref is None and not reasons:
        reasons.append("no sync camera given")

    # ---- audio ------------------------------------------------------------------------------------
    aud: dict[str, tuple[AudioIPIs, Match]] = {}
    for dev, wav in audio.items():
        a = audio_ipis(wav)
        entry = {"wav": str(wav), "sample_rate": a.sample_rate, "n_samples": a.n_samples, "n_ipis": int(len(a.start_samples)),
                 "ipi_ms": a.ipi_ms, "ipi_start_samples": a.start_samples}  # fmt: skip
        if len(a.start_samples) == 0:
            entry["error"] = (f"device {dev}: no LED pulses in the LSB of {Path(wav).name} "
                              "(is sync.av.sync_ch_receiving_input the channel that receives the Arduino?)")  # fmt: skip
        else:
            m = match_to_arduino(a.ipi_ms, arduino, tol, min_matched_fraction)
            entry["arduino_match"] = m.summary()
            if m.accepted:
                aud[dev] = (a, m)
            else:
                entry["error"] = f"audio IPIs of device {dev}: {m.reason}"
        if "error" in entry:
            reasons.append(entry["error"])
        result["audio"][dev] = entry

    # ---- pairs, discrepancies, verdicts ----------------------------------------------------------
    if ref is not None:
        serial, fps, cand, vm = ref
        ft = (frame_times or {}).get(serial)
        v_event = _video_event_s(cand.start_frames, fps, ft)
        for dev, (a, am) in aud.items():
            ia, iv, k = _pairs(am, vm)
            dev_reasons = []
            disc = (a.start_samples[ia] / a.sample_rate - v_event[iv]) * 1000.0
            a_diff = a.ipi_ms[ia] - arduino[k]
            v_diff = cand.ipi_ms[iv] - arduino[k]
            entry = {
                "camera": serial,
                "arduino_index": k,
                "ipi_discrepancy_ms": disc,
                "video_ipi_start_frames": cand.start_frames[iv],
                "audio_ipi_start_samples": a.start_samples[ia],
                "arduino_ipi_ms": arduino[k],
                "audio_minus_arduino_ms": a_diff,
                "video_minus_arduino_ms": v_diff,
            }
            if frames_in_audio and dev in frames_in_audio:
                onsets = _read_onsets(frames_in_audio[dev])
                fa = np.searchsorted(onsets, a.start_samples[ia], side="left") - 1
                entry["frame_discrepancy"] = fa - (cand.start_frames[iv] - 1)
            entry["stats"] = discrepancy_stats(disc, cand.start_frames[iv], fps)
            if len(k) == 0:
                dev_reasons.append(f"device {dev}: no IPI common to the audio and camera {serial}")
            bad_a = np.abs(a_diff) > tol
            bad_v = np.abs(v_diff) > tol
            if bad_a.any():
                dev_reasons.append(
                    f"device {dev}: {int(bad_a.sum())} audio IPI(s) differ from the Arduino log by more than {tol:g} ms "
                    f"(largest {a_diff[np.argmax(np.abs(a_diff))]:+.1f} ms at Arduino IPI {int(k[np.argmax(np.abs(a_diff))])})"
                )
            if bad_v.any():
                dev_reasons.append(
                    f"camera {serial}: {int(bad_v.sum())} video IPI(s) differ from the Arduino log by more than {tol:g} ms"
                )
            if len(disc) and np.abs(disc).max() > tol:
                st = entry["stats"]
                j = int(np.argmax(np.abs(disc)))
                msg = (f"device {dev}: |A/V discrepancy| up to {np.abs(disc).max():.1f} ms (> {tol:g} ms) at video frame "
                       f"{int(cand.start_frames[iv][j])}")  # fmt: skip
                if "largest_step_ms" in st and abs(st["largest_step_ms"]) > tol / 2:
                    s = st["largest_step_after_ipi"]
                    msg += (f"; the discrepancy jumps by {st['largest_step_ms']:+.1f} ms between frames "
                            f"{int(cand.start_frames[iv][s])} and {int(cand.start_frames[iv][s + 1])}")  # fmt: skip
                dev_reasons.append(msg)
            entry["passed"] = not dev_reasons
            entry["reasons"] = dev_reasons
            reasons += dev_reasons
            result["devices"][dev] = entry

        # cross-device: the same LED edge in every device's audio (ms)
        devs = list(aud)
        for i in range(len(devs)):
            for j in range(i + 1, len(devs)):
                (a1, m1), (a2, m2) = aud[devs[i]], aud[devs[j]]
                i1, i2, _ = _pairs(m1, m2)
                d = (
                    a1.start_samples[i1] / a1.sample_rate - a2.start_samples[i2] / a2.sample_rate
                ) * 1000.0
                st = {"n": int(len(d))}
                if len(d):
                    st.update(min_ms=float(d.min()), max_ms=float(d.max()), mean_ms=float(d.mean()),
                              max_abs_ms=float(np.abs(d).max()))  # fmt: skip
                    if st["max_abs_ms"] > tol:
                        reasons.append(
                            f"devices {devs[i]} and {devs[j]} disagree by up to {st['max_abs_ms']:.1f} ms on the same LED edges"
                        )
                result["cross_device"][f"{devs[i]}-{devs[j]}"] = st

        # ---- NIDQ ---------------------------------------------------------------------------------
        if nidq is not None:
            ms = np.asarray(nidq["ipi_ms"], dtype=np.float64)
            nm = match_to_arduino(ms, arduino, tol, min_matched_fraction)
            entry = {"n_ipis": int(len(ms)), "sample_rate": float(nidq["sample_rate"]), "arduino_match": nm.summary(),
                     "ipi_ms": ms, "ipi_start_samples": np.asarray(nidq["start_samples"])}  # fmt: skip
            if nm.accepted:
                inn, iv, k = _pairs(nm, vm)
                d = (
                    np.asarray(nidq["start_samples"])[inn] / float(nidq["sample_rate"])
                    - v_event[iv]
                ) * 1000.0
                entry.update(ipi_discrepancy_ms=d, video_ipi_start_frames=cand.start_frames[iv], arduino_index=k,
                             stats=discrepancy_stats(d, cand.start_frames[iv], fps))  # fmt: skip
                if len(d) and np.abs(d).max() > tol:
                    reasons.append(
                        f"NIDQ: |NIDQ/video discrepancy| up to {np.abs(d).max():.1f} ms (> {tol:g} ms)"
                    )
            else:
                reasons.append(f"NIDQ IPIs: {nm.reason}")
            entry["passed"] = nm.accepted and not any(r.startswith("NIDQ") for r in reasons)
            result["nidq"] = entry

    for dev in audio:
        if dev not in result["devices"]:
            result["devices"][dev] = {
                "passed": False,
                "reasons": [r for r in reasons if dev in r] or list(reasons),
            }
    thin = []
    # a recording too short to hold min_paired_ipis LED pulses cannot fail on missing or unmatched
    # pulses either (only a measured disagreement is evidence against it)
    period_s = float(np.median(arduino)) / 1000.0 if len(arduino) else float("nan")
    fps0 = (
        float(ref[1])
        if ref is not None
        else next(
            (float(counts[str(s)][1]) for s in led_px if isinstance(counts.get(str(s)), list)),
            float("nan"),
        )
    )
    expected = n_frames / fps0 / period_s if period_s > 0 and fps0 > 0 else float("nan")
    result["expected_ipis"] = None if not np.isfinite(expected) else round(expected, 1)
    disagreements = [r for r in reasons if any(w in r for w in _DISAGREEMENT)]
    if reasons and not disagreements and np.isfinite(expected) and expected < min_paired_ipis:
        thin = [
            f"the recording ({n_frames / fps0:.1f} s) holds about {expected:.0f} LED IPI(s); a verdict "
            f"needs >= {min_paired_ipis} (sync.av.min_paired_ipis): record longer"
        ] + reasons
        for e in result["devices"].values():
            e["passed"] = False
        reasons = []
    if not reasons and not thin:
        for dev, e in result["devices"].items():
            n = int(e.get("stats", {}).get("n", 0))
            if n < min_paired_ipis:
                e["passed"] = False
                e["reasons"] = [
                    f"device {dev}: only {n} IPI(s) paired with the Arduino log and the video; a verdict "
                    f"needs >= {min_paired_ipis} (sync.av.min_paired_ipis): record longer"
                ]
                thin += e["reasons"]
    result["passed"] = not reasons and not thin
    result["verdict"] = "fail" if reasons else ("insufficient" if thin else "pass")
    result["reasons"] = reasons or thin
    result["min_paired_ipis"] = int(min_paired_ipis)
    return _plain(result)


def _plain(obj):
    """numpy arrays and scalars -> lists and Python numbers (JSON-able, as written)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_plain(v) for v in obj.tolist()]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _read_onsets(path) -> np.ndarray:
    from usvflow.audio.crop import read_frame_onsets

    return read_frame_onsets(path)


def write_nidq_ipi_data(path: str | os.PathLike, nidq: Mapping) -> None:
    """``sync/nidq_ipi_data.npy``: float64 ``(2, n_ipi)``, row 0 durations (ms), row 1 start samples
    relative to the video start (the original's layout); written atomically."""
    from usvflow.io.atomic import atomic_path

    arr = np.vstack(
        [np.asarray(nidq["ipi_ms"], np.float64), np.asarray(nidq["start_samples"], np.float64)]
    )
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, arr)


def read_nidq_ipi_data(path: str | os.PathLike, sample_rate: float) -> dict:
    """Read ``sync/nidq_ipi_data.npy`` back into the form :func:`av_sync_check` takes."""
    try:
        arr = np.load(path)
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    if arr.ndim != 2 or arr.shape[0] != 2:
        raise InputError(path, f"expected a (2, n) array, got {arr.shape}")
    return {
        "ipi_ms": arr[0],
        "start_samples": arr[1].astype(np.int64),
        "sample_rate": float(sample_rate),
    }


def write_result(path: str | os.PathLike, result: dict) -> None:
    """Write the check's result as standard JSON (NaN -> null), atomically."""
    write_json(path, _plain(result))


def run_session(
    layout, products: str | os.PathLike, av: Mapping, devices, force_leds: bool = False
) -> dict:
    """The whole A/V step of one session outside Snakemake (``usvflow av-sync``).

    ``layout``: :func:`usvflow.io.session.discover` result; ``products``: the session's product folder
    (holding ``video/`` and ``audio/cropped_to_video/`` from the video and audio stages); ``av``: the
    ``sync.av`` config section. Writes ``sync/sync_px_*`` (unless present), ``sync/nidq_ipi_data.npy``
    (NIDQ enabled and present), ``sync/<session>_av_sync.json`` and ``sync/<session>_summary.svg``.
    """
    from usvflow.io.config import with_schema_defaults
    from usvflow.io.loopbio import read_store

    from .ipi import nidq_ipis
    from .leds import extract_led_pixels, led_table, sync_px_name
    from .plot import plot_summary

    av = with_schema_defaults("sync.av", av)
    products = Path(products)
    sid, dj = layout.session_id, layout.date_joint
    if not layout.cameras or dj is None:
        raise InputError(layout.folder, "no camera recordings")
    if not layout.coolterm:
        raise InputError(Path(layout.folder) / "sync", "no CoolTerm capture (Arduino log)")
    serials = [s for s in av["sync_camera_serials"] if s in layout.cameras]
    if not serials:
        raise InputError(
            layout.folder, f"none of the sync cameras {list(av['sync_camera_serials'])} recorded"
        )
    counts_path = products / "video" / f"{dj}_camera_frame_count_dict.json"
    counts = read_json(counts_path)
    n = int(counts["total_frame_number_least"])
    sync = products / "sync"
    px, side = {}, {}
    for s in serials:
        px[s] = sync / sync_px_name(s, dj)
        side[s] = sync / (sync_px_name(s, dj) + ".json")
        if force_leds or not px[s].is_file():
            extract_led_pixels(products / "video" / dj / s / f"{s}-{dj}.mp4",
                               led_table(av["led_pixels"], av["led_px_version"], s), n, px[s],
                               fps=float(counts[s][1]), dev=int(av["led_px_dev"]),
                               search_s=float(av["led_search_s"]), sidecar=side[s])  # fmt: skip
    ch = f"{int(av['sync_ch_receiving_input']):02d}"
    audio = {d: products / "audio" / "cropped_to_video" / f"{d}_{layout.audio_stamp}_ch{ch}_cropped_to_video.wav"
             for d in devices}  # fmt: skip
    nidq = None
    if av["nidq"]["enabled"] and layout.nidq:
        nc = av["nidq"]
        nidq = nidq_ipis(Path(layout.folder) / layout.nidq, n, sample_rate=float(nc["sample_rate"]),
                         n_channels=int(nc["num_channels"]), triggerbox_bit=int(nc["triggerbox_bit"]),
                         sync_bit=int(nc["sync_bit"]))  # fmt: skip
        write_nidq_ipi_data(sync / "nidq_ipi_data.npy", nidq)
    frame_times = None
    if av["extract_exact_video_frame_times"]:
        frame_times = {
            s: read_store(Path(layout.folder) / "video" / layout.cameras[s].folder).frame_time
            for s in serials
        }
    res = av_sync_check(
        session_id=sid, frame_counts=counts_path, led_px=px, led_sidecars=side, audio=audio,
        coolterm=Path(layout.folder) / layout.coolterm,
        frames_in_audio={d: sync / f"{d}_video_frames_in_audio_samples.txt" for d in devices
                         if (sync / f"{d}_video_frames_in_audio_samples.txt").is_file()},
        nidq=nidq, frame_times=frame_times, tolerance_ms=float(av["millisecond_divergence_tolerance"]),
        relative_intensity_threshold=float(av["relative_intensity_threshold"]),
        min_event_duration_frames=int(av["min_event_duration_frames"]),
        min_matched_fraction=float(av["min_matched_fraction"]),
        min_paired_ipis=int(av["min_paired_ipis"]),
    )  # fmt: skip
    write_result(sync / f"{sid}_av_sync.json", res)
    plot_summary(res, sync / f"{sid}_summary.svg")
    return res
