"""Simulated Avisoft UltraSoundGate recordings (two 12-channel devices, int16, 250 kHz).

:func:`write_avisoft` writes ``<session>/audio/original_mc/{m,s}_<YYMMDDHHMMSS>.wav`` as the
recording software does: each device's recording is cut into consecutive files of
``file_seconds`` (the last one shorter), each named after the wall-clock time its first sample was
taken, and creates the empty ``audio/original/`` folder the first processing step expects.

Every sample ``k`` of device ``d`` is taken at true time ``timeline.audio[d].time_of(k)``; all
sound is evaluated at exactly these times, so device ``s`` (late start, ppm drift) records the
same acoustic scene as ``m`` on its own clock. Content of each file:

* the sample LSB of channel 4 (index 3) is the Loopbio triggerbox pulse train and the LSB of
  channel 2 (index 1) the Arduino LED train, both exact to the sample
  (:meth:`SampleClock.pulse_mask`); every other LSB is effectively random (rounded noise);
* microphone noise per channel: white + low-frequency rumble (two one-pole low-passed noises),
  a small DC offset, and on a few channels a weak stationary tone;
* occasional broadband clicks (0.1–1 ms): acoustic ones reach every microphone with propagation
  delays, electrical ones hit a single channel;
* USVs (:mod:`usvflow.simulate.calls`), emitted from an animal's nose, reaching microphone ``j``
  after ``|nose - mic_j| / c`` with amplitude ``~ 1/distance`` times a mild directivity
  (emitter heading and microphone axis); calls never overlap (>= ``min_gap_s`` apart).

Generation streams in blocks of ``block_seconds``: memory does not grow with the session length.
"""

from __future__ import annotations

import datetime as _dt
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import lfilter

from usvflow.io.progress import progress as progress_bar

from ..io.atomic import atomic_path
from .calls import draw_call, waveform
from .geometry import (
    ARENA_SIDE_M,
    MICS_PER_DEVICE,
    AnimalTracks,
    microphone_axes,
    microphone_positions,
    simulate_animals,
)
from .timeline import SampleClock, Timeline

N_CHANNELS = 12
LED_CHANNEL = 2  # 1-based: Arduino sync pulses in the LSB
TRIGGERBOX_CHANNEL = 4  # 1-based: Loopbio triggerbox frame pulses in the LSB
DEVICES = ("m", "s")
STAMP_FORMAT = "%y%m%d%H%M%S"
AVISOFT_FILE_SECONDS = 305.4  # ~5.09 min per file in real recordings


@dataclass
class _Source:
    """A sound event as the 24 microphones receive it."""

    onset_s: float  # emission true time
    duration_s: float
    gains: np.ndarray  # (24,) peak amplitude (LSB) at each microphone
    delays_s: np.ndarray  # (24,) propagation delay to each microphone
    fn: Callable[[np.ndarray], np.ndarray]  # emitted waveform at times since onset


def _device_span(clk: SampleClock, n: int) -> tuple[float, float]:
    return clk.start_s, clk.start_s + n / clk.rate


def _directivity(
    src: np.ndarray, heading: float | None, mics: np.ndarray, axes: np.ndarray
) -> np.ndarray:
    """Mild combined emitter/microphone directivity factor per microphone (0.4–1)."""
    v = mics - src
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    mic_f = 0.75 + 0.25 * np.clip(np.sum(-v * axes, axis=1), 0.0, 1.0)
    if heading is None:
        return mic_f
    u = np.array([math.cos(heading), math.sin(heading), 0.0])
    em_f = 0.55 + 0.45 * 0.5 * (1.0 + v @ u)
    return mic_f * em_f


def _click_fn(rng: np.random.Generator, duration_s: float) -> Callable[[np.ndarray], np.ndarray]:
    """A broadband click: Gaussian-windowed sum of random sinusoids (1–110 kHz), peak ~1."""
    nk = 40
    f = rng.uniform(1e3, 110e3, nk)
    ph = rng.uniform(0, 2 * np.pi, nk)
    a = rng.uniform(0.5, 1.0, nk)
    mid, sig = duration_s / 2, duration_s / 6

    def raw(t):
        t = np.asarray(t, dtype=np.float64)
        inside = (t >= 0) & (t <= duration_s)
        out = np.zeros(t.shape)
        ti = t[inside]
        s = np.zeros(ti.shape)
        for fk, pk, ak in zip(f, ph, a):
            s += ak * np.sin(2 * np.pi * fk * ti + pk)
        out[inside] = s * np.exp(-0.5 * ((ti - mid) / sig) ** 2)
        return out

    norm = np.abs(raw(np.linspace(0, duration_s, 2001))).max() or 1.0
    return lambda t: raw(t) / norm


def _one_pole(fc: float, fs: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Coefficients of ``y[n] = a y[n-1] + (1-a) x[n]`` and its output std for unit white input."""
    a = math.exp(-2 * math.pi * fc / fs)
    return np.array([1 - a]), np.array([1.0, -a]), math.sqrt((1 - a) / (1 + a))


def _draw_noise(
    rng: np.random.Generator, fs: float, tone_freqs=(40e3, 31.25e3, 62.5e3, 20e3)
) -> list[dict]:
    """Noise parameters of the 12 channels of one device."""
    chans = []
    tone_ch = set(rng.choice(N_CHANNELS, size=2, replace=False).tolist())
    for c in range(N_CHANNELS):
        tones = []
        if c in tone_ch:
            tones.append({"freq_hz": float(rng.choice(tone_freqs)), "amp_lsb": float(rng.uniform(2.0, 8.0)),
                          "phase": float(rng.uniform(0, 2 * np.pi))})  # fmt: skip
        chans.append(
            {
                "white_rms_lsb": float(rng.uniform(10.0, 30.0)),
                "rumble_rms_lsb": float(rng.uniform(15.0, 45.0)),
                "rumble_fc_hz": float(rng.uniform(30.0, 120.0)),
                "mid_rms_lsb": float(rng.uniform(3.0, 10.0)),
                "mid_fc_hz": float(rng.uniform(1500.0, 4000.0)),
                "dc_lsb": float(rng.uniform(-15.0, 15.0)),
                "tones": tones,
            }
        )
    return chans


class _NoiseStream:
    """Continuous (across blocks and files) noise of one device's 12 channels."""

    def __init__(self, params: list[dict], fs: float):
        self.params, self.fs = params, fs
        self.filters = []
        for key in ("rumble", "mid"):
            coefs = [_one_pole(p[f"{key}_fc_hz"], fs) for p in params]
            scale = np.array(
                [p[f"{key}_rms_lsb"] / c[2] for p, c in zip(params, coefs)], dtype=np.float64
            )
            self.filters.append((coefs, scale, np.zeros((N_CHANNELS, 1))))
        self.white = np.array([p["white_rms_lsb"] for p in params])[:, None]
        self.dc = np.array([p["dc_lsb"] for p in params])[:, None]

    def block(self, rng: np.random.Generator, k0: int, n: int) -> np.ndarray:
        """Noise of samples ``k0 .. k0+n-1`` (12, n), continuing the filter states of the last block.

        One white Gaussian source per channel drives white + rumble + mid-band components, so the
        noise is Gaussian with PSD ``|w + g_r H_r(f) + g_m H_m(f)|^2`` (H: one-pole low-passes).
        """
        x = rng.standard_normal((N_CHANNELS, n))
        out = x * self.white + self.dc
        new_filters = []
        for coefs, scale, zi in self.filters:
            y = np.empty_like(x)
            zf = np.empty_like(zi)
            for c, (bb, aa, _) in enumerate(coefs):
                y[c], zf[c] = lfilter(bb, aa, x[c], zi=zi[c])
            out += y * scale[:, None]
            new_filters.append((coefs, scale, zf))
        self.filters = new_filters
        k = np.arange(k0, k0 + n, dtype=np.float64)
        for c, p in enumerate(self.params):
            for tone in p["tones"]:
                out[c] += tone["amp_lsb"] * np.sin(
                    2 * np.pi * tone["freq_hz"] / self.fs * k + tone["phase"]
                )
        return out


def _stamp(start: _dt.datetime, seconds: float) -> str:
    return (start + _dt.timedelta(seconds=seconds)).strftime(STAMP_FORMAT)


def write_avisoft(
    session_dir: str | Path,
    timeline: Timeline,
    rng: np.random.Generator,
    start_datetime: _dt.datetime | str,
    calls_per_minute: float = 60.0,
    file_seconds: float | None = None,
    tracks: AnimalTracks | None = None,
    mic_positions: np.ndarray | None = None,
    speed_of_sound: float = 343.0,
    amp_range_lsb: tuple[float, float] = (500.0, 8000.0),
    weak_fraction: float = 0.15,
    weak_range_lsb: tuple[float, float] = (60.0, 300.0),
    min_gap_s: float = 0.02,
    outside_rate_factor: float = 0.2,
    clicks_per_minute: float = 6.0,
    acoustic_click_fraction: float = 0.6,
    click_amp_range_lsb: tuple[float, float] = (2000.0, 20000.0),
    noise: bool = True,
    block_seconds: float = 1.0,
    progress: bool = False,
) -> dict:
    """Write the multichannel Avisoft files of both devices; return the ground truth.

    Args:
        session_dir: session root; files go to ``audio/original_mc/``, ``audio/original/`` is created.
        timeline: the session clocks (:func:`usvflow.simulate.timeline.make_timeline`).
        rng: the random generator (the output is a deterministic function of its state).
        start_datetime: wall-clock time of true time 0 (datetime or ISO string); device ``d``'s
            first file is stamped ``start_datetime + clock.start_s``.
        calls_per_minute: USV rate inside the video window (Poisson candidate onsets; a call due
            before the previous one ended plus ``min_gap_s`` waits for it, which makes bouts).
        file_seconds: length of each file (``round(file_seconds * 250000)`` samples, >= 1 s so that the
            per-second stamps are strictly increasing). None: half the shorter recording rounded up
            to whole seconds, capped at the real ~305 s, so that every device has >= 2 files.
        tracks: animal trajectories (e.g. shared with the pose simulation); None draws them with
            :func:`simulate_animals` over the recording.
        mic_positions: (24, 3) microphone positions (m); default :func:`microphone_positions`.
        speed_of_sound: m/s.
        amp_range_lsb: log-uniform range of a call's peak amplitude at its loudest microphone.
        weak_fraction, weak_range_lsb: share of weak calls (near the noise) and their range.
        min_gap_s: least silence between consecutive calls (emission times).
        outside_rate_factor: call rate outside the video window, relative to ``calls_per_minute``.
        clicks_per_minute: rate of clicks over the recording; ``acoustic_click_fraction`` of them
            reach every microphone, the others hit one channel.
        click_amp_range_lsb: uniform range of a click's peak amplitude.
        noise: False writes no microphone noise (only LSBs, USVs and clicks) — for tests.
        block_seconds: streaming block length.
        progress: a progress bar per device (stderr).

    Returns:
        JSON-able ground truth:

        * ``devices[d]``: ``files`` (names, chronological), ``n_samples``, ``samples_per_file``,
          ``start_datetime`` (ISO), ``start_s``, ``ppm``, ``rate_true_hz``, ``nominal_rate_hz``;
        * ``usvs``: one dict per call, by time: ``id``, ``type``, ``emitter`` (track name),
          ``emitter_index``, ``t_start_s``/``t_stop_s`` (true emission times), ``duration_s``,
          ``t_start_video_s``/``t_stop_video_s`` (from frame 0), ``f_min_hz``/``f_max_hz``/
          ``f_mean_hz``, ``harmonic``, ``peak_amp`` (LSB at the loudest mic), ``mic_amp`` (24),
          ``mic_delay_s`` (24), ``loudest_mic``, ``first_arrival_sample`` ({d: sample index}),
          ``source_xyz_m`` (nose at onset), ``heading_rad``, ``outside_video``, ``params``;
        * ``clicks``: ``t_s``, ``duration_s``, ``peak_amp``, ``kind`` (``acoustic`` with
          ``source_xyz_m`` | ``electrical`` with ``mic``/``device``/``channel``);
        * ``noise[d]``: per-channel noise parameters; ``mic_positions_m``; ``speed_of_sound``;
          ``video_window_s`` ([frame-0 pulse, pulse after the last common frame], true s);
          ``crop[d]``: :meth:`Timeline.crop_truth` without ``frame_onsets``; ``track_names``;
          ``lsb_channels`` (1-based LED / triggerbox channels).
    """
    session_dir = Path(session_dir)
    if isinstance(start_datetime, str):
        start_datetime = _dt.datetime.fromisoformat(start_datetime)
    mics = (
        microphone_positions()
        if mic_positions is None
        else np.asarray(mic_positions, dtype=np.float64)
    )
    if mics.shape != (2 * MICS_PER_DEVICE, 3):
        raise ValueError(f"mic_positions must be (24, 3), got {mics.shape}")
    axes = microphone_axes(mics)
    clocks = {d: timeline.audio[d] for d in DEVICES}
    n_samples = {d: int(math.floor(timeline.audio_duration_s[d] * clocks[d].rate)) for d in DEVICES}
    spans = {d: _device_span(clocks[d], n_samples[d]) for d in DEVICES}
    fs = {d: clocks[d].nominal_rate for d in DEVICES}

    if file_seconds is None:
        shortest = min(n_samples[d] / clocks[d].rate for d in DEVICES)
        file_seconds = min(AVISOFT_FILE_SECONDS, max(1.0, math.ceil(shortest / 2)))
    if file_seconds < 1.0:
        raise ValueError(f"file_seconds={file_seconds} < 1: per-second file stamps would collide")

    if tracks is None:
        t0 = min(s[0] for s in spans.values()) - 0.1
        t1 = max(s[1] for s in spans.values()) + 0.1
        tracks = simulate_animals(rng, t0, t1)

    # ---- USV schedule ---------------------------------------------------------------------
    ffp = timeline.first_frame_pulse
    win0 = float(timeline.triggerbox_on_s[ffp])
    win1 = float(timeline.triggerbox_on_s[ffp + timeline.n_frames_least])
    max_delay = float(np.linalg.norm(mics, axis=1).max() + ARENA_SIDE_M) / speed_of_sound
    e0 = max(s[0] for s in spans.values()) + 0.01
    e1 = min(s[1] for s in spans.values()) - 0.01 - max_delay
    rate = calls_per_minute / 60.0
    sources: list[_Source] = []
    usvs: list[dict] = []
    cursor, prev_stop = e0, -np.inf
    while rate > 0:
        cursor += rng.exponential(1.0 / rate)
        if cursor >= e1:
            break
        inside_cand = win0 <= cursor < win1
        if not inside_cand and rng.random() >= outside_rate_factor:
            continue
        call = draw_call(rng)
        # a call due while the previous one is still going waits for it (bouts)
        onset = max(cursor, prev_stop + min_gap_s + rng.exponential(0.01))
        stop = onset + call.duration_s
        if stop > e1:
            break
        # inside: heard at every microphone within the video window; never straddle its edges
        inside = (onset >= win0) and (stop + max_delay <= win1)
        outside = (stop + max_delay <= win0) or (onset >= win1)
        if not (inside or outside):
            continue
        prev_stop = stop
        emitter = int(rng.integers(tracks.n_animals))
        src = tracks.position_at(emitter, "Nose", onset)
        heading = float(tracks.heading_at(emitter, onset))
        dist = np.linalg.norm(mics - src, axis=1)
        directivity = _directivity(src, heading, mics, axes)
        rel = directivity / dist
        if rng.random() < weak_fraction:
            peak = math.exp(rng.uniform(*np.log(weak_range_lsb)))
        else:
            peak = math.exp(rng.uniform(*np.log(amp_range_lsb)))
        gains = peak * rel / rel.max()
        delays = dist / speed_of_sound
        sources.append(
            _Source(onset, call.duration_s, gains, delays, functools.partial(waveform, call))
        )
        first_arrival = {}
        for di, d in enumerate(DEVICES):
            sl = slice(di * MICS_PER_DEVICE, (di + 1) * MICS_PER_DEVICE)
            first_arrival[d] = int(clocks[d].first_sample_at_or_after(onset + delays[sl].min()))
        usvs.append(
            {
                "id": len(usvs),
                "type": call.call_type,
                "emitter": tracks.names[emitter],
                "emitter_index": emitter,
                "t_start_s": onset,
                "t_stop_s": stop,
                "duration_s": call.duration_s,
                "t_start_video_s": onset - win0,
                "t_stop_video_s": stop - win0,
                "f_min_hz": call.f_min_hz,
                "f_max_hz": call.f_max_hz,
                "f_mean_hz": call.f_mean_hz,
                "harmonic": call.harmonic,
                "peak_amp": float(peak),
                "mic_amp": gains.tolist(),
                "mic_delay_s": delays.tolist(),
                "loudest_mic": int(np.argmax(gains)),
                "first_arrival_sample": first_arrival,
                "source_xyz_m": src.tolist(),
                "heading_rad": heading,
                "outside_video": bool(outside),
                "params": call.summary()["params"],
            }
        )

    # ---- clicks ---------------------------------------------------------------------------
    clicks: list[dict] = []
    c0 = min(s[0] for s in spans.values())
    c1 = max(s[1] for s in spans.values())
    n_clicks = int(rng.poisson(clicks_per_minute / 60.0 * (c1 - c0)))
    for t_click in np.sort(rng.uniform(c0, c1, n_clicks)):
        dur = float(rng.uniform(1e-4, 1e-3))
        amp = float(rng.uniform(*click_amp_range_lsb))
        fn = _click_fn(rng, dur)
        if rng.random() < acoustic_click_fraction:
            h = ARENA_SIDE_M / 2
            src = np.array([rng.uniform(-h, h), rng.uniform(-h, h), rng.uniform(0.0, 0.05)])
            dist = np.linalg.norm(mics - src, axis=1)
            gains = amp * dist.min() / dist
            delays = dist / speed_of_sound
            info = {"kind": "acoustic", "source_xyz_m": src.tolist()}
        else:
            j = int(rng.integers(2 * MICS_PER_DEVICE))
            gains = np.zeros(2 * MICS_PER_DEVICE)
            gains[j] = amp
            delays = np.zeros(2 * MICS_PER_DEVICE)
            info = {"kind": "electrical", "mic": j, "device": DEVICES[j // MICS_PER_DEVICE],
                    "channel": j % MICS_PER_DEVICE + 1}  # fmt: skip
        sources.append(_Source(float(t_click), dur, gains, delays, fn))
        clicks.append({"t_s": float(t_click), "duration_s": dur, "peak_amp": amp, **info})

    # ---- write ----------------------------------------------------------------------------
    base_seed = int(rng.integers(2**62))
    noise_params = {d: _draw_noise(rng, fs[d]) for d in DEVICES}
    out_dir = session_dir / "audio" / "original_mc"
    out_dir.mkdir(parents=True, exist_ok=True)
    (session_dir / "audio" / "original").mkdir(parents=True, exist_ok=True)
    devices_truth = {}
    for di, d in enumerate(DEVICES):
        clk = clocks[d]
        sl = slice(di * MICS_PER_DEVICE, (di + 1) * MICS_PER_DEVICE)
        # sample range of each source on this device
        ranges = []
        for s in sources:
            g = s.gains[sl]
            if not np.any(g > 0):
                continue
            dl = s.delays_s[sl][g > 0]
            ka = int(clk.first_sample_at_or_after(s.onset_s + dl.min()))
            kb = int(clk.first_sample_at_or_after(s.onset_s + dl.max() + s.duration_s)) + 1
            if kb > 0 and ka < n_samples[d]:
                ranges.append((ka, kb, s))
        dev_start = start_datetime + _dt.timedelta(seconds=clk.start_s)
        stream = _NoiseStream(noise_params[d], fs[d])
        file_n = int(round(file_seconds * clk.nominal_rate))  # the device counts its own samples
        block_n = max(1, int(round(block_seconds * clk.nominal_rate)))
        names = []
        block_idx = 0
        bar = progress_bar(
            total=n_samples[d] / clk.nominal_rate,
            desc=f"audio {d}",
            unit="s",
            unit_scale=True,
            enabled=progress,
        )
        for f0 in range(0, n_samples[d], file_n):
            f1 = min(n_samples[d], f0 + file_n)
            name = f"{d}_{_stamp(dev_start, f0 / clk.rate)}.wav"
            if names and name <= names[-1]:
                raise AssertionError(f"file stamps out of order: {names[-1]} then {name}")
            names.append(name)
            with atomic_path(out_dir / name) as tmp:
                with sf.SoundFile(tmp, "w", samplerate=int(round(clk.nominal_rate)), channels=N_CHANNELS,
                                  subtype="PCM_16", format="WAV") as fh:  # fmt: skip
                    for b0 in range(f0, f1, block_n):
                        b1 = min(f1, b0 + block_n)
                        brng = np.random.default_rng([base_seed, di, block_idx])
                        block_idx += 1
                        fh.write(
                            _render_block(clk, b0, b1, ranges, sl, stream, brng, noise, timeline).T
                        )
                        bar.update((b1 - b0) / clk.nominal_rate)
        bar.close()
        devices_truth[d] = {
            "files": names,
            "n_samples": n_samples[d],
            "samples_per_file": file_n,
            "start_datetime": dev_start.isoformat(),
            "start_s": clk.start_s,
            "ppm": clk.ppm,
            "rate_true_hz": clk.rate,
            "nominal_rate_hz": clk.nominal_rate,
        }

    crop = {}
    for d in DEVICES:
        ct = timeline.crop_truth(d)
        ct.pop("frame_onsets")
        crop[d] = {k: int(v) for k, v in ct.items()}
    return {
        "devices": devices_truth,
        "usvs": usvs,
        "clicks": clicks,
        "noise": noise_params,
        "mic_positions_m": mics.tolist(),
        "speed_of_sound": float(speed_of_sound),
        "video_window_s": [win0, win1],
        "crop": crop,
        "track_names": list(tracks.names),
        "lsb_channels": {"led": LED_CHANNEL, "triggerbox": TRIGGERBOX_CHANNEL},
    }


def _render_block(
    clk: SampleClock,
    b0: int,
    b1: int,
    ranges: list,
    sl: slice,
    stream: _NoiseStream,
    rng: np.random.Generator,
    noise: bool,
    timeline: Timeline,
) -> np.ndarray:
    """Samples ``b0 .. b1-1`` of one device as int16 (12, n)."""
    n = b1 - b0
    if noise:
        x = stream.block(rng, b0, n)
    else:  # no noise, but still random LSBs
        x = rng.uniform(-1.0, 1.0, size=(N_CHANNELS, n))
    for ka, kb, s in ranges:
        if kb <= b0 or ka >= b1:
            continue
        a, b = max(ka, b0), min(kb, b1)
        g = s.gains[sl]
        ch = np.flatnonzero(g > 0)
        t = clk.time_of(np.arange(a, b))
        trel = t[None, :] - (s.onset_s + s.delays_s[sl][ch])[:, None]
        x[ch, a - b0 : b - b0] += g[ch, None] * s.fn(trel)
    y = np.clip(np.rint(x), -32768, 32767).astype(np.int16)
    tb = clk.pulse_mask(
        n, timeline.triggerbox_on_s, timeline.triggerbox_on_s + timeline.pulse_high_s, offset=b0
    )
    delay = timeline.led_audio_delay_s
    led = clk.pulse_mask(n, timeline.led_on_s + delay, timeline.led_off_s + delay, offset=b0)
    y[TRIGGERBOX_CHANNEL - 1] = (y[TRIGGERBOX_CHANNEL - 1] & ~np.int16(1)) | tb.astype(np.int16)
    y[LED_CHANNEL - 1] = (y[LED_CHANNEL - 1] & ~np.int16(1)) | led.astype(np.int16)
    return y
