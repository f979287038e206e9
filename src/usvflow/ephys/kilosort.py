"""Kilosort4 on a concatenated recording: the probe geometry from the SpikeGLX meta and the run.

:func:`probe_from_meta` builds Kilosort's probe dict (``chanMap``, ``xc``, ``yc``, ``kcoords``,
``n_chan``) for the saved AP channels of a ``.ap.meta``: from ``~snsGeomMap`` (``shank:x:z:use``, um)
when SpikeGLX wrote one, else from ``~snsShankMap`` (``shank:col:row:use``) with the probe family's
pitches (NP1.0: 32 um columns, 20 um rows, staggered; NP2.0: 32 um columns, 15 um rows, 250 um
shanks). :func:`run_kilosort4` calls ``kilosort.run_kilosort`` (imported only there: it lives in its own
GPU environment, ``workflow/envs/kilosort.yaml``) with the reference settings of the original lab
(``other/kilosort/run_kilosort.py``: batch 60000, nblocks 1, Th_universal 9, Th_learned 8,
highpass 300 Hz, duplicate_spike_ms 0.25) and the headstage's calibrated rate.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from usvflow.io.atomic import InputError
from usvflow.io.spikeglx import SpikeGLXMeta, parse_meta

__all__ = ["KILOSORT_SETTINGS", "probe_from_meta", "run_kilosort4"]

KILOSORT_SETTINGS = {
    "batch_size": 60000,
    "nblocks": 1,
    "Th_universal": 9,
    "Th_learned": 8,
    "highpass_cutoff": 300,
    "duplicate_spike_ms": 0.25,
}


def _entries(table: str) -> list[list[str]]:
    parts = re.findall(r"\(([^()]*)\)", table)
    return [p.split(":") for p in parts[1:]]  # the first group is the header


def probe_from_meta(meta: SpikeGLXMeta | str | os.PathLike) -> dict:
    """Kilosort probe dict of the saved AP channels (the sync column is not part of it)."""
    meta = meta if isinstance(meta, SpikeGLXMeta) else parse_meta(meta)
    n_ap = meta.n_ap
    if n_ap < 1:
        raise InputError(meta.path, "no AP channels saved (snsApLfSy)")
    geom = meta.raw.get("~snsGeomMap")
    shank = meta.raw.get("~snsShankMap")
    if geom:
        e = _entries(geom)
        xs = [float(v[1]) for v in e]
        ys = [float(v[2]) for v in e]
        ks = [int(v[0]) for v in e]
        pitch = 250.0
        xs = [x + k * pitch for x, k in zip(xs, ks)]
    elif shank:
        e = _entries(shank)
        ks = [int(v[0]) for v in e]
        cols = [int(v[1]) for v in e]
        rows = [int(v[2]) for v in e]
        if meta.probe_type in (None, 0):  # NP1.0 and phase 3: staggered columns
            xs = [c * 32.0 + (27.0 if r % 2 == 0 else 11.0) for c, r in zip(cols, rows)]
            ys = [r * 20.0 for r in rows]
        else:  # NP2.0 single and multi shank
            xs = [k * 250.0 + c * 32.0 for k, c in zip(ks, cols)]
            ys = [r * 15.0 for r in rows]
    else:
        raise InputError(
            meta.path, "neither ~snsGeomMap nor ~snsShankMap: cannot place the channels"
        )
    if len(xs) < n_ap:
        raise InputError(
            meta.path, f"geometry table has {len(xs)} entries for {n_ap} saved AP channels"
        )
    xs, ys, ks = xs[:n_ap], ys[:n_ap], ks[:n_ap]
    return {
        "chanMap": np.arange(n_ap, dtype=np.int32),
        "xc": np.asarray(xs, dtype=np.float32),
        "yc": np.asarray(ys, dtype=np.float32),
        "kcoords": np.asarray(ks, dtype=np.float32),
        "n_chan": n_ap,
    }


def run_kilosort4(
    bin_path: str | os.PathLike,
    meta_path: str | os.PathLike,
    results_dir: str | os.PathLike,
    sample_rate: float,
    settings: dict | None = None,
    device: str | None = None,
) -> Path:
    """Sort ``bin_path`` with Kilosort4 into ``results_dir``; returns it.

    Raises :class:`InputError` when Kilosort finishes without ``spike_times.npy``.
    """
    import kilosort

    meta = parse_meta(meta_path)
    probe = probe_from_meta(meta)
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    st = dict(KILOSORT_SETTINGS)
    st.update(settings or {})
    st.update(
        {"n_chan_bin": meta.n_saved_chans, "fs": float(sample_rate), "filename": str(bin_path)}
    )
    kwargs = {
        "settings": st,
        "probe": probe,
        "results_dir": str(results_dir),
        "data_dtype": "int16",
    }
    if device is not None:
        import torch

        kwargs["device"] = torch.device(device)
    kilosort.run_kilosort(**kwargs)
    if not (results_dir / "spike_times.npy").is_file():
        raise InputError(results_dir, "Kilosort4 finished without writing spike_times.npy")
    return results_dir


def main(argv=None) -> int:
    """``python -m usvflow.ephys.kilosort BIN META RESULTS_DIR RATE``: run in another (conda) env."""
    import argparse

    p = argparse.ArgumentParser(
        prog="python -m usvflow.ephys.kilosort", description=run_kilosort4.__doc__
    )
    p.add_argument("bin")
    p.add_argument("meta")
    p.add_argument("results_dir")
    p.add_argument("sample_rate", type=float)
    a = p.parse_args(argv)
    run_kilosort4(a.bin, a.meta, a.results_dir, a.sample_rate)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
