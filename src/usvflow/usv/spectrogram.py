"""Fixed-length USV spectrograms for call-type classification.

Every call becomes one ``(n_freq, n_time)`` float32 image computed numerically from the audio (the
source document rendered matplotlib plots and classified the pictures): ``n_time`` Hann-windowed
FFT frames of ``n_fft`` samples whose centres tile ``[onset, onset + duration_s)`` evenly, the power
of the FFT bins inside ``[f_lo_hz, f_hi_hz)`` averaged into ``n_freq`` equal-width bands (row 0 =
lowest band), in dB, then normalized per call:

    z = clip((dB - median(dB)) / max(max(dB) - median(dB), min_range_db), 0, 1)

so the noise floor (the median: a call's contour covers a small part of the image) maps to 0 and the
call's loudest pixel to 1, whatever the recording gain. Frames whose centre lies later than the call's
stop plus ``stop_margin_s`` are set to 0 when ``mask_after_stop`` (the next call of a bout would
otherwise enter the 100 ms window of a short call). Samples outside the recording count as silence.

Memory: one call's window (``duration_s`` + one FFT frame) at a time; a session memmap is read call by
call, never loaded.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from usvflow.io.atomic import InputError, atomic_path
from usvflow.io.config import defaults_from_schema
from usvflow.io.progress import progress

SPECTROGRAM_FORMAT = 1


@dataclass(frozen=True)
@defaults_from_schema("call_types.spectrogram")
class SpecParams:
    """How a call becomes an image (all stored with the arrays and with a trained model)."""

    duration_s: float
    f_lo_hz: float
    f_hi_hz: float
    n_fft: int
    n_freq: int
    n_time: int
    mask_after_stop: bool
    stop_margin_s: float
    min_range_db: float

    def __post_init__(self):
        if not (self.duration_s > 0 and 0 <= self.f_lo_hz < self.f_hi_hz):
            raise ValueError(f"bad spectrogram window/band: {self}")
        if self.n_fft < 16 or self.n_freq < 2 or self.n_time < 2:
            raise ValueError(f"n_fft >= 16, n_freq >= 2 and n_time >= 2 are needed: {self}")

    @classmethod
    def from_dict(cls, d: dict | None) -> SpecParams:
        """Build from a dict (config section, JSON); unknown keys are an error."""
        d = dict(d or {})
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown spectrogram parameter(s) {unknown}; known: {sorted(names)}")
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)

    def frequencies_hz(self) -> np.ndarray:
        """Centre frequency of each row (band)."""
        edges = np.linspace(self.f_lo_hz, self.f_hi_hz, self.n_freq + 1)
        return 0.5 * (edges[:-1] + edges[1:])

    def times_s(self) -> np.ndarray:
        """Frame centres relative to the onset."""
        return (np.arange(self.n_time) + 0.5) * (self.duration_s / self.n_time)


def _band_bins(p: SpecParams, sample_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """First FFT bin of each band (bands are contiguous bin ranges) and the bins per band."""
    if p.f_hi_hz > sample_rate / 2:
        raise ValueError(
            f"f_hi_hz {p.f_hi_hz} Hz is above the Nyquist frequency of {sample_rate} Hz audio"
        )
    f = np.fft.rfftfreq(p.n_fft, 1.0 / sample_rate)
    edges = np.linspace(p.f_lo_hz, p.f_hi_hz, p.n_freq + 1)
    band = np.searchsorted(edges, f, side="right") - 1
    ok = (band >= 0) & (band < p.n_freq)
    counts = np.bincount(band[ok], minlength=p.n_freq)
    if np.any(counts == 0):
        raise ValueError(f"n_fft={p.n_fft} at {sample_rate} Hz gives bands without FFT bins; "
                         f"use a larger n_fft or fewer bands (n_freq={p.n_freq})")  # fmt: skip
    first = np.flatnonzero(ok)[0] + np.concatenate([[0], np.cumsum(counts)[:-1]])
    return first, counts


def _window_bounds(onset_s: float, p: SpecParams, sample_rate: float) -> tuple[np.ndarray, int]:
    """Absolute first sample of each frame and the frame length."""
    centres = np.round((onset_s + p.times_s()) * sample_rate).astype(np.int64)
    return centres - p.n_fft // 2, p.n_fft


def _normalize(power: np.ndarray, p: SpecParams) -> np.ndarray:
    db = 10.0 * np.log10(power + 1e-12)
    med = np.median(db)
    rng = max(float(db.max() - med), p.min_range_db)
    return np.clip((db - med) / rng, 0.0, 1.0)


class _Spectrogrammer:
    def __init__(self, p: SpecParams, sample_rate: float):
        self.p = p
        self.sr = float(sample_rate)
        self.first, self.counts = _band_bins(p, self.sr)
        self.b0, self.b1 = int(self.first[0]), int(self.first[-1] + self.counts[-1])
        self.window = np.hanning(p.n_fft + 2)[1:-1]  # strictly positive periodic-like Hann

    def __call__(self, read, n_samples: int, onset_s: float, stop_s: float | None) -> np.ndarray:
        """``read(a, b)`` returns samples ``[a, b)`` (0 <= a < b <= n_samples) of one channel."""
        p = self.p
        starts, n = _window_bounds(onset_s, p, self.sr)
        a, b = int(starts[0]), int(starts[-1]) + n
        seg = np.zeros(b - a, dtype=np.float64)
        ra, rb = max(a, 0), min(b, n_samples)
        if rb > ra:
            seg[ra - a : rb - a] = read(ra, rb)
        idx = (starts - a)[:, None] + np.arange(n)[None, :]
        frames = seg[idx] * self.window
        spec = np.fft.rfft(frames, axis=1)[:, self.b0 : self.b1]  # (n_time, in-band bins)
        power = spec.real**2 + spec.imag**2
        bands = (
            np.add.reduceat(power, self.first - self.b0, axis=1) / self.counts
        )  # (n_time, n_freq)
        z = _normalize(bands.T, p)  # (n_freq, n_time)
        if p.mask_after_stop and stop_s is not None and np.isfinite(stop_s):
            z[:, p.times_s() > (stop_s - onset_s) + p.stop_margin_s] = 0.0
        return z.astype(np.float32)


def call_spectrogram(x, sample_rate: float, onset_s: float, stop_s: float | None = None,
                     params: SpecParams | None = None) -> np.ndarray:  # fmt: skip
    """Spectrogram of the call starting at ``onset_s`` (s from ``x[0]``) of the 1-D signal ``x``."""
    x = np.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"expected a 1-D signal, got shape {x.shape}")
    sp = _Spectrogrammer(params or SpecParams(), sample_rate)
    return sp(lambda a, b: x[a:b], x.size, onset_s, stop_s)


def iter_spectrograms_from_memmap(mm: np.ndarray, sample_rate: float, starts_s, stops_s, channels,
                                  params: SpecParams | None = None,
                                  source: str | os.PathLike | None = None) -> Iterator[np.ndarray]:  # fmt: skip
    """One ``(n_freq, n_time)`` spectrogram per call, in order, from a ``(samples, channels)`` array
    (memmap or row reader): ``channels[i]`` is the column read for call ``i`` (its best channel); only
    each call's window is read. The arguments are checked at once (``source`` names the file in errors)."""
    p = params or SpecParams()
    starts_s = np.asarray(starts_s, dtype=np.float64)
    stops_s = np.asarray(stops_s, dtype=np.float64)
    channels = np.asarray(channels)
    if not (starts_s.shape == stops_s.shape == channels.shape) or starts_s.ndim != 1:
        raise ValueError("starts_s, stops_s and channels must be 1-D of equal length")
    n_samples, n_ch = mm.shape
    bad = np.flatnonzero((channels < 0) | (channels >= n_ch))
    if bad.size:
        raise InputError(source, f"channel {int(channels[bad[0]])} of call #{int(bad[0])} is outside the "
                                 f"{n_ch} channels of the audio")  # fmt: skip
    sp = _Spectrogrammer(p, sample_rate)

    def gen():
        calls = zip(starts_s, stops_s, channels.astype(np.int64))
        for t0, t1, ch in progress(calls, total=starts_s.size, desc="spectrograms", unit="USV"):
            col = int(ch)
            read = lambda a, b, col=col: np.asarray(mm[a:b, col], dtype=np.float64)  # noqa: E731
            yield sp(read, n_samples, float(t0), float(t1))

    return gen()


def spectrograms_from_memmap(mm: np.ndarray, sample_rate: float, starts_s, stops_s, channels,
                             params: SpecParams | None = None, source: str | os.PathLike | None = None
                             ) -> np.ndarray:  # fmt: skip
    """``(n_calls, n_freq, n_time)``: :func:`iter_spectrograms_from_memmap` stacked."""
    p = params or SpecParams()
    it = iter_spectrograms_from_memmap(mm, sample_rate, starts_s, stops_s, channels, p, source)
    out = np.zeros((np.size(starts_s), p.n_freq, p.n_time), dtype=np.float32)
    for i, spec in enumerate(it):
        out[i] = spec
    return out


# ---------------------------------------------------------------- files
def _member(name: str):
    """A zip member with a fixed date, so the same spectrograms give the same bytes."""
    import zipfile

    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    return info


def save_spectrograms(path: str | os.PathLike, specs, usv_ids, params: SpecParams,
                      sample_rate: float, channels=None) -> Path:  # fmt: skip
    """Write ``<path>.npz`` (atomic): ``spectrograms`` (n, n_freq, n_time) float32, ``usv_id`` (str),
    ``channel``, ``frequencies_hz``, ``times_s``, ``sample_rate`` and the parameters (JSON).

    ``specs`` is an array or an iterable of ``(n_freq, n_time)`` spectrograms (one per id, of the
    ``params``' shape), written as they come: memory holds one spectrogram, not the session's."""
    import json
    import zipfile

    path = Path(path)
    usv_ids = np.asarray([str(u) for u in usv_ids], dtype=str)
    n = usv_ids.size
    if isinstance(specs, np.ndarray):
        if specs.ndim != 3 or specs.shape[0] != n:
            raise ValueError(f"{specs.shape[0] if specs.ndim else 0} spectrograms for {n} ids")
        each = tuple(specs.shape[1:])
    else:
        each = (params.n_freq, params.n_time)
    ch = np.full(n, -1, np.int64) if channels is None else np.asarray(channels, np.int64)
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype("<f4")), "fortran_order": False,
              "shape": (n, *each)}  # fmt: skip
    rest = {"usv_id": usv_ids, "channel": ch, "frequencies_hz": params.frequencies_hz(),
            "times_s": params.times_s(), "sample_rate": np.float64(sample_rate),
            "params": np.asarray(json.dumps(params.to_dict())), "format": np.int64(SPECTROGRAM_FORMAT)}  # fmt: skip
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", allowZip64=True) as zf:
        with zf.open(_member("spectrograms.npy"), "w", force_zip64=True) as fh:
            np.lib.format.write_array_header_1_0(fh, header)
            k = 0
            for spec in specs:
                spec = np.asarray(spec, dtype="<f4")
                if spec.shape != each:
                    raise ValueError(f"spectrogram #{k} has shape {spec.shape}, expected {each}")
                fh.write(np.ascontiguousarray(spec).tobytes())
                k += 1
            if k != n:
                raise ValueError(f"{k} spectrograms for {n} ids")
        for name, value in rest.items():
            with zf.open(_member(f"{name}.npy"), "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asanyarray(value), allow_pickle=False)
    return path


def load_spectrograms(path: str | os.PathLike) -> dict:
    """Read a file of :func:`save_spectrograms`: ``{"spectrograms", "usv_id", "channel", "params", ...}``."""
    import json

    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except (OSError, ValueError) as exc:
        raise InputError(path, f"not a spectrogram .npz ({exc})") from None
    need = {"spectrograms", "usv_id", "params"}
    if not need <= set(d):
        raise InputError(path, f"missing arrays {sorted(need - set(d))}")
    d["params"] = SpecParams.from_dict(json.loads(str(d["params"])))
    d["usv_id"] = [str(u) for u in d["usv_id"]]
    return d


def save_png(spec: np.ndarray, path: str | os.PathLike) -> Path:
    """The spectrogram as a grey-level PNG (low frequencies at the bottom), atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    with atomic_path(path) as tmp:
        plt.imsave(
            tmp, np.asarray(spec), cmap="gray", vmin=0.0, vmax=1.0, origin="lower", format="png"
        )
    return path
