"""ADC phase-shift correction: shifts of each probe family, delay accuracy, chunking, raw untouched."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from usvflow.ephys.phase_shift import adc_sample_shifts, phase_shift_copy
from usvflow.io.atomic import InputError
from usvflow.io.spikeglx import read_meta, write_meta

REAL = Path(__file__).resolve().parents[1] / "data" / "spikeglx"


def _meta(name):
    return REAL / name


def test_shifts_of_each_probe_family():
    s1 = adc_sample_shifts(_meta("Noise_g0_t0.imec0.ap.meta"))
    assert len(s1) == 384 and s1[0] == s1[1] == 0
    assert s1[2] == pytest.approx(1 / 13) and s1[22] == pytest.approx(11 / 13) and s1[24] == 0
    assert np.bincount((s1 * 13).round().astype(int)).tolist() == [32] * 12  # 32 ADCs x 12 channels
    sub = adc_sample_shifts(_meta("NP1_saved_only_subset_of_channels.meta"))
    np.testing.assert_array_equal(sub, s1[:151])
    s2 = adc_sample_shifts(_meta("p2_g0_t0.imec0.ap.meta"))
    assert len(s2) == 384 and s2[30] == pytest.approx(15 / 16) and s2[32] == 0
    assert np.bincount((s2 * 16).round().astype(int)).tolist() == [24] * 16


def _recording(tmp_path, n=20000, nch_ap=30, seed=0):
    """Band-limited signals sampled at each channel's ADC delay; last column a sync word."""
    raw = read_meta(_meta("Noise_g0_t0.imec0.ap.meta"))
    raw.update(nSavedChans=str(nch_ap + 1), snsApLfSy=f"{nch_ap},0,1", snsSaveChanSubset=f"0:{nch_ap - 1},768",
               fileSizeBytes=str(n * (nch_ap + 1) * 2))  # fmt: skip
    meta = tmp_path / "r.imec0.ap.meta"
    write_meta(meta, raw)
    shifts = adc_sample_shifts(meta)
    rng = np.random.default_rng(seed)
    freqs = rng.uniform(100, 5000, 6) / 30000.0  # cycles per sample
    phases = rng.uniform(0, 2 * np.pi, 6)
    t = np.arange(n)[:, None]

    def sig(tt):
        return sum(800 * np.sin(2 * np.pi * f * tt + p) for f, p in zip(freqs, phases))

    data = np.empty((n, nch_ap + 1), np.int16)
    data[:, :nch_ap] = np.rint(sig(t + shifts[None, :]))  # channel c sampled s_c later
    data[:, -1] = rng.integers(0, 2, n) << 6
    b = tmp_path / "r.imec0.ap.bin"
    data.tofile(b)
    return b, meta, np.rint(sig(t)).astype(np.int16), data


def test_correction_aligns_channels(tmp_path):
    b, meta, truth, data = _recording(tmp_path)
    sha = hashlib.sha1(b.read_bytes()).hexdigest()
    out = tmp_path / "r.imec0.ap_phase_shifted.bin"
    res = phase_shift_copy(b, meta, out, out.with_suffix(".meta"), chunk=3000, margin=1500)
    y = np.fromfile(out, np.int16).reshape(data.shape)
    inner = slice(500, -500)
    err_before = np.abs(data[inner, :-1].astype(int) - truth[inner]).max()
    err_after = np.abs(y[inner, :-1].astype(int) - truth[inner]).max()
    assert err_before > 100 and err_after <= 3  # from >100 LSB to rounding level
    np.testing.assert_array_equal(y[:, -1], data[:, -1])  # sync word bit-exact
    np.testing.assert_array_equal(y[:, 0], data[:, 0])  # shift 0: unchanged up to rounding
    assert hashlib.sha1(b.read_bytes()).hexdigest() == sha  # raw untouched
    whole = tmp_path / "whole.bin"
    phase_shift_copy(b, meta, whole, tmp_path / "whole.meta", chunk=10**9)
    z = np.fromfile(whole, np.int16).reshape(data.shape)
    assert np.abs(z[inner].astype(int) - y[inner]).max() <= 1
    assert (
        res["n_ap_shifted"] == 30
        and read_meta(out.with_suffix(".meta"))["usvflowPhaseShift"] == "true"
    )


def test_threads_give_the_same_file(tmp_path):
    """Chunks shifted on several threads (a short last chunk included) give the serial file byte
    for byte."""
    b, meta, _, _ = _recording(tmp_path, n=10500)
    outs = []
    for workers in (1, 3):
        out = tmp_path / f"w{workers}.bin"
        phase_shift_copy(
            b,
            meta,
            out,
            tmp_path / f"w{workers}.meta",
            chunk=2000,
            margin=700,
            workers=workers,
        )
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] and len(outs[0]) == b.stat().st_size


def test_refuses_to_overwrite_raw(tmp_path):
    b, meta, _, _ = _recording(tmp_path, n=1000)
    with pytest.raises(InputError, match="raw"):
        phase_shift_copy(b, meta, b, meta)


def test_kilosort_call_with_a_stand_in(tmp_path, monkeypatch):
    """run_kilosort4 passes the file, channel count, calibrated rate and probe of the meta."""
    import sys
    import types

    from usvflow.ephys.kilosort import KILOSORT_SETTINGS, probe_from_meta, run_kilosort4

    b, meta, _, _ = _recording(tmp_path, n=1000)
    calls = []

    def run_kilosort(settings, probe, results_dir, data_dtype):
        calls.append((settings, probe, results_dir, data_dtype))

    monkeypatch.setitem(sys.modules, "kilosort", types.SimpleNamespace(run_kilosort=run_kilosort))
    with pytest.raises(InputError, match="without writing spike_times.npy"):
        run_kilosort4(b, meta, tmp_path / "ks", 30000.25)
    settings, probe, results_dir, dtype = calls[0]
    assert (
        settings["n_chan_bin"] == 31
        and settings["fs"] == 30000.25
        and settings["filename"] == str(b)
    )
    assert {k: settings[k] for k in KILOSORT_SETTINGS} == KILOSORT_SETTINGS and dtype == "int16"
    assert probe["n_chan"] == 30 and np.array_equal(probe["yc"], probe_from_meta(meta)["yc"])
    assert probe["yc"].max() == 14 * 20.0  # NP1.0: 2 channels per 20 um row


@pytest.mark.parametrize(
    "name",
    [
        "Noise_g0_t0.imec0.ap.meta",
        "NP1_saved_only_subset_of_channels.meta",
        "p2_g0_t0.imec0.ap.meta",
    ],
)
def test_equals_spikeinterface_on_the_real_layouts(tmp_path, name):
    """The chunked copy equals SpikeInterface's whole-recording phase_shift, with the delays that
    probeinterface reads from the same meta, within 1 LSB on every sample (file ends included)."""
    import warnings

    import probeinterface
    import spikeinterface.core as sc
    from spikeinterface.extractors.neuropixels_utils import (
        get_neuropixels_sample_shifts_from_probe,
    )
    from spikeinterface.preprocessing import phase_shift

    raw = read_meta(_meta(name))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probe = probeinterface.read_spikeglx(_meta(name))
    ref_shifts = get_neuropixels_sample_shifts_from_probe(probe)
    n_ap = len(ref_shifts)
    np.testing.assert_array_equal(adc_sample_shifts(_meta(name)), ref_shifts)  # same layout
    n = 9000
    nsaved = int(raw["nSavedChans"])
    raw["fileSizeBytes"] = str(n * nsaved * 2)
    meta = tmp_path / "r.imec0.ap.meta"
    write_meta(meta, raw)
    rng = np.random.default_rng(1)
    x = np.cumsum(rng.normal(0, 40, (n, n_ap)), axis=0)  # brown noise + spikes near full scale
    x -= x.mean(axis=0)
    x[rng.integers(0, n, 40), rng.integers(0, n_ap, 40)] -= 2000
    data = np.zeros((n, nsaved), np.int16)
    data[:, :n_ap] = np.clip(np.rint(x), -30000, 30000)
    data[:, n_ap:] = rng.integers(0, 2, (n, nsaved - n_ap)) << 6
    b = tmp_path / "r.imec0.ap.bin"
    data.tofile(b)
    out = tmp_path / "o.bin"
    phase_shift_copy(b, meta, out, tmp_path / "o.meta", chunk=2500, margin=1200)
    y = np.fromfile(out, np.int16).reshape(n, nsaved)
    rec = sc.NumpyRecording(data[:, :n_ap].astype(np.float64), float(raw["imSampRate"]))
    ref = phase_shift(rec, inter_sample_shift=ref_shifts, margin_ms=40.0).get_traces()
    diff = np.abs(y[:, :n_ap].astype(np.int64) - np.rint(ref).astype(np.int64))
    assert diff.max() <= 1, f"{name}: max |ours - SpikeInterface| = {diff.max()} LSB"
    np.testing.assert_array_equal(y[:, n_ap:], data[:, n_ap:])  # sync word bit-exact
    assert np.abs(y[:, :n_ap].astype(int) - data[:, :n_ap]).max() > 50  # it did shift
