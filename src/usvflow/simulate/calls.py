"""Synthetic mouse ultrasonic vocalisations (USVs).

A :class:`Call` is a frequency contour ``f(t)`` (Hz, piecewise linear between knots every 0.1 ms,
30–110 kHz), an amplitude envelope (raised-cosine onset/offset ramps of 1–3 ms times a slow
amplitude modulation, peak 1) and an optional weak second harmonic. :func:`waveform` evaluates the
emitted pressure at arbitrary float64 times relative to the call onset; the phase is the exact
integral ``2*pi * integral(f)`` of the piecewise-linear contour (piecewise quadratic), so the signal
is the same whatever the sampling and however the times are shifted (propagation delays, clock drift).

Call types (:data:`CALL_TYPES`):

* ``flat``: near-constant frequency with a slight drift (5–200 ms, median 20 ms);
* ``up_ramp`` / ``down_ramp``: monotonic sweeps of 8–25 kHz;
* ``step``: an instantaneous frequency jump of 10–30 kHz (phase stays continuous);
* ``trill``: sinusoidal FM at 50–200 Hz with 5–20 kHz peak-to-peak depth;
* ``complex``: smooth contour through 2–6 turning points (several inflections) of 6–20 kHz, nominally
  >= :data:`COMPLEX_MIN_TURN_S` apart (a short call has fewer turns): slower and less regular than a
  trill's frequency modulation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.interpolate import PchipInterpolator

CALL_TYPES = ("flat", "up_ramp", "down_ramp", "step", "trill", "complex")
CALL_TYPE_PROBS = {
    "flat": 0.25,
    "up_ramp": 0.15,
    "down_ramp": 0.15,
    "step": 0.15,
    "trill": 0.1,
    "complex": 0.2,
}

F_LO_HZ = 30e3
F_HI_HZ = 110e3
KNOT_DT_S = 1e-4
MIN_DURATION_S = 0.005
MAX_DURATION_S = 0.200
COMPLEX_MIN_TURN_S = 0.015  # nominal spacing of a complex call's turning points (s)
HARMONIC_MAX_HZ = 115e3  # a 2nd harmonic is only added when it stays below this (250 kHz sampling)

# (median s, lognormal sigma, min s) of the duration per type
_DURATION = {
    "flat": (0.020, 0.7, 0.005),
    "up_ramp": (0.025, 0.6, 0.008),
    "down_ramp": (0.025, 0.6, 0.008),
    "step": (0.050, 0.5, 0.015),
    "trill": (0.060, 0.5, 0.020),
    "complex": (0.070, 0.5, 0.025),
}


@dataclass(eq=False)
class Call:
    """One vocalisation (times in seconds relative to its onset, frequencies in Hz).

    ``knot_t`` is non-decreasing from 0 to ``duration_s``; a repeated time is an instantaneous
    frequency jump. ``harmonic`` is the relative amplitude of the 2nd harmonic (0: none).
    """

    call_type: str
    duration_s: float
    knot_t: np.ndarray
    knot_f: np.ndarray
    ramp_on_s: float
    ramp_off_s: float
    am_t: np.ndarray
    am_v: np.ndarray
    harmonic: float = 0.0
    params: dict = field(default_factory=dict)

    def __post_init__(self):
        self.knot_t = np.asarray(self.knot_t, dtype=np.float64)
        self.knot_f = np.asarray(self.knot_f, dtype=np.float64)
        if self.knot_t.shape != self.knot_f.shape or self.knot_t.size < 2:
            raise ValueError("knot_t and knot_f need the same shape, >= 2 knots")
        dt = np.diff(self.knot_t)
        if np.any(dt < 0):
            raise ValueError("knot_t must be non-decreasing")
        self._dt = dt
        self._slope = np.divide(np.diff(self.knot_f), dt, out=np.zeros_like(dt), where=dt > 0)
        # cycles accumulated at each knot (exact integral of the piecewise-linear contour)
        self._cycles = np.concatenate(
            [[0.0], np.cumsum(0.5 * (self.knot_f[:-1] + self.knot_f[1:]) * dt)]
        )

    # -- contour -----------------------------------------------------------------------------
    def _segment(self, t: np.ndarray):
        j = np.searchsorted(self.knot_t, t, side="right") - 1
        j = np.clip(j, 0, self.knot_t.size - 2)
        return j, t - self.knot_t[j]

    def frequency(self, t) -> np.ndarray:
        """Instantaneous frequency (Hz) at times ``t`` (clamped to the call)."""
        t = np.clip(np.asarray(t, dtype=np.float64), 0.0, self.duration_s)
        j, tau = self._segment(t)
        return self.knot_f[j] + self._slope[j] * tau

    def cycles(self, t) -> np.ndarray:
        """``integral_0^t f`` (cycles) at times ``t`` (clamped to the call)."""
        t = np.clip(np.asarray(t, dtype=np.float64), 0.0, self.duration_s)
        j, tau = self._segment(t)
        return self._cycles[j] + tau * (self.knot_f[j] + 0.5 * self._slope[j] * tau)

    def envelope(self, t) -> np.ndarray:
        """Amplitude envelope (0 outside ``[0, duration]``, peak ~1)."""
        t = np.asarray(t, dtype=np.float64)
        d = self.duration_s
        on = np.clip(t / self.ramp_on_s, 0.0, 1.0)
        off = np.clip((d - t) / self.ramp_off_s, 0.0, 1.0)
        ramp = (0.5 - 0.5 * np.cos(np.pi * on)) * (0.5 - 0.5 * np.cos(np.pi * off))
        env = ramp * np.interp(t, self.am_t, self.am_v)
        return np.where((t >= 0.0) & (t <= d), env, 0.0)

    # -- summaries ---------------------------------------------------------------------------
    @property
    def f_min_hz(self) -> float:
        return float(self.knot_f.min())

    @property
    def f_max_hz(self) -> float:
        return float(self.knot_f.max())

    @property
    def f_mean_hz(self) -> float:
        """Time-averaged frequency of the contour."""
        return float(self._cycles[-1] / self.duration_s)

    def summary(self) -> dict:
        """JSON-able description (type, duration, frequency range, harmonic, type parameters)."""
        return {
            "type": self.call_type,
            "duration_s": float(self.duration_s),
            "f_min_hz": self.f_min_hz,
            "f_max_hz": self.f_max_hz,
            "f_mean_hz": self.f_mean_hz,
            "harmonic": float(self.harmonic),
            "params": {k: float(v) for k, v in self.params.items()},
        }


def waveform(call: Call, t) -> np.ndarray:
    """Emitted pressure of ``call`` at times ``t`` (s after onset; any shape, float64).

    ``envelope * (sin(2 pi Phi) + harmonic * sin(4 pi Phi))`` with ``Phi = integral_0^t f``;
    exactly 0 outside ``[0, duration]``.
    """
    t = np.asarray(t, dtype=np.float64)
    inside = (t >= 0.0) & (t <= call.duration_s)
    out = np.zeros(t.shape, dtype=np.float64)
    if not inside.any():
        return out
    ti = t[inside]
    ph = 2.0 * np.pi * call.cycles(ti)
    s = np.sin(ph)
    if call.harmonic > 0:
        s += call.harmonic * np.sin(2.0 * ph)
    out[inside] = call.envelope(ti) * s
    return out


def _duration(rng: np.random.Generator, call_type: str) -> float:
    med, sig, lo = _DURATION[call_type]
    d = med * math.exp(sig * rng.standard_normal())
    return float(np.clip(d, max(lo, MIN_DURATION_S), MAX_DURATION_S))


def draw_call(rng: np.random.Generator, call_type: str | None = None) -> Call:
    """Draw a random call of ``call_type`` (random by :data:`CALL_TYPE_PROBS` if None)."""
    if call_type is None:
        call_type = str(rng.choice(list(CALL_TYPE_PROBS), p=list(CALL_TYPE_PROBS.values())))
    if call_type not in CALL_TYPES:
        raise ValueError(f"unknown call type {call_type!r}; expected one of {CALL_TYPES}")
    dur = _duration(rng, call_type)
    n = max(2, int(math.ceil(dur / KNOT_DT_S))) + 1
    t = np.linspace(0.0, dur, n)
    u = t / dur
    params: dict = {}

    if call_type == "flat":
        f0 = rng.uniform(50e3, 90e3)
        drift = rng.normal(0.0, 1.5e3)
        bow = rng.normal(0.0, 0.7e3)
        f = f0 + drift * (u - 0.5) + bow * (4 * u * (1 - u) - 2 / 3)
        params = {"f0_hz": f0, "drift_hz": drift}
    elif call_type in ("up_ramp", "down_ramp"):
        span = rng.uniform(8e3, 25e3)
        lo = rng.uniform(42e3, 105e3 - span)
        p = rng.uniform(0.6, 1.6)
        shape = u**p
        f = lo + span * (shape if call_type == "up_ramp" else 1 - shape)
        params = {"f_low_hz": lo, "span_hz": span, "curvature": p}
    elif call_type == "step":
        jump = rng.uniform(10e3, 30e3) * rng.choice([-1.0, 1.0])
        f1 = rng.uniform(45e3, 95e3)
        if not (35e3 <= f1 + jump <= 105e3):
            jump = -jump
        if not (35e3 <= f1 + jump <= 105e3):
            f1 = float(np.clip(f1, 35e3 + abs(jump), 105e3 - abs(jump)))
        ts = dur * rng.uniform(0.3, 0.7)
        d1, d2 = rng.normal(0.0, 1.5e3, size=2)
        k = int(np.searchsorted(t, ts))
        t = np.concatenate([t[:k], [ts, ts], t[k:]])
        u = t / dur
        first = np.arange(t.size) <= k
        f = np.where(first, f1 + d1 * (u - 0.5), f1 + jump + d2 * (u - 0.5))
        params = {"f1_hz": f1, "jump_hz": jump, "t_step_s": ts}
    elif call_type == "trill":
        depth = rng.uniform(5e3, 20e3)
        rate = rng.uniform(50.0, 200.0)
        fc = rng.uniform(50e3 + depth / 2, 95e3 - depth / 2)
        ph0 = rng.uniform(0, 2 * np.pi)
        drift = rng.normal(0.0, 2e3)
        f = fc + 0.5 * depth * np.sin(2 * np.pi * rate * t + ph0) + drift * (u - 0.5)
        params = {"f_center_hz": fc, "depth_hz": depth, "rate_hz": rate}
    else:  # complex
        n_turn = int(rng.integers(3, 7))
        vals = [rng.uniform(50e3, 90e3)]
        direction = rng.choice([-1.0, 1.0])
        for _ in range(n_turn + 1):
            step = rng.uniform(6e3, 20e3) * direction
            v = vals[-1] + step
            if not (42e3 <= v <= 102e3):
                v = vals[-1] - step
            vals.append(v)
            direction = -direction
        jitter = rng.uniform(-0.25, 0.25, size=len(vals) - 2)  # drawn in full: same random stream
        keep = min(len(vals), max(4, 1 + int(dur / COMPLEX_MIN_TURN_S)))
        vals = vals[:keep]
        kt = np.linspace(0.0, dur, keep)
        kt[1:-1] += jitter[: keep - 2] * (dur / (keep - 1))
        f = PchipInterpolator(kt, vals)(t)
        params = {"n_turns": keep - 2}

    f = np.clip(f, F_LO_HZ + 2e3, F_HI_HZ - 2e3)
    ramp_on = min(rng.uniform(1e-3, 3e-3), 0.3 * dur)
    ramp_off = min(rng.uniform(1e-3, 3e-3), 0.3 * dur)
    n_am = max(2, int(math.ceil(dur / 0.005)) + 1)
    am_t = np.linspace(0.0, dur, n_am)
    am_v = np.clip(1.0 + 0.2 * rng.standard_normal(n_am), 0.4, 1.4)
    am_v = am_v / am_v.max()
    harmonic = 0.0
    if 2 * f.max() < HARMONIC_MAX_HZ and rng.random() < 0.5:
        harmonic = float(rng.uniform(0.05, 0.25))
    return Call(
        call_type=call_type,
        duration_s=float(dur),
        knot_t=t,
        knot_f=f,
        ramp_on_s=float(ramp_on),
        ramp_off_s=float(ramp_off),
        am_t=am_t,
        am_v=am_v,
        harmonic=harmonic,
        params=params,
    )
