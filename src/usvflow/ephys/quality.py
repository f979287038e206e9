"""Unit quality metrics of one session's sorted clusters, computed with SpikeInterface.

:func:`session_quality_metrics` pairs the session's own recording (the ``.ap.bin`` that was
concatenated for sorting: the raw file, or its phase-shifted copy) with the sorter's spikes of that
session, restricted to the tracking window and cleaned of duplicates as the split does
(:func:`usvflow.ephys.split.session_cluster_spikes`). The recording is high-pass filtered
(``highpass_hz``), a SpikeInterface ``SortingAnalyzer`` extracts up to ``max_spikes_per_unit``
random waveforms per cluster on the sorter's peak channel and its sparse neighbourhood, and these
metrics are computed per cluster (SpikeInterface's names; ``metric_params`` passes parameters to
SpikeInterface by metric name, e.g. ``{"presence_ratio": {"bin_duration_s": 60}}``):

* ``num_spikes``, ``firing_rate`` (Hz over the tracking window);
* ``presence_ratio`` (fraction of time bins holding a spike, 60 s bins by default);
* ``isi_violations_ratio`` and ``isi_violations_count`` (Hill et al., 1.5 ms threshold by default);
* ``amplitude_cutoff`` (fraction of spikes estimated missing below the detection threshold);
* ``amplitude_median`` (µV, absolute value of the median spike amplitude on the peak channel);
* ``snr`` (peak-channel template extremum over the channel's noise level);
* ``sliding_rp_violation`` (contamination estimate of the sliding refractory-period test) and
  ``noise_cutoff``, the metrics of the IBL's rule.

``quality_label`` is ``good`` when every threshold of ``thresholds`` holds
(``{metric: {"greater": x, "less": y, "abs": bool}}``, inclusive; SpikeInterface's
``threshold_metrics_label_units``), otherwise ``bad``; ``quality_failed`` names the failed
thresholds. A missing value (NaN: too few spikes for the metric) counts as ``nan_policy`` says. The sorter's
(Kilosort/Phy) label stays beside it in ``label``.

Random choices (waveform subsets, noise chunks, main channels) are seeded with ``seed``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from usvflow.ephys.split import load_labels, load_spikes, session_cluster_spikes
from usvflow.io.atomic import InputError
from usvflow.io.spikeglx import n_samples, parse_meta

__all__ = [
    "METRIC_COLUMNS",
    "QualitySettings",
    "ap_gain_uv",
    "label_units",
    "session_quality_metrics",
]

# The metrics computed, in SpikeInterface's names (the columns of the table, in this order).
METRIC_COLUMNS = [
    "num_spikes",
    "firing_rate",
    "presence_ratio",
    "isi_violations_ratio",
    "isi_violations_count",
    "amplitude_cutoff",
    "amplitude_median",
    "snr",
    "sliding_rp_violation",
    "noise_cutoff",
]
_SI_METRICS = [
    "num_spikes",
    "firing_rate",
    "presence_ratio",
    "isi_violation",
    "amplitude_cutoff",
    "amplitude_median",
    "snr",
    "sliding_rp_violation",
    "noise_cutoff",
]


@dataclass
class QualitySettings:
    """The ``ephys.quality_metrics`` settings (defaults and meanings in the config schema)."""

    run: bool
    highpass_hz: float
    max_spikes_per_unit: int
    metric_params: dict
    thresholds: dict
    nan_policy: str
    seed: int


def ap_gain_uv(meta) -> np.ndarray:
    """µV per LSB of every saved AP channel (imec streams; gains from the imro table or NP2.0's 80)."""
    meta = meta if hasattr(meta, "raw") else parse_meta(meta)
    raw = meta.raw
    try:
        vmax = float(raw["imAiRangeMax"])
        maxint = float(raw.get("imMaxInt") or (8192 if meta.probe_type not in (None, 0) else 512))
    except (KeyError, ValueError):
        raise InputError(meta.path, "lacks imAiRangeMax/imMaxInt needed for the µV scale") from None
    n_ap = meta.n_ap
    gains = np.full(n_ap, 80.0)  # NP2.0 and later: fixed gain
    imro = raw.get("~imroTbl", "")
    entries = [e for e in imro.strip("()").split(")(")][1:] if imro else []
    if meta.probe_type in (None, 0) and entries:
        ap_gain = np.array([float(e.split()[3]) for e in entries])
        saved = np.asarray(meta.saved_channels[:n_ap])
        if saved.max(initial=0) >= len(ap_gain):
            raise InputError(meta.path, "saved AP channels outside the imro table")
        gains = ap_gain[saved]
    elif meta.probe_type in (None, 0):
        gains = np.full(n_ap, 500.0)
    return vmax * 1e6 / maxint / gains


def label_units(metrics: pd.DataFrame, thresholds: dict, nan_policy: str) -> pd.DataFrame:
    """``quality_label`` (good/bad) and ``quality_failed`` (the failed thresholds, ``;``-joined)."""
    from spikeinterface.curation import threshold_metrics_label_units

    unknown = [m for m in thresholds if m not in metrics.columns]
    if unknown:
        raise InputError(
            None, f"quality thresholds name unknown metric(s) {unknown}; known: {METRIC_COLUMNS}"
        )
    out = pd.DataFrame(index=metrics.index)
    out["quality_label"] = pd.Series("good", index=metrics.index, dtype=object)
    failed = [[] for _ in range(len(metrics))]
    if len(metrics) == 0:
        out["quality_failed"] = pd.Series(dtype=object)
        return out
    kw = {"pass_label": "good", "fail_label": "bad", "nan_policy": nan_policy}
    out["quality_label"] = threshold_metrics_label_units(metrics, thresholds, **kw)["label"].astype(
        str
    )
    for m, th in thresholds.items():
        one = threshold_metrics_label_units(metrics, {m: th}, **kw)["label"].to_numpy()
        for i in np.flatnonzero(one == "bad"):
            failed[i].append(m)
    out["quality_failed"] = [";".join(f) for f in failed]
    return out


def session_quality_metrics(
    bin_path: str | os.PathLike,
    meta_path: str | os.PathLike,
    ks_dir: str | os.PathLike,
    session_start: int,
    window: tuple[int, int],
    sample_rate: float,
    settings: QualitySettings,
    *,
    remove_duplicates: bool,
    censor_samples: int,
    n_jobs: int = 1,
) -> pd.DataFrame:
    """Quality metrics (one row per sorter cluster with spikes in the session, index ``cluster_id``).

    ``session_start``: the session file's first sample in the concatenation; ``window``: its
    ``tracking_start_end`` (concatenation samples); ``sample_rate``: the calibrated rate;
    ``remove_duplicates``/``censor_samples``: the split's duplicate removal; ``n_jobs``: threads
    for the passes over the whole recording (noise levels, every spike's amplitude); the templates
    are accumulated on one thread, so the table is the same for any ``n_jobs``. Columns:
    ``label`` (the sorter's), ``peak_channel``, :data:`METRIC_COLUMNS`, ``quality_label``,
    ``quality_failed``.
    """
    import spikeinterface.core as sc
    from spikeinterface.metrics.quality import compute_quality_metrics
    from spikeinterface.preprocessing import highpass_filter

    st = settings
    seed = int(st.seed)
    meta = parse_meta(meta_path)
    bin_path, ks_dir = Path(bin_path), Path(ks_dir)
    n = n_samples(bin_path, meta)
    start, end = int(window[0]), int(window[1])
    a, b = start - int(session_start), end - int(session_start)
    if not (0 <= a < b <= n):
        raise InputError(
            bin_path,
            f"tracking window [{start}, {end}) is not inside the session's {n} samples "
            f"starting at {session_start} of the concatenation",
        )
    times, clus = load_spikes(ks_dir)
    labels, _ = load_labels(ks_dir)
    spikes = session_cluster_spikes(
        times,
        clus,
        start,
        end,
        remove_duplicates=remove_duplicates,
        censor_samples=censor_samples,
        margin_samples=int(round(sample_rate)),
    )
    unknown = sorted(set(spikes) - set(labels))
    if unknown:
        raise InputError(ks_dir, f"cluster(s) {unknown[:10]} have spikes but no label")
    cols = ["label", "peak_channel", *METRIC_COLUMNS, "quality_label", "quality_failed"]
    ids = sorted(c for c, s in spikes.items() if len(s))
    if not ids:
        return pd.DataFrame(columns=cols, index=pd.Index([], name="cluster_id"))

    n_ap = meta.n_ap
    peak = np.array([labels[c][1] for c in ids], dtype=np.int64)
    if peak.max() >= n_ap or peak.min() < 0:
        raise InputError(
            ks_dir, f"peak channel(s) outside the {n_ap} saved AP channels of {meta.path}"
        )
    rec = sc.BinaryRecordingExtractor(
        file_paths=[str(bin_path)],
        sampling_frequency=float(sample_rate),
        dtype="int16",
        num_channels=meta.n_saved_chans,
        time_axis=0,
        file_offset=0,
    )
    rec = rec.select_channels(rec.channel_ids[:n_ap])
    rec.set_channel_gains(ap_gain_uv(meta))
    rec.set_channel_offsets(np.zeros(n_ap))
    # contact positions: the probe's geometry from the meta, for the sparse waveform neighbourhoods
    rec.set_probe(_probe_of(meta))
    rec = rec.frame_slice(a, b)
    rec = highpass_filter(rec, freq_min=float(st.highpass_hz), dtype="float32")

    samples = np.concatenate([spikes[c] - start for c in ids]).astype(np.int64)
    lab = np.concatenate([np.full(len(spikes[c]), c) for c in ids])
    order = np.argsort(samples, kind="stable")
    sorting = sc.NumpySorting.from_samples_and_labels(
        [samples[order]], [lab[order]], float(sample_rate), unit_ids=ids
    )
    analyzer = sc.create_sorting_analyzer(
        sorting,
        rec,
        format="memory",
        sparse=True,
        main_channel_indices=peak,
        seed=seed,
        return_in_uV=True,
        job_kwargs={"n_jobs": 1, "progress_bar": False},
    )
    one = {"n_jobs": 1, "progress_bar": False}
    job = {"n_jobs": int(n_jobs), "pool_engine": "thread", "progress_bar": False}
    analyzer.compute("random_spikes", max_spikes_per_unit=int(st.max_spikes_per_unit), seed=seed)
    analyzer.compute("noise_levels", random_slices_kwargs={"seed": seed}, **job)
    analyzer.compute("templates", **one)
    analyzer.compute("spike_amplitudes", **job)
    unknown = sorted(set(st.metric_params) - set(_SI_METRICS))
    if unknown:
        raise InputError(
            None,
            f"quality metric_params name metric(s) {unknown} not computed here ({_SI_METRICS})",
        )
    params = {k: dict(v) for k, v in st.metric_params.items()}
    qm = compute_quality_metrics(
        analyzer, metric_names=_SI_METRICS, metric_params=params, seed=seed
    )
    qm.index = pd.Index([int(i) for i in qm.index], name="cluster_id")
    out = pd.DataFrame(index=qm.index)
    out["label"] = [labels[c][0] for c in out.index]
    out["peak_channel"] = [labels[c][1] for c in out.index]
    for c in METRIC_COLUMNS:
        out[c] = qm[c].to_numpy() if c in qm.columns else np.nan
    out["amplitude_median"] = np.abs(out["amplitude_median"].astype(float))
    out["num_spikes"] = out["num_spikes"].astype(int)
    out["isi_violations_count"] = out["isi_violations_count"].astype(int)
    return out.join(label_units(out[METRIC_COLUMNS].astype(float), st.thresholds, st.nan_policy))


def _probe_of(meta):
    """The probe geometry of the saved AP channels (probeinterface's reading of the meta)."""
    import warnings

    import probeinterface

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            probe = probeinterface.read_spikeglx(meta.path)
        except Exception as exc:  # probeinterface raises several types on odd metas
            raise InputError(
                meta.path, f"probeinterface cannot read the probe geometry ({exc})"
            ) from None
    if probe.get_contact_count() != meta.n_ap:
        raise InputError(
            meta.path, f"probe has {probe.get_contact_count()} contacts for {meta.n_ap} AP channels"
        )
    probe.set_device_channel_indices(np.arange(meta.n_ap))
    return probe


def read_quality_table(path: str | os.PathLike) -> pd.DataFrame:
    """A ``<session>_<probe>_quality_metrics.csv`` (index ``cluster_id``), checked for its columns."""
    try:
        df = pd.read_csv(
            path, index_col="cluster_id", keep_default_na=True, dtype={"quality_failed": str}
        )
    except (OSError, ValueError) as exc:
        raise InputError(path, f"cannot be read as a quality-metrics table ({exc})") from None
    missing = [
        c
        for c in ["label", "peak_channel", *METRIC_COLUMNS, "quality_label"]
        if c not in df.columns
    ]
    if missing:
        raise InputError(path, f"lacks column(s) {missing}")
    df["quality_failed"] = df.get("quality_failed", pd.Series("", index=df.index)).fillna("")
    return df


def manifest_with_quality(
    manifest: dict, table: pd.DataFrame, source: str, thresholds: dict
) -> dict:
    """The cluster manifest with each file's metrics and ``quality_label`` added, and a summary of
    every cluster's label (written files or not: noise and low-count clusters too)."""
    out = dict(manifest)
    files = []
    for f in manifest.get("files", []):
        f = dict(f)
        cid = int(f["cluster_id"])
        if cid in table.index:
            row = table.loc[cid]
            f["quality_label"] = str(row["quality_label"])
            f["quality_failed"] = str(row["quality_failed"])
            f["quality_metrics"] = {c: _json_number(row[c], c in _COUNTS) for c in METRIC_COLUMNS}
        files.append(f)
    out["files"] = files
    out["quality_metrics"] = {
        "table": source,
        "thresholds": thresholds,
        "good_cluster_ids": sorted(int(c) for c in table.index[table["quality_label"] == "good"]),
        "bad_cluster_ids": sorted(int(c) for c in table.index[table["quality_label"] != "good"]),
    }
    return out


_COUNTS = ("num_spikes", "isi_violations_count")


def _json_number(v, count: bool):
    v = float(v)
    if not np.isfinite(v):
        return None
    return int(v) if count else v
