"""The clocks of a simulated session.

Everything in a simulated session is placed on one *true* time axis (seconds). The Loopbio triggerbox
(and so the cameras) defines it. Every recording device has its own sample clock: it starts at a
true time ``start_s`` and advances ``nominal_rate * (1 + ppm * 1e-6)`` samples per true second while
its files claim ``nominal_rate``. Sample ``k`` of a device was taken at true time
``start_s + k / rate``.

A pulse that is high during the true interval ``[t_on, t_off)`` is high in exactly the samples
``first_sample_at_or_after(t_on) <= k < first_sample_at_or_after(t_off)``. That makes the ground truth
of every edge exact to the sample.

The :class:`Timeline` holds:
* the triggerbox pulse train: a short pre-roll, the ~2.3 s break that marks the Loopbio recording
  start, one pulse per recorded frame and a post-roll (the triggerbox keeps pulsing after the cameras
  stop, so that the pulse *after* the last common frame exists);
* the frames each camera recorded (cameras may record one or two frames more than the least);
* the Arduino LED train: ``led_on_s[i]`` to ``led_on_s[i] + 0.25`` is ON, then OFF for
  ``ipi_ms[i]`` ms (random integer 250–1500 ms, as ``random(250, 1500)`` on the Arduino);
* the sample clocks of the audio devices ``m`` and ``s`` and of the Neuropixels probe.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass(frozen=True)
class SampleClock:
    """A device's sample clock on the true time axis."""

    start_s: float
    nominal_rate: float
    ppm: float = 0.0

    @property
    def rate(self) -> float:
        """True samples per true second."""
        return self.nominal_rate * (1.0 + self.ppm * 1e-6)

    def time_of(self, k):
        """True time (s) of sample(s) ``k``."""
        return self.start_s + np.asarray(k, dtype=np.float64) / self.rate

    def first_sample_at_or_after(self, t):
        """Index of the first sample taken at or after true time(s) ``t`` (may be negative)."""
        x = (np.asarray(t, dtype=np.float64) - self.start_s) * self.rate
        return np.ceil(x - 1e-9).astype(np.int64)

    def pulse_mask(self, n_samples: int, t_on, t_off, offset: int = 0) -> np.ndarray:
        """Boolean array of samples ``offset .. offset + n_samples - 1``: high inside any ``[t_on, t_off)``."""
        d = np.zeros(n_samples + 1, dtype=np.int32)
        a = np.clip(self.first_sample_at_or_after(t_on) - offset, 0, n_samples)
        b = np.clip(self.first_sample_at_or_after(t_off) - offset, 0, n_samples)
        np.add.at(d, a, 1)
        np.add.at(d, b, -1)
        return np.cumsum(d[:-1]) > 0


@dataclass(frozen=True)
class JumpingClock(SampleClock):
    """A sample clock that loses ``jump_s`` seconds of signal at true time ``at_s`` (a clock jump).

    Samples taken before ``at_s`` are as :class:`SampleClock`; from the first sample at or after
    ``at_s`` on, every sample is taken ``jump_s`` later (what a device that drops a buffer of samples
    records): whatever happened during ``[at_s, at_s + jump_s)`` is missing from the recording.
    """

    at_s: float = 0.0
    jump_s: float = 0.0

    def _k_jump(self):
        return SampleClock.first_sample_at_or_after(self, self.at_s)

    def time_of(self, k):
        k = np.asarray(k, dtype=np.float64)
        return SampleClock.time_of(self, k) + np.where(k >= self._k_jump(), self.jump_s, 0.0)

    def first_sample_at_or_after(self, t):
        t = np.asarray(t, dtype=np.float64)
        kj = self._k_jump()
        k1 = SampleClock.first_sample_at_or_after(self, t)
        k2 = np.maximum(SampleClock.first_sample_at_or_after(self, t - self.jump_s), kj)
        return np.where(k1 < kj, k1, k2).astype(np.int64)


@dataclass
class Timeline:
    """True-time layout of one simulated session (see the module docstring)."""

    fps: float
    pulse_high_s: float
    triggerbox_on_s: np.ndarray  # rising edges of every triggerbox pulse
    first_frame_pulse: int  # index into triggerbox_on_s of recorded frame 0
    camera_frames: dict[str, int]  # serial -> frames that camera recorded
    led_on_s: np.ndarray  # Arduino LED ON times (each ON lasts led_high_s)
    ipi_ms: np.ndarray  # OFF duration that follows each ON (int ms)
    led_high_s: float
    audio: dict[str, SampleClock]  # device ('m', 's') -> clock
    audio_duration_s: dict[str, float]  # device -> recording length (true s)
    ephys: SampleClock | None
    ephys_duration_s: float
    extra: dict = field(default_factory=dict)
    led_audio_delay_s: float = 0.0  # the audio LSB sees the LED train this much later (A/V offset)

    @property
    def n_frames_least(self) -> int:
        return min(self.camera_frames.values())

    @property
    def frame_times_s(self) -> np.ndarray:
        """True time of every frame recorded by the camera that recorded most."""
        n = max(self.camera_frames.values())
        return self.triggerbox_on_s[self.first_frame_pulse : self.first_frame_pulse + n]

    @property
    def led_off_s(self) -> np.ndarray:
        return self.led_on_s + self.led_high_s

    def led_is_on(self, t) -> np.ndarray:
        """Whether the LED is on at true time(s) ``t``."""
        t = np.asarray(t, dtype=np.float64)
        i = np.searchsorted(self.led_on_s, t, side="right") - 1
        ok = i >= 0
        on = np.zeros(t.shape, dtype=bool)
        on[ok] = t[ok] < self.led_on_s[i[ok]] + self.led_high_s
        return on

    def crop_truth(self, device: str) -> dict:
        """Crop indices of ``device`` as the workflow must find them (documented keys).

        ``start_first_recorded_frame``: first high sample of the frame-0 pulse;
        ``end_last_recorded_frame``: first high sample of the pulse after the last common frame
        (the window spans exactly ``n_frames_least`` frame periods, plus that one sample).
        """
        clk = self.audio[device]
        on = self.triggerbox_on_s
        k = clk.first_sample_at_or_after(on)
        gaps = np.diff(k)
        start = int(k[self.first_frame_pulse])
        end = int(k[self.first_frame_pulse + self.n_frames_least])
        return {
            "start_first_recorded_frame": start,
            "end_last_recorded_frame": end,
            "largest_break_duration": int(gaps.max()),
            "duration_samples": end - start + 1,
            "frame_onsets": (
                k[self.first_frame_pulse : self.first_frame_pulse + self.n_frames_least] - start
            ),
        }

    def to_json(self) -> dict:
        """A JSON-able summary (arrays as lists) for ``ground_truth.json``."""
        return {
            "fps": self.fps,
            "pulse_high_s": self.pulse_high_s,
            "first_frame_pulse": self.first_frame_pulse,
            "first_frame_s": float(self.triggerbox_on_s[self.first_frame_pulse]),
            "n_triggerbox_pulses": int(len(self.triggerbox_on_s)),
            "camera_frames": dict(self.camera_frames),
            "n_frames_least": self.n_frames_least,
            "led_high_s": self.led_high_s,
            "ipi_ms": [int(v) for v in self.ipi_ms],
            "led_audio_delay_s": self.led_audio_delay_s,
            "led_on_s": [float(v) for v in self.led_on_s],
            "audio": {
                d: asdict(c) | {"duration_s": self.audio_duration_s[d]}
                for d, c in self.audio.items()
            },
            "ephys": None
            if self.ephys is None
            else asdict(self.ephys) | {"duration_s": self.ephys_duration_s},
            **self.extra,
        }


def make_timeline(
    rng: np.random.Generator,
    seconds: float,
    camera_serials: list[str],
    fps: float = 150.057,
    audio_rate: float = 250_000.0,
    s_ppm: float | None = None,
    s_delay_s: float | None = None,
    ephys_rate: float | None = 30000.261002785515,
    preroll_s: float = 0.5,
    break_s: float | None = None,
    postroll_frames: int = 30,
    tail_s: float = 0.4,
    pulse_high_s: float = 0.002,
    led_high_s: float = 0.25,
    led_audio_delay_s: float = 0.0,
    audio_jump_after_s: float | None = None,
    audio_jump_s: float = 0.03,
) -> Timeline:
    """Draw a realistic session timeline of ``seconds`` of recorded video.

    Device ``m`` starts at true time 0 with an exact clock; device ``s`` starts ``s_delay_s`` later
    (default 50–300 ms) with a clock off by ``s_ppm`` (default ±20–60 ppm). The probe starts 1 s before
    the audio. The triggerbox pre-roll starts 0.4 s after ``m``; the break before the first recorded
    frame is 2.30–2.33 s (rising edge to rising edge).

    A/V sync faults (defaults: none): ``led_audio_delay_s`` delays the LED train in the audio LSB
    (a constant audio/video offset); ``audio_jump_after_s`` makes both audio clocks jump by
    ``audio_jump_s`` that many seconds after the first recorded frame (:class:`JumpingClock`).
    """
    n_least = int(round(seconds * fps))
    if n_least < 2:
        raise ValueError(f"seconds={seconds} gives fewer than 2 frames at {fps} fps")
    extra = rng.permutation([0, 1, 2, 1, 0, 2, 1, 0][: len(camera_serials)])
    camera_frames = {s: n_least + int(e) for s, e in zip(camera_serials, extra)}
    if min(camera_frames.values()) != n_least:
        camera_frames[camera_serials[0]] = n_least
    period = 1.0 / fps
    t0 = 0.4
    n_pre = max(2, int(round(preroll_s * fps)))
    pre = t0 + np.arange(n_pre) * period
    if break_s is None:
        break_s = 2.30 + 0.03 * rng.random()
    first = pre[-1] + break_s
    n_rec = max(camera_frames.values()) + postroll_frames
    rec = first + np.arange(n_rec) * period
    on = np.concatenate([pre, rec])
    end_s = rec[-1] + tail_s

    if s_ppm is None:
        s_ppm = float(rng.choice([-1, 1]) * rng.uniform(20, 60))
    if s_delay_s is None:
        s_delay_s = float(rng.uniform(0.05, 0.3))
    audio = {
        "m": SampleClock(0.0, audio_rate, 0.0),
        "s": SampleClock(s_delay_s, audio_rate, s_ppm),
    }
    audio_duration = {"m": end_s, "s": end_s + 0.1 - s_delay_s}
    if audio_jump_after_s is not None:
        if not audio_jump_s > 0:
            raise ValueError(f"audio_jump_s must be positive, got {audio_jump_s}")
        at = float(first + audio_jump_after_s)
        audio = {
            d: JumpingClock(c.start_s, c.nominal_rate, c.ppm, at, float(audio_jump_s))
            for d, c in audio.items()
        }

    # Arduino LED train: begins well before the audio, ends after it.
    led_on, ipis = [], []
    t = -float(rng.uniform(3.0, 6.0))
    while t < end_s + 2.0:
        ipi = int(rng.integers(250, 1500))
        led_on.append(t)
        ipis.append(ipi)
        t += led_high_s + ipi / 1000.0
    ephys = (
        None if ephys_rate is None else SampleClock(-1.0, 30000.0, (ephys_rate / 30000.0 - 1) * 1e6)
    )
    return Timeline(
        fps=fps,
        pulse_high_s=pulse_high_s,
        triggerbox_on_s=on,
        first_frame_pulse=n_pre,
        camera_frames=camera_frames,
        led_on_s=np.array(led_on),
        ipi_ms=np.array(ipis, dtype=np.int64),
        led_high_s=led_high_s,
        audio=audio,
        audio_duration_s=audio_duration,
        ephys=ephys,
        ephys_duration_s=end_s + 2.0,
        led_audio_delay_s=float(led_audio_delay_s),
    )
