"""Labelled call-type data from the simulator: synthetic clips and summaries from truth.

* :func:`simulate_labelled_spectrograms` renders calls of :mod:`usvflow.simulate.calls` at 250 kHz in
  microphone-like noise, as a detector would hand them over (onset/offset errors of a few ms, weak and
  loud calls, a stationary tone on some channels, broadband clicks, the next call of a bout following
  closely), processes them as the workflow processes a channel before the memmap (int16 LSBs, 30 kHz
  high-pass, harmonic part of HPSS with the default settings; ``processed=False`` skips this), and
  returns their spectrograms with the true type as label: the training material of the classifier.
  The class ``"none"`` (:data:`~usvflow.usv.calltypes.NO_TYPE`) is what a detector hands over when there is no call: a
  detection-long stretch of noise, often with a stationary tone or a broadband click
  (:func:`render_background`); a model trained with it can answer "none of the trained types".
* :func:`summary_from_truth` builds a session USV summary (the curated table's columns) from a
  simulated session's ground truth, with the true type in ``call_type_true``; the rule-level test and
  the demo measure the classifier of a whole session against it.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd

from usvflow.io.atomic import InputError, read_json
from usvflow.simulate.calls import CALL_TYPES, draw_call, waveform
from usvflow.usv.calltypes import NO_TYPE
from usvflow.usv.curate import FEATURE_COLUMNS, SUMMARY_COLUMNS
from usvflow.usv.spectrogram import SpecParams, call_spectrogram

# The curated summary's columns that the simulator fills (all but the noise measures).
SIM_SUMMARY_COLUMNS = [
    *SUMMARY_COLUMNS,
    *(c for c in FEATURE_COLUMNS if not c.startswith("signal_")),
]


def _add_click(rng: np.random.Generator, x: np.ndarray, k: int, sample_rate: float) -> None:
    """Add a broadband click of 0.1–1 ms (Hann-shaped noise burst, 5–50 x the noise) at sample ``k``."""
    m = min(int(rng.uniform(1e-4, 1e-3) * sample_rate), x.size - k)
    x[k : k + m] += rng.uniform(5, 50) * rng.standard_normal(m) * np.hanning(m)


def _add_tone(rng: np.random.Generator, x: np.ndarray, t: np.ndarray, f: float, amp: float) -> None:
    """Add a stationary tone of ``f`` Hz and amplitude ``amp`` at a random phase."""
    x += amp * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))


def render_clip(rng: np.random.Generator, call_type: str, sample_rate: float = 250000.0,
                params: SpecParams | None = None, amp_to_noise: tuple[float, float] = (0.5, 30.0),
                onset_sd_s: float = 0.0015, stop_sd_s: float = 0.003, p_next_call: float = 0.35,
                p_click: float = 0.15, p_tone: float = 0.2) -> tuple[np.ndarray, float, float, dict]:  # fmt: skip
    """One noisy clip holding a call of ``call_type``; returns ``(x, onset_s, stop_s, info)`` with the
    onset/stop as a detector reports them (true times plus errors).

    Noise: white, rms 1. The call's peak amplitude is log-uniform in ``amp_to_noise`` (0.5: the call
    is barely above the noise in its FFT bin; 30: a loud call).
    """
    p = params or SpecParams()
    call = draw_call(rng, call_type)
    pre = 0.02
    n = int(math.ceil((pre + p.duration_s + 0.02) * sample_rate)) + p.n_fft
    t = np.arange(n) / sample_rate
    amp = math.exp(rng.uniform(*np.log(amp_to_noise)))
    x = rng.standard_normal(n)
    x += amp * waveform(call, t - pre)
    if rng.random() < p_next_call:  # the next call of a bout, after the minimum gap
        nxt = draw_call(rng)
        t_next = pre + call.duration_s + rng.uniform(0.02, 0.06)
        x += math.exp(rng.uniform(*np.log(amp_to_noise))) * waveform(nxt, t - t_next)
    if rng.random() < p_click:
        _add_click(rng, x, int(rng.uniform(0.0, pre + p.duration_s) * sample_rate), sample_rate)
    if rng.random() < p_tone:
        f = rng.choice([20e3, 31.25e3, 40e3, 62.5e3])
        _add_tone(rng, x, t, f, rng.uniform(0.1, 0.5))
    onset = pre + float(np.clip(rng.normal(0.0, onset_sd_s), -3 * onset_sd_s, 3 * onset_sd_s))
    stop = (
        pre
        + call.duration_s
        + float(np.clip(rng.normal(0.0, stop_sd_s), -3 * stop_sd_s, 3 * stop_sd_s))
    )
    stop = max(stop, onset + 0.002)
    return x, onset, stop, {"amp_to_noise": amp, "duration_s": call.duration_s}


def render_background(rng: np.random.Generator, sample_rate: float = 250000.0,
                      params: SpecParams | None = None, p_tone: float = 0.5, p_click: float = 0.5,
                      tone_amp: tuple[float, float] = (0.3, 3.0)) -> tuple[np.ndarray, float, float]:  # fmt: skip
    """A clip of what a detector may report with no call in it: ``(x, onset_s, stop_s)``.

    White noise (rms 1); with probability ``p_tone`` a stationary tone (equipment whine: the
    simulator's 31.25/40/62.5-kHz lines or any frequency of 25–115 kHz; amplitude log-uniform in
    ``tone_amp``: 0.3 is ~9 dB over the noise in a Hann-windowed 512-sample FFT bin); with probability
    ``p_click`` a broadband click of 0.1–1 ms near the onset. The reported window is 4–40 ms long,
    as short false detections are.
    """
    p = params or SpecParams()
    pre = 0.02
    n = int(math.ceil((pre + p.duration_s + 0.02) * sample_rate)) + p.n_fft
    t = np.arange(n) / sample_rate
    x = rng.standard_normal(n)
    if rng.random() < p_tone:
        f = rng.choice([31.25e3, 40e3, 62.5e3]) if rng.random() < 0.5 else rng.uniform(25e3, 115e3)
        _add_tone(rng, x, t, f, math.exp(rng.uniform(*np.log(tone_amp))))
    if rng.random() < p_click:
        _add_click(rng, x, int(rng.uniform(pre - 0.005, pre + 0.01) * sample_rate), sample_rate)
    stop = pre + math.exp(rng.uniform(math.log(0.004), math.log(0.04)))
    return x, pre, stop


def as_processed(
    x: np.ndarray,
    rng: np.random.Generator,
    sample_rate: float = 250000.0,
    highpass_hz: float = 30000.0,
) -> np.ndarray:
    """A clip (noise rms 1) as the workflow's hpss_filtered memmap holds it: scaled to a noise of 10–30
    LSB rms, high-passed (ideal, FFT), rounded to int16, harmonic part of HPSS (default settings)."""
    from usvflow.audio.hpss import hpss_chunked

    y = x * rng.uniform(10.0, 30.0)
    spec = np.fft.rfft(y)
    spec[np.fft.rfftfreq(y.size, 1.0 / sample_rate) < highpass_hz] = 0.0
    y = np.clip(np.rint(np.fft.irfft(spec, y.size)), -32768, 32767).astype(np.int16)
    return hpss_chunked(y).astype(np.float64)


def simulate_labelled_spectrograms(n_per_class: int, classes=CALL_TYPES, seed: int = 0,
                                   params: SpecParams | None = None, sample_rate: float = 250000.0,
                                   processed: bool = True, **clip_kwargs) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """``(spectrograms (n, n_freq, n_time) float32, labels (n,) str)``, ``n_per_class`` of each class,
    deterministic in ``seed``; ``processed``: through :func:`as_processed` (as the workflow's memmap).
    ``classes`` are call types of the simulator and, optionally, ``"none"`` (windows without a call,
    :func:`render_background`)."""
    p = params or SpecParams()
    classes = list(classes)
    unknown = [c for c in classes if c not in (*CALL_TYPES, NO_TYPE)]
    if unknown:
        raise ValueError(f"unknown call type(s) {unknown}; the simulator has {list(CALL_TYPES)} "
                         f"and {NO_TYPE!r} (no call)")  # fmt: skip
    rng = np.random.default_rng(seed)
    specs = np.zeros((n_per_class * len(classes), p.n_freq, p.n_time), np.float32)
    labels = []
    i = 0
    for _ in range(n_per_class):
        for c in classes:
            if c == NO_TYPE:
                x, on, off = render_background(rng, sample_rate, p)
            else:
                x, on, off, _ = render_clip(rng, c, sample_rate, p, **clip_kwargs)
            if processed:
                x = as_processed(x, rng, sample_rate)
            specs[i] = call_spectrogram(x, sample_rate, on, off, p)
            labels.append(c)
            i += 1
    return specs, np.asarray(labels)


def summary_from_truth(truth_json: str | os.PathLike, n_channels: int = 24) -> pd.DataFrame:
    """A session USV summary built from a simulated session's ``ground_truth.json``.

    Only calls inside the video window are listed (those are in the cropped audio). ``start``/``stop``
    are the arrival times at the loudest microphone relative to the first video frame; ``mean_amp_ch``
    and ``peak_amp_ch`` that microphone's memmap column (m ch01..ch12, s ch01..ch12);
    ``call_type_true`` the simulated type.
    """
    truth = read_json(truth_json)
    try:
        usvs = truth["audio"]["usvs"]
    except (KeyError, TypeError):
        raise InputError(truth_json, "no audio.usvs in the ground truth") from None
    rows = []
    for u in usvs:
        if u["outside_video"]:
            continue
        ch = int(u["loudest_mic"])
        if not 0 <= ch < n_channels:
            raise InputError(
                truth_json, f"call {u['id']}: loudest_mic {ch} outside {n_channels} channels"
            )
        delay = float(u["mic_delay_s"][ch])
        start = float(u["t_start_video_s"]) + delay
        amps = np.asarray(u["mic_amp"], float)
        det = np.flatnonzero(amps >= 0.3 * amps.max()).tolist()
        rows.append({
            "usv_id": f"{len(rows):04d}", "start": start, "stop": start + float(u["duration_s"]),
            "duration": float(u["duration_s"]), "peak_amp_ch": ch, "mean_amp_ch": ch, "chs_count": len(det),
            "chs_detected": str(det), "emitter": "", "peak_freq_hz": float(u["f_mean_hz"]),
            "mean_freq_hz": float(u["f_mean_hz"]), "min_freq_hz": float(u["f_min_hz"]),
            "max_freq_hz": float(u["f_max_hz"]), "max_amplitude": float(u["peak_amp"]), "snr_db": np.nan,
            "call_type_true": u["type"],
        })  # fmt: skip
    return pd.DataFrame(rows, columns=[*SIM_SUMMARY_COLUMNS, "call_type_true"])
