"""Arena and microphone geometry, and simulated animal movement, in the arena frame.

The arena frame is the one the original pipeline's re-coordinate step (translate/rotate/metric)
produces: metres, origin at the arena centre, floor at ``z = 0``, and after its final ``Rz(-pi/4)``
the square arena's corners lie on the diagonals, axis-aligned: ``N (-, +)``, ``W (-, -)``,
``S (+, -)``, ``E (+, +)``.

24 ultrasonic microphones hang around and above the arena, 6 per side, pointing at the arena
centre. Microphone ``j`` is channel ``j % 12 + 1`` of Avisoft device ``"m"`` (``j < 12``) or
``"s"`` (``j >= 12``), which is also the column order of the 24-channel audio memmap.

:func:`simulate_animals` draws smooth, realistic random walks of the animals' heads with a
heading angle, from which the nose (2.5 cm ahead of the head) follows. Tracks are kept per node
name so that a full 15-node skeleton can be added later from the same head position + heading.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.interpolate import CubicSpline

ARENA_SIDE_M = 0.615
"""Side of the square arena (m); the re-coordinate step scales the arena to it."""

N_MICS = 24
MIC_DEVICES = ("m", "s")
MICS_PER_DEVICE = 12

MIC_LAYOUT: tuple[tuple[str, int], ...] = tuple(
    (MIC_DEVICES[j // MICS_PER_DEVICE], j % MICS_PER_DEVICE + 1) for j in range(N_MICS)
)
"""``MIC_LAYOUT[j] = (device, channel)`` (channel 1-based) of microphone ``j``."""

MOUSE_SKELETON = (
    "Nose", "Ear_R", "Ear_L", "TTI", "TailTip", "Head", "Trunk", "Tail_0", "Tail_1", "Tail_2",
    "Shoulder_left", "Shoulder_right", "Haunch_left", "Haunch_right", "Neck",
)  # fmt: skip
"""Node order of the original's 15-node mouse skeleton (``_config/mouse_skeleton.json``)."""

NOSE_OFFSET_M = 0.025
"""Distance from head to nose along the heading (m)."""


def arena_corners(side_m: float = ARENA_SIDE_M) -> dict[str, np.ndarray]:
    """Corners ``N, W, S, E`` of the arena floor (3-vectors, metres, arena frame).

    ``N = (-s/2, +s/2, 0)``, ``W = (-s/2, -s/2, 0)``, ``S = (+s/2, -s/2, 0)``, ``E = (+s/2, +s/2, 0)``
    with ``s = side_m``.
    """
    h = side_m / 2.0
    return {
        "N": np.array([-h, h, 0.0]),
        "W": np.array([-h, -h, 0.0]),
        "S": np.array([h, -h, 0.0]),
        "E": np.array([h, h, 0.0]),
    }


def microphone_positions() -> np.ndarray:
    """Positions of the 24 microphones, shape ``(24, 3)``, metres in the arena frame.

    Six microphones per side on an irregular ring 0.33–0.36 m (horizontally) from the arena centre,
    0.30–0.40 m above the floor; mics 0–5 face the ``+y`` side, 6–11 the ``-x`` side (device ``m``),
    12–17 the ``-y`` side and 18–23 the ``+x`` side (device ``s``). The small deterministic
    irregularity breaks symmetries (useful for sound localisation). No randomness.
    """
    j = np.arange(N_MICS)
    side = j // 6
    pos_in_side = j % 6
    normal = math.pi / 2 + side * (math.pi / 2)  # +y, -x, -y, +x sides
    angle = normal + np.deg2rad(-37.5 + 15.0 * pos_in_side)
    radius = 0.33 + 0.03 * ((j * 5) % 7) / 6.0
    height = 0.30 + 0.10 * ((j * 7) % 11) / 10.0
    return np.stack([radius * np.cos(angle), radius * np.sin(angle), height], axis=1)


def microphone_axes(positions: np.ndarray | None = None) -> np.ndarray:
    """Unit vectors (24, 3) of the microphones' acoustic axes: each points at the arena floor centre."""
    p = microphone_positions() if positions is None else np.asarray(positions, dtype=np.float64)
    v = -p
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@dataclass
class AnimalTracks:
    """True 3D trajectories of the animals on a uniform time grid.

    Attributes:
        t: (n,) true times (s), uniform step ``dt``.
        names: track names, one per animal.
        nodes: node name -> (n_animals, n, 3) positions (m, arena frame). ``"Head"`` and ``"Nose"``
            are always present; further skeleton nodes may be added later.
        heading: (n_animals, n) yaw (rad, unwrapped) of the head→nose direction in the xy-plane.
    """

    t: np.ndarray
    names: list[str]
    nodes: dict[str, np.ndarray]
    heading: np.ndarray
    extra: dict = field(default_factory=dict)

    @property
    def n_animals(self) -> int:
        return len(self.names)

    @property
    def nose(self) -> np.ndarray:
        return self.nodes["Nose"]

    @property
    def head(self) -> np.ndarray:
        return self.nodes["Head"]

    def _animal_index(self, animal: int | str) -> int:
        if isinstance(animal, str):
            return self.names.index(animal)
        return int(animal)

    def _node_key(self, node: str) -> str:
        for k in self.nodes:
            if k.lower() == node.lower():
                return k
        raise KeyError(f"no node {node!r} (have {list(self.nodes)})")

    def position_at(self, animal: int | str, node: str, t) -> np.ndarray:
        """Linearly interpolated position(s) of ``node`` of ``animal`` at true time(s) ``t``.

        Returns shape ``np.shape(t) + (3,)``; times outside the grid take the edge value.
        """
        a = self._animal_index(animal)
        xyz = self.nodes[self._node_key(node)][a]
        t = np.asarray(t, dtype=np.float64)
        out = np.stack([np.interp(t, self.t, xyz[:, c]) for c in range(3)], axis=-1)
        return out

    def heading_at(self, animal: int | str, t) -> np.ndarray:
        """Interpolated yaw (rad) of ``animal`` at true time(s) ``t``."""
        a = self._animal_index(animal)
        return np.interp(np.asarray(t, dtype=np.float64), self.t, self.heading[a])


def _wrap(a):
    return (a + np.pi) % (2 * np.pi) - np.pi


def simulate_animals(
    rng: np.random.Generator,
    t_start: float,
    t_end: float,
    n_animals: int = 2,
    dt: float = 1 / 150.057,
    names: list[str] | None = None,
    margin_m: float = 0.02,
    sim_dt: float = 0.02,
    max_speed: float = 0.3,
) -> AnimalTracks:
    """Draw smooth random trajectories of ``n_animals`` animals from ``t_start`` to ``t_end``.

    The head moves with an Ornstein–Uhlenbeck velocity (time constant 0.5 s, speeds 0–``max_speed``
    m/s) switching between *explore*, *rest* and *approach* (drift toward another animal) bouts,
    so that animals are sometimes within a few cm of each other and sometimes far apart; soft walls
    keep the nose at least ``margin_m`` inside the arena. The heading turns toward the direction of
    motion (plus scanning jitter); the nose is ``NOSE_OFFSET_M`` ahead of the head, head height
    2–4 cm. Simulated at ``sim_dt`` and cubic-interpolated onto the grid ``t_start + k * dt``
    (last point ``>= t_end``).
    """
    if t_end <= t_start:
        raise ValueError(f"t_end ({t_end}) must be after t_start ({t_start})")
    if names is None:
        names = [f"animal_{i}" for i in range(n_animals)]
    if len(names) != n_animals:
        raise ValueError(f"{len(names)} names for {n_animals} animals")
    A = n_animals
    lim = ARENA_SIDE_M / 2 - margin_m - NOSE_OFFSET_M  # head coordinate limit
    soft = 0.06  # wall repulsion zone (m)

    n_sim = int(math.ceil((t_end - t_start) / sim_dt)) + 4
    ts = t_start - sim_dt + np.arange(n_sim) * sim_dt

    tau_v, sigma_v = 0.5, 0.09
    pos = rng.uniform(-lim * 0.8, lim * 0.8, size=(A, 2))
    vel = rng.normal(0, sigma_v, size=(A, 2))
    head_dir = rng.uniform(-np.pi, np.pi, size=A)
    mode = rng.integers(0, 3, size=A)  # 0 explore, 1 rest, 2 approach
    z = rng.uniform(0.025, 0.035, size=A)
    pitch = np.zeros(A)

    noise_v = rng.standard_normal((n_sim, A, 2))
    noise_h = rng.standard_normal((n_sim, A))
    noise_z = rng.standard_normal((n_sim, A, 2))
    switch = rng.random((n_sim, A))
    new_mode = rng.choice(3, size=(n_sim, A), p=[0.55, 0.2, 0.25])

    P = np.empty((n_sim, A, 2))
    H = np.empty((n_sim, A))
    Z = np.empty((n_sim, A))
    PI = np.empty((n_sim, A))
    k_v = math.sqrt(2 * sim_dt / tau_v) * sigma_v
    for i in range(n_sim):
        # bout switching (mean bout 3 s)
        sw = switch[i] < sim_dt / 3.0
        mode = np.where(sw, new_mode[i], mode)
        # OU velocity
        vel = vel - vel / tau_v * sim_dt + k_v * noise_v[i]
        vel[mode == 1] *= 1 - 4 * sim_dt  # resting: strong damping
        if A > 1:
            for a in np.flatnonzero(mode == 2):
                other = (a + 1) % A
                d = pos[other] - pos[a]
                dist = float(np.hypot(*d))
                if dist > 0.07:
                    want = 0.15 * d / dist
                    vel[a] += (want - vel[a]) * 3.0 * sim_dt
            # personal space: push apart closer than 4 cm
            for a in range(A):
                for b in range(a + 1, A):
                    d = pos[b] - pos[a]
                    dist = float(np.hypot(*d)) + 1e-9
                    if dist < 0.04:
                        push = (0.04 - dist) * 20.0 * d / dist
                        vel[a] -= push * sim_dt * 10
                        vel[b] += push * sim_dt * 10
        # soft walls
        over = np.abs(pos) - (lim - soft)
        vel -= np.where(over > 0, np.sign(pos) * over * 25.0 * sim_dt, 0.0)
        speed = np.hypot(vel[:, 0], vel[:, 1])
        too_fast = speed > max_speed
        vel[too_fast] *= (max_speed / speed[too_fast])[:, None]
        pos = pos + vel * sim_dt
        # hard walls: reflect
        hi = np.abs(pos) > lim
        pos = np.where(hi, np.sign(pos) * (2 * lim - np.abs(pos)), pos)
        vel = np.where(hi, -vel, vel)
        # heading turns toward motion when moving, plus scanning jitter
        speed = np.hypot(vel[:, 0], vel[:, 1])
        target = np.arctan2(vel[:, 1], vel[:, 0])
        w = np.minimum(1.0, speed / 0.05)
        head_dir = head_dir + _wrap(target - head_dir) * w * min(1.0, sim_dt / 0.15)
        head_dir = head_dir + 0.8 * math.sqrt(sim_dt) * noise_h[i]
        z = z + (0.03 - z) * sim_dt / 1.0 + 0.004 * math.sqrt(sim_dt) * noise_z[i, :, 0]
        z = np.clip(z, 0.02, 0.04)
        pitch = pitch - pitch * sim_dt / 0.5 + 0.15 * math.sqrt(sim_dt) * noise_z[i, :, 1]
        pitch = np.clip(pitch, -0.4, 0.4)
        P[i], H[i], Z[i], PI[i] = pos, head_dir, z, pitch

    n_out = int(math.ceil((t_end - t_start) / dt - 1e-9)) + 1
    t = t_start + np.arange(n_out) * dt
    H = np.unwrap(H, axis=0)
    head_xy = CubicSpline(ts, P, axis=0)(t)
    head_xy = np.clip(head_xy, -lim, lim)
    yaw = CubicSpline(ts, H, axis=0)(t)
    hz = np.clip(CubicSpline(ts, Z, axis=0)(t), 0.02, 0.04)
    pt = CubicSpline(ts, PI, axis=0)(t)
    head = np.concatenate([head_xy, hz[..., None]], axis=-1)  # (n, A, 3)
    horiz = NOSE_OFFSET_M * np.cos(pt)
    nose = np.stack(
        [head_xy[..., 0] + horiz * np.cos(yaw), head_xy[..., 1] + horiz * np.sin(yaw),
         np.clip(hz + NOSE_OFFSET_M * np.sin(pt), 0.02, 0.04)],
        axis=-1,
    )  # fmt: skip
    return AnimalTracks(
        t=t,
        names=list(names),
        nodes={"Nose": np.ascontiguousarray(nose.transpose(1, 0, 2)),
               "Head": np.ascontiguousarray(head.transpose(1, 0, 2))},
        heading=np.ascontiguousarray(yaw.T),
        extra={"pitch": np.ascontiguousarray(pt.T)},
    )  # fmt: skip
