"""Simulated Neuropixels recordings (SpikeGLX ``.ap.bin``/``.ap.meta``) and Kilosort4/Phy output.

:func:`write_spikeglx` writes one session's probe file: int16, interleaved samples x ``n_ap + 1``
channels, AP channels = Gaussian noise plus the spikes of a few units, last column = the imec sync word
with the Loopbio triggerbox pulses on bit ``sync_bit`` (exact to the sample on the probe's clock).

:func:`write_sorter_output` writes what Kilosort4 (plus a Phy save) leaves for the concatenation of
several sessions, with the quirks a real sort has: a few duplicate spikes 1-3 samples after a true
spike, a junk "noise" cluster and a unit with fewer than 100 spikes.

Spike times (truth and ``spike_times.npy``) are the sample of the template's trough: a spike at sample
``s`` adds ``template[j]`` to sample ``s - NT0MIN + j`` (Kilosort's ``nt0min`` convention).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from usvflow.io.atomic import atomic_open, atomic_path
from usvflow.io.progress import progress as progress_bar
from usvflow.io.spikeglx import write_meta
from usvflow.simulate.timeline import Timeline

__all__ = [
    "NT",
    "NT0MIN",
    "Unit",
    "channel_positions_np1",
    "draw_units",
    "np1_meta",
    "write_sorter_output",
    "write_spikeglx",
]

NT = 61  # template length (samples), as Kilosort4
NT0MIN = 20  # index of the trough inside a template
SPREAD = 3  # a template reaches +-3 channels around its peak channel
NOISE_RMS = 15.0  # LSB (~ 20 uV on NP1.0 at gain 500)
REFRACTORY_S = 0.002


@dataclass
class Unit:
    """A simulated neuron: its waveform on every AP channel and its mean firing rate."""

    id: int
    peak_channel: int
    template: np.ndarray  # (NT, n_ap) float32, LSB; trough at [NT0MIN, peak_channel]
    rate_hz: float

    @property
    def peak_amplitude(self) -> float:
        """Trough value on the peak channel (negative, LSB)."""
        return float(self.template[NT0MIN, self.peak_channel])


def _waveform(rng: np.random.Generator) -> np.ndarray:
    """A spike shape of NT samples, trough -1 at NT0MIN, positive rebound, zero at both ends."""
    t = np.arange(NT, dtype=np.float64) - NT0MIN
    width = rng.uniform(2.0, 3.2)
    reb_at, reb_w, reb_frac = rng.uniform(9, 14), rng.uniform(5, 8), rng.uniform(0.2, 0.4)
    w = -np.exp(-0.5 * (t / width) ** 2) + reb_frac * np.exp(-0.5 * ((t - reb_at) / reb_w) ** 2)
    w += 0.08 * np.exp(-0.5 * ((t + 5) / 2.0) ** 2)  # small pre-trough bump
    taper = np.ones(NT)
    taper[:6] = np.linspace(0, 1, 6)
    taper[-10:] = np.linspace(1, 0, 10)
    w *= taper
    return w / -w[NT0MIN]


def draw_units(
    rng: np.random.Generator,
    n_ap: int,
    k: int = 6,
    rate_range: tuple[float, float] = (2.0, 15.0),
    amp_range: tuple[float, float] = (60.0, 200.0),
) -> list[Unit]:
    """Draw ``k`` units on a probe of ``n_ap`` channels (share them across sessions of one group).

    Peak channels are distinct (while ``k <= n_ap``); each template decays as ``exp(-d/1.2)`` over the
    ``+-3`` neighbouring channels and is zero beyond.
    """
    if n_ap < 1 or k < 0:
        raise ValueError(f"n_ap={n_ap}, k={k}")
    peaks = np.sort(rng.choice(n_ap, size=k, replace=k > n_ap))
    units = []
    for i, pc in enumerate(peaks):
        amp = rng.uniform(*amp_range)
        w = _waveform(rng)
        tpl = np.zeros((NT, n_ap), dtype=np.float32)
        for c in range(max(0, pc - SPREAD), min(n_ap, pc + SPREAD + 1)):
            tpl[:, c] = amp * w * np.exp(-abs(c - pc) / 1.2)
        units.append(
            Unit(id=i, peak_channel=int(pc), template=tpl, rate_hz=float(rng.uniform(*rate_range)))
        )
    return units


def _spike_train(rng: np.random.Generator, rate_hz: float, fs: float, n: int) -> np.ndarray:
    """Poisson spikes with a 2 ms refractory period, in samples ``NT .. n - NT - 1`` (sorted int64)."""
    refr = int(np.ceil(REFRACTORY_S * fs))
    mean_isi = fs / rate_hz
    extra = max(mean_isi - refr, 1.0)
    lo, hi = NT, n - NT
    if hi <= lo:
        return np.zeros(0, dtype=np.int64)
    out = []
    t = lo + int(rng.exponential(extra))
    while t < hi:
        m = int((hi - t) / mean_isi * 1.2) + 16
        isi = refr + np.floor(rng.exponential(extra, size=m)).astype(np.int64)
        ts = t + np.concatenate([[0], np.cumsum(isi[:-1])])
        out.append(ts[ts < hi])
        t = int(ts[-1] + isi[-1])
    return np.concatenate(out).astype(np.int64)


def channel_positions_np1(n: int) -> np.ndarray:
    """NP1.0 contact positions (um) of channels ``0..n-1``: staggered columns, 20 um rows."""
    ch = np.arange(n)
    x = np.array([43.0, 11.0, 59.0, 27.0])[ch % 4]
    y = 20.0 * (ch // 2)
    return np.stack([x, y], axis=1).astype(np.float32)


def _create_time(session_id: str) -> str:
    m = re.search(r"(\d{8})_(\d{6})", session_id)
    if m:
        try:
            return _dt.datetime.strptime(m.group(1) + m.group(2), "%Y%m%d%H%M%S").isoformat()
        except ValueError:
            pass
    return "2025-01-01T12:00:00"


def np1_meta(
    session_id: str,
    probe: str,
    n_ap: int,
    n_samples: int,
    headstage_sn: str,
    probe_sn: str,
    first_sample: int,
    sha1: str = "",
    rate: float = 30000.0,
) -> dict[str, str]:
    """An NP1.0 ``.ap.meta`` (keys in SpikeGLX's order) for ``n_ap`` saved AP channels + SY0."""
    if not 1 <= n_ap <= 384:
        raise ValueError(f"n_ap={n_ap} must be 1..384")
    n_saved = n_ap + 1
    size = n_samples * n_saved * 2
    m = re.fullmatch(r"imec(\d+)", probe)
    port = int(m.group(1)) + 1 if m else 1
    ap = range(n_ap)
    subset = f"0:{n_ap - 1},768" if n_ap > 1 else "0,768"
    return {
        "acqApLfSy": "384,384,1",
        "appVersion": "20230425",
        "fileCreateTime": _create_time(session_id),
        "fileName": f"D:/SGL_DATA/{session_id}/{session_id}.{probe}.ap.bin",
        "fileSHA1": sha1.upper(),
        "fileSizeBytes": str(size),
        "fileTimeSecs": repr(n_samples / rate),
        "firstSample": str(first_sample),
        "gateMode": "Immediate",
        "imAiRangeMax": "0.6",
        "imAiRangeMin": "-0.6",
        "imCalibrated": "true",
        "imDatApi": "3.31",
        "imDatBs_fw": "2.0.137",
        "imDatBsc_fw": "3.2.176",
        "imDatBsc_hw": "2.1",
        "imDatBsc_pn": "NP2_QBSC_00",
        "imDatBsc_sn": "412",
        "imDatFx_hw": "4.13",
        "imDatFx_pn": "NP2_FLEX_0",
        "imDatHs_fw": "5.1",
        "imDatHs_pn": "NP2_HS_30",
        "imDatHs_sn": str(headstage_sn),
        "imDatPrb_dock": "1",
        "imDatPrb_pn": "PRB_1_4_0480_1",
        "imDatPrb_port": str(port),
        "imDatPrb_slot": "2",
        "imDatPrb_sn": str(probe_sn),
        "imDatPrb_type": "0",
        "imLEDEnable": "false",
        "imMaxInt": "512",
        "imRoFile": "",
        "imSampRate": f"{rate:g}" if float(rate).is_integer() else repr(float(rate)),
        "imStdby": "",
        "imTrgRising": "true",
        "imTrgSource": "0",
        "nDataDirs": "1",
        "nSavedChans": str(n_saved),
        "snsApLfSy": f"{n_ap},0,1",
        "snsSaveChanSubset": subset,
        "syncImInputSlot": "2",
        "syncSourceIdx": "0",
        "syncSourcePeriod": "1",
        "trigMode": "Immediate",
        "typeImEnabled": "1",
        "typeNiEnabled": "0",
        "typeThis": "imec",
        "userNotes": "",
        "~imroTbl": "(0,384)" + "".join(f"({i} 0 0 500 250 1)" for i in range(384)),
        "~snsChanMap": "(384,384,1)" + "".join(f"(AP{i};{i}:{i})" for i in ap) + "(SY0;768:768)",
        "~snsShankMap": "(1,2,480)" + "".join(f"(0:{i % 2}:{i // 2}:1)" for i in ap),
    }


def write_spikeglx(
    session_dir: str | os.PathLike,
    session_id: str,
    timeline: Timeline,
    rng: np.random.Generator,
    probe: str = "imec0",
    n_ap: int = 32,
    headstage_sn: str = "23280196",
    probe_sn: str = "22420015064",
    units: list[Unit] | None = None,
    sync_bit: int = 6,
    square_wave_bit: int | None = None,
    noise_rms: float = NOISE_RMS,
    chunk_s: float = 1.0,
    spikes_npz: str | os.PathLike | None = None,
    progress: bool = False,
) -> dict:
    """Write ``<session_dir>/ephys/<probe>/<session_id>.<probe>.ap.bin`` and ``.ap.meta``; return the truth.

    The probe records ``timeline.ephys_duration_s`` true seconds from its clock's start at its true
    rate ``timeline.ephys.rate`` while the meta claims ``imSampRate=30000`` (the calibrated rate belongs
    in the workflow's ``{headstage_sn: rate}`` table). The sync word (last column) has bit ``sync_bit``
    high during every triggerbox pulse; with ``square_wave_bit`` that bit also carries SpikeGLX's 1 Hz
    square wave (high during the first half of every second of the file). Written in ``chunk_s`` chunks
    (``progress``: with a progress bar on stderr).

    Truth keys: ``probe``, ``session_id``, ``bin``, ``meta``, ``n_samples``, ``n_saved_chans``,
    ``sync_channel_index``, ``rate_true``, ``rate_nominal``, ``headstage_sn``, ``probe_sn``,
    ``first_sample``, ``sync_bit``, ``tracking_start_end`` ([first high sample of the frame-0 pulse,
    first high sample of the pulse after the last common frame]), ``largest_camera_break_duration``
    (samples, largest gap between pulse onsets), ``n_triggerbox_pulses``, ``spikes_npz`` (path or None)
    and ``units``: ``[{"id", "peak_channel", "rate_hz", "spike_samples" (list of ints)}]``.
    """
    clk = timeline.ephys
    if clk is None:
        raise ValueError("timeline has no e-phys clock")
    if not 0 <= sync_bit <= 15 or (square_wave_bit is not None and not 0 <= square_wave_bit <= 15):
        raise ValueError("sync bits must be 0..15")
    if units is None:
        units = draw_units(rng, n_ap, 6)
    for u in units:
        if u.template.shape != (NT, n_ap):
            raise ValueError(f"unit {u.id} template shape {u.template.shape} != ({NT}, {n_ap})")
    n_saved = n_ap + 1
    fs = clk.rate
    n = int(np.floor(timeline.ephys_duration_s * fs))

    on = np.asarray(timeline.triggerbox_on_s, dtype=np.float64)
    off = on + timeline.pulse_high_s
    k_on = clk.first_sample_at_or_after(on)
    k_off = clk.first_sample_at_or_after(off)
    if k_on[0] < 1 or k_off[-1] >= n:
        raise ValueError("the probe recording does not contain every triggerbox pulse")
    ffp, n_least = timeline.first_frame_pulse, timeline.n_frames_least
    if ffp + n_least >= len(on):
        raise ValueError("timeline has no pulse after the last common frame")

    trains = [_spike_train(rng, u.rate_hz, fs, n) for u in units]
    first_sample = int(rng.integers(100_000, 5_000_000))

    out_dir = Path(session_dir) / "ephys" / probe
    bin_path = out_dir / f"{session_id}.{probe}.ap.bin"
    meta_path = out_dir / f"{session_id}.{probe}.ap.meta"
    chunk = max(1, int(round(chunk_s * clk.nominal_rate)))
    sha = hashlib.sha1()
    bar = progress_bar(
        total=n / clk.nominal_rate,
        desc=f"e-phys {probe}",
        unit="s",
        unit_scale=True,
        enabled=progress,
    )
    with atomic_path(bin_path) as tmp, open(tmp, "wb") as fh:
        for c0 in range(0, n, chunk):
            c1 = min(n, c0 + chunk)
            m = c1 - c0
            x = rng.standard_normal((m, n_ap), dtype=np.float32)
            x *= np.float32(noise_rms)
            for u, st in zip(units, trains):
                lo = np.searchsorted(st, c0 - (NT - NT0MIN) + 1)
                hi = np.searchsorted(st, c1 + NT0MIN)
                for s in st[lo:hi]:
                    a = int(s) - NT0MIN
                    ia, ib = max(a, c0), min(a + NT, c1)
                    x[ia - c0 : ib - c0] += u.template[ia - a : ib - a]
            buf = np.empty((m, n_saved), dtype=np.int16)
            buf[:, :n_ap] = np.clip(np.rint(x), -32768, 32767)
            sel = slice(
                np.searchsorted(k_off, c0, side="right"), np.searchsorted(k_on, c1, side="left")
            )
            word = clk.pulse_mask(m, on[sel], off[sel], offset=c0).astype(np.uint16) << np.uint16(
                sync_bit
            )
            if square_wave_bit is not None:
                k = np.arange(c0, c1)
                half = (k % int(round(clk.nominal_rate))) < int(round(clk.nominal_rate)) // 2
                word |= half.astype(np.uint16) << np.uint16(square_wave_bit)
            buf[:, -1] = word.view(np.int16)
            b = buf.tobytes()
            sha.update(b)
            fh.write(b)
            bar.update(m / clk.nominal_rate)
        bar.close()
        fh.flush()
        os.fsync(fh.fileno())
    meta = np1_meta(
        session_id, probe, n_ap, n, headstage_sn, probe_sn, first_sample, sha.hexdigest()
    )
    write_meta(meta_path, meta, newline="\r\n")

    if spikes_npz is not None:
        with atomic_open(spikes_npz, "wb") as fh:
            np.savez(fh, **{f"unit_{u.id}": st for u, st in zip(units, trains)})

    return {
        "probe": probe,
        "session_id": session_id,
        "bin": str(bin_path),
        "meta": str(meta_path),
        "n_samples": n,
        "n_saved_chans": n_saved,
        "sync_channel_index": n_saved - 1,
        "rate_true": float(fs),
        "rate_nominal": float(clk.nominal_rate),
        "headstage_sn": str(headstage_sn),
        "probe_sn": str(probe_sn),
        "first_sample": first_sample,
        "sync_bit": sync_bit,
        "tracking_start_end": [int(k_on[ffp]), int(k_on[ffp + n_least])],
        "largest_camera_break_duration": int(np.diff(k_on).max()),
        "n_triggerbox_pulses": int(len(k_on)),
        "spikes_npz": None if spikes_npz is None else str(spikes_npz),
        "units": [
            {
                "id": u.id,
                "peak_channel": u.peak_channel,
                "rate_hz": u.rate_hz,
                "spike_samples": st.tolist(),
            }
            for u, st in zip(units, trains)
        ],
    }


def _save_npy(path: Path, arr: np.ndarray) -> None:
    with atomic_open(path, "wb") as fh:
        np.save(fh, arr)


def _write_text(path: Path, text: str) -> None:
    with atomic_open(path, "w", newline="") as fh:
        fh.write(text)


def _tsv(header: list[str], rows: list[list]) -> str:
    return "\t".join(header) + "\n" + "".join("\t".join(str(v) for v in r) + "\n" for r in rows)


def write_sorter_output(
    ks_dir: str | os.PathLike,
    sessions: list,
    n_channels_saved: int,
    units: list[Unit],
    sample_rate: float,
    with_phy: bool = True,
    duplicate_fraction: float = 0.02,
    noise_clusters: int = 1,
    rng: np.random.Generator | None = None,
    dat_path: str | os.PathLike | None = None,
) -> dict:
    """Write Kilosort4 output (+ Phy's ``cluster_info.tsv``) for the concatenation of ``sessions``.

    ``sessions`` is a list of ``(n_samples, units_truth)``: a session's samples and the ``units`` list
    of its :func:`write_spikeglx` truth (or that whole truth dict). Session ``i``'s spikes are offset by
    the samples of the sessions before it. Every unit becomes one cluster (ids shuffled, so cluster id
    != unit id), plus ``noise_clusters`` junk clusters (``KSLabel`` mua, Phy ``group`` noise). Quirks:
    ``duplicate_fraction`` of each unit's spikes (at least one) are duplicated 1-3 samples later in the
    same cluster; the unit with the fewest spikes keeps only 40-89 of them (fewer than the
    default ``min_spike_num`` of 100 even with its duplicates; labelled mua). ``cluster_group.tsv`` is a byte copy of ``cluster_KSLabel.tsv``
    (header ``KSLabel``), as Kilosort4 leaves it.

    Returns the truth:
    ``total_samples``, ``session_offsets``, ``n_spikes_total``,
    ``clusters``: ``[{"cluster_id", "unit_id" (None for noise), "label" (Phy group), "ks_label",
    "peak_channel", "n_spikes" (without duplicates), "n_duplicates"}]``,
    ``sessions``: ``[{"offset", "n_samples", "units": [{"unit_id", "cluster_id", "label", "ks_label",
    "peak_channel", "spike_samples" (relative to the session file, without duplicates)}]}]``,
    ``noise_cluster_ids``, ``low_count_cluster_id``, ``duplicate_cluster_ids``,
    ``duplicate_spike_samples`` (``{cluster_id: [samples in the concatenation]}``).
    """
    rng = np.random.default_rng(0) if rng is None else rng
    ks_dir = Path(ks_dir)
    if not units:
        raise ValueError("no units")
    n_ap = units[0].template.shape[1]
    if n_channels_saved < n_ap:
        raise ValueError(f"n_channels_saved={n_channels_saved} < {n_ap} AP channels")

    n_per = []
    per_session: list[dict[int, np.ndarray]] = []
    for n_s, ut in sessions:
        if isinstance(ut, dict):
            ut = ut["units"]
        n_per.append(int(n_s))
        by_id = {int(d["id"]): d for d in ut}
        for u in units:
            d = by_id.get(u.id)
            if d is None or int(d["peak_channel"]) != u.peak_channel:
                raise ValueError(
                    f"session {len(n_per) - 1}: unit {u.id} missing or on another peak channel"
                )
        per_session.append(
            {i: np.asarray(d["spike_samples"], dtype=np.int64) for i, d in by_id.items()}
        )
    offsets = np.concatenate([[0], np.cumsum(n_per)[:-1]]).astype(np.int64)
    total = int(sum(n_per))

    # Concatenated spikes of each unit, with their session index.
    concat: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for u in units:
        parts, sess = [], []
        for i, d in enumerate(per_session):
            s = d.get(u.id, np.zeros(0, dtype=np.int64))
            parts.append(s + offsets[i])
            sess.append(np.full(len(s), i))
        concat[u.id] = (np.concatenate(parts), np.concatenate(sess))

    # The sorter finds only part of the sparsest unit.
    low_unit = min(units, key=lambda u: len(concat[u.id][0]))
    st, ss = concat[low_unit.id]
    keep_n = int(rng.integers(40, 90))
    if len(st) > keep_n:
        idx = np.sort(rng.choice(len(st), size=keep_n, replace=False))
        concat[low_unit.id] = (st[idx], ss[idx])

    n_clusters = len(units) + noise_clusters
    perm = rng.permutation(n_clusters)
    cid_of_unit = {u.id: int(perm[i]) for i, u in enumerate(units)}
    noise_ids = [int(perm[len(units) + j]) for j in range(noise_clusters)]

    templates = np.zeros((n_clusters, NT, n_ap), dtype=np.float32)
    times, clus, amps = [], [], []
    clusters_truth = []
    dup_samples: dict[int, list[int]] = {}
    for u in units:
        cid = cid_of_unit[u.id]
        templates[cid] = u.template
        st, _ = concat[u.id]
        n_dup = 0
        if duplicate_fraction > 0 and len(st):
            n_dup = max(1, int(round(duplicate_fraction * len(st))))
            src = np.sort(rng.choice(len(st), size=min(n_dup, len(st)), replace=False))
            dup = st[src] + rng.integers(1, 4, size=len(src))
            dup = dup[dup < total]
            n_dup = len(dup)
            dup_samples[cid] = dup.tolist()
        else:
            dup = np.zeros(0, dtype=np.int64)
        all_t = np.concatenate([st, dup])
        times.append(all_t)
        clus.append(np.full(len(all_t), cid))
        amps.append(abs(u.peak_amplitude) / 4.0 * rng.normal(1.0, 0.1, size=len(all_t)))
        is_low = u.id == low_unit.id
        clusters_truth.append(
            {
                "cluster_id": cid,
                "unit_id": u.id,
                "label": "mua" if is_low else "good",
                "ks_label": "mua" if is_low else "good",
                "peak_channel": u.peak_channel,
                "n_spikes": int(len(st)),
                "n_duplicates": int(n_dup),
            }
        )
    for cid in noise_ids:
        n_junk = max(150, int(3.0 * total / sample_rate))
        t = np.unique(rng.integers(NT, max(NT + 1, total - NT), size=n_junk))
        t = t[np.concatenate([[True], np.diff(t) > 10])]  # no junk spike looks like a duplicate
        pc = int(rng.integers(0, n_ap))
        w = rng.normal(0, 1, size=NT)
        w[NT0MIN] = -4.0
        templates[cid, :, pc] = 8.0 * w
        times.append(t.astype(np.int64))
        clus.append(np.full(len(t), cid))
        amps.append(rng.uniform(2.0, 12.0, size=len(t)))
        clusters_truth.append(
            {
                "cluster_id": cid,
                "unit_id": None,
                "label": "noise",
                "ks_label": "mua",
                "peak_channel": pc,
                "n_spikes": int(len(t)),
                "n_duplicates": 0,
            }
        )
    clusters_truth.sort(key=lambda c: c["cluster_id"])

    spike_times = np.concatenate(times).astype(np.int64)
    spike_clusters = np.concatenate(clus).astype(np.int32)
    amplitudes = np.concatenate(amps).astype(np.float32)
    order = np.lexsort((spike_clusters, spike_times))
    spike_times, spike_clusters, amplitudes = (
        spike_times[order],
        spike_clusters[order],
        amplitudes[order],
    )

    ks_dir.mkdir(parents=True, exist_ok=True)
    pos = channel_positions_np1(n_ap)
    _save_npy(ks_dir / "spike_times.npy", spike_times)
    _save_npy(ks_dir / "spike_clusters.npy", spike_clusters)
    _save_npy(ks_dir / "spike_templates.npy", spike_clusters.copy())
    _save_npy(ks_dir / "amplitudes.npy", amplitudes)
    _save_npy(ks_dir / "templates.npy", templates)
    _save_npy(
        ks_dir / "templates_ind.npy", np.tile(np.arange(n_ap, dtype=np.float32), (n_clusters, 1))
    )
    _save_npy(ks_dir / "channel_map.npy", np.arange(n_ap, dtype=np.int32))
    _save_npy(ks_dir / "channel_positions.npy", pos)
    _save_npy(ks_dir / "channel_shanks.npy", np.zeros(n_ap, dtype=np.float32))

    if dat_path is None:
        dat_path = ks_dir.parent / "concatenated.ap.bin"
    _write_text(
        ks_dir / "params.py",
        f"dat_path = {[str(dat_path)]!r}\n"
        f"n_channels_dat = {int(n_channels_saved)}\n"
        "dtype = 'int16'\n"
        "offset = 0\n"
        f"sample_rate = {float(sample_rate)!r}\n"
        "hp_filtered = False\n",
    )

    contam = {}
    amp_cl = {}
    for c in clusters_truth:
        cid = c["cluster_id"]
        contam[cid] = (
            100.0
            if c["label"] == "noise"
            else round(
                float(rng.uniform(20, 60) if c["ks_label"] == "mua" else rng.uniform(0, 8)), 1
            )
        )
        amp_cl[cid] = round(float(np.mean(amplitudes[spike_clusters == cid])) * 10, 1)
    kslabel = _tsv(
        ["cluster_id", "KSLabel"], [[c["cluster_id"], c["ks_label"]] for c in clusters_truth]
    )
    _write_text(ks_dir / "cluster_KSLabel.tsv", kslabel)
    _write_text(ks_dir / "cluster_group.tsv", kslabel)
    _write_text(
        ks_dir / "cluster_ContamPct.tsv",
        _tsv(
            ["cluster_id", "ContamPct"],
            [[c["cluster_id"], contam[c["cluster_id"]]] for c in clusters_truth],
        ),
    )
    _write_text(
        ks_dir / "cluster_Amplitude.tsv",
        _tsv(
            ["cluster_id", "Amplitude"],
            [[c["cluster_id"], amp_cl[c["cluster_id"]]] for c in clusters_truth],
        ),
    )
    if with_phy:
        dur_s = total / float(sample_rate)
        rows = []
        for c in clusters_truth:
            cid = c["cluster_id"]
            n_file = int(np.count_nonzero(spike_clusters == cid))
            tpl_amp = float(np.ptp(templates[cid, :, c["peak_channel"]]))
            rows.append(
                [
                    cid,
                    amp_cl[cid],
                    contam[cid],
                    c["ks_label"],
                    f"{tpl_amp:.3f}",
                    c["peak_channel"],
                    f"{float(pos[c['peak_channel'], 1]):.1f}",
                    f"{n_file / dur_s:.4f}",
                    c["label"],
                    n_file,
                    0,
                ]
            )
        header = [
            "cluster_id",
            "Amplitude",
            "ContamPct",
            "KSLabel",
            "amp",
            "ch",
            "depth",
            "fr",
            "group",
            "n_spikes",
            "sh",
        ]
        _write_text(ks_dir / "cluster_info.tsv", _tsv(header, rows))

    # Per-session truth (spikes relative to each session file, no duplicates).
    sessions_truth = []
    for i, (off, n_s) in enumerate(zip(offsets, n_per)):
        us = []
        for u in units:
            st, ss = concat[u.id]
            ct = next(c for c in clusters_truth if c["cluster_id"] == cid_of_unit[u.id])
            us.append(
                {
                    "unit_id": u.id,
                    "cluster_id": cid_of_unit[u.id],
                    "label": ct["label"],
                    "ks_label": ct["ks_label"],
                    "peak_channel": u.peak_channel,
                    "spike_samples": (st[ss == i] - off).tolist(),
                }
            )
        sessions_truth.append({"offset": int(off), "n_samples": int(n_s), "units": us})

    low_cid = cid_of_unit[low_unit.id]
    return {
        "total_samples": total,
        "session_offsets": [int(o) for o in offsets],
        "n_spikes_total": int(len(spike_times)),
        "clusters": clusters_truth,
        "sessions": sessions_truth,
        "noise_cluster_ids": noise_ids,
        "low_count_cluster_id": low_cid,
        "duplicate_cluster_ids": sorted(k for k, v in dup_samples.items() if v),
        "duplicate_spike_samples": dup_samples,
    }
