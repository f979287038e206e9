"""End-to-end: E/V sync, changepoints, concatenation and spike splitting on a simulated 3-session
e-phys group (one day, one probe), against the simulator's truth."""

import json
import os
import shutil
import sys

import numpy as np
import pytest
import yaml

from .conftest import snakemake

pytestmark = pytest.mark.slow

DAY = "20250430"


def _copy(cohort3, dst, **ephys):
    shutil.copytree(cohort3, dst, symlinks=True)
    cfg_path = dst / "config.yaml"
    cfg = yaml.safe_load(cfg_path.read_text().replace(str(cohort3), str(dst)))
    cfg["stages"] = ["ephys"]
    cfg["ephys"]["spikes"] = {"min_spike_num": 3}
    for k, v in ephys.items():
        section, key = k.split("__")
        cfg.setdefault(section, {})[key] = v
    cfg_path.write_text(yaml.safe_dump(cfg))
    sids = [
        r.split("\t")[0]
        for r in (dst / "sessions.tsv").read_text().splitlines()[1:]
        if "\texperiment\t" in r
    ]
    return dst, sids


@pytest.fixture(scope="module")
def run(cohort3, tmp_path_factory):
    out, sids = _copy(cohort3, tmp_path_factory.mktemp("ephys_wf") / "cohort")
    snakemake(out, config=out / "config.yaml")
    truth = {s: json.loads((out / "truth" / s / "ground_truth.json").read_text()) for s in sids}
    return out, sids, truth


def _onsets(t):
    """Probe samples of the onsets of frames 0..N (the pulse after the last frame) from the truth."""
    tl = t["timeline"]
    clk = tl["ephys"]
    rate = t["ephys"]["rate_true"]
    on_s = tl["first_frame_s"] + np.arange(tl["n_frames_least"] + 1) / tl["fps"]
    return np.ceil((on_s - clk["start_s"]) * rate - 1e-9).astype(np.int64)


def test_ev_sync_equals_truth(run):
    out, sids, truth = run
    for s in sids:
        t = truth[s]
        ev = json.loads(
            (out / "Data" / s / "ephys" / "imec0" / f"{s}_imec0_ev_sync.json").read_text()
        )
        assert ev["passed"] and ev["problem"] is None
        assert ev["tracking_start_end"] == t["ephys"]["tracking_start_end"]
        assert ev["largest_camera_break_duration"] == t["ephys"]["largest_camera_break_duration"]
        assert ev["sample_rate"] == t["ephys"]["rate_true"]
        n = t["timeline"]["n_frames_least"]
        a, b = t["ephys"]["tracking_start_end"]
        simulated_ms = ((b - a) / t["ephys"]["rate_true"] - n / t["timeline"]["fps"]) * 1000
        assert abs(ev["duration_difference_ms"] - simulated_ms) < 0.1
        word = np.load(out / "Data" / s / "ephys" / "imec0" / f"{s}_imec0_sync_ch_data.npy")
        raw = np.memmap(t["ephys"]["bin"], dtype=np.int16, mode="r").reshape(
            -1, t["ephys"]["n_saved_chans"]
        )
        np.testing.assert_array_equal(word, raw[:, -1])
        np.testing.assert_array_equal(
            np.load(out / "Data" / s / "ephys" / "imec0" / f"{s}_imec0_frame_onsets.npy"),
            _onsets(t),
        )


def test_concatenation_and_changepoints(run):
    out, sids, truth = run
    d = out / "EPHYS" / f"{DAY}_imec0"
    joined = b"".join(open(truth[s]["ephys"]["bin"], "rb").read() for s in sids)
    assert (d / f"concatenated_{DAY}_imec0.ap.bin").read_bytes() == joined
    cp = json.loads((d / f"changepoints_info_{DAY}_imec0.json").read_text())
    assert list(cp) == [f"{s}.imec0" for s in sids]  # sheet order
    cum = 0
    for s in sids:
        e, t = cp[f"{s}.imec0"], truth[s]["ephys"]
        assert e["session_start_end"] == [cum, cum + t["n_samples"]]
        assert e["tracking_start_end"] == [cum + v for v in t["tracking_start_end"]]
        cum += t["n_samples"]


def test_split_equals_truth(run):
    out, sids, truth = run
    sorter = json.loads((out / "truth" / f"{DAY}_imec0_sorter.json").read_text())
    n_files = 0
    for i, s in enumerate(sids):
        t = truth[s]
        a, b = t["ephys"]["tracking_start_end"]
        rate, n = t["ephys"]["rate_true"], t["timeline"]["n_frames_least"]
        on = _onsets(t)
        folder = out / "Data" / s / "ephys" / "imec0" / "cluster_data"
        man = json.loads(
            (out / "Data" / s / "ephys" / "imec0" / "imec0_cluster_data_manifest.json").read_text()
        )
        assert sorted(p.name for p in folder.glob("imec*")) == sorted(
            f["file"] for f in man["files"]
        )
        expected = set()
        for u in sorter["sessions"][i]["units"]:
            x = np.asarray(u["spike_samples"])
            x = x[(x >= a) & (x < b)]
            if len(x) <= 3:
                continue
            name = f"imec0_cl{u['cluster_id']:04d}_ch{u['peak_channel']:03d}_{u['label']}.npy"
            expected.add(name)
            arr = np.load(folder / name)
            np.testing.assert_array_equal(arr[0], (x - a) / rate)
            np.testing.assert_array_equal(
                arr[1], np.argmin(np.abs(x[:, None] - on[None, :n]), axis=1)
            )
        assert {f["file"] for f in man["files"]} == expected
        n_files += len(expected)
    assert n_files >= 12


def test_rerun_leaves_json_and_concatenation_unchanged(run):
    out, sids, truth = run
    d = out / "EPHYS" / f"{DAY}_imec0"
    cp_before = (d / f"changepoints_info_{DAY}_imec0.json").read_bytes()
    bin_before = (d / f"concatenated_{DAY}_imec0.ap.bin").read_bytes()
    meta_before = (d / f"concatenated_{DAY}_imec0.ap.meta").read_bytes()
    snakemake(
        out, "--forcerun", "ephys_concatenate", "ephys_changepoints", config=out / "config.yaml"
    )
    assert (d / f"changepoints_info_{DAY}_imec0.json").read_bytes() == cp_before
    assert (d / f"concatenated_{DAY}_imec0.ap.bin").read_bytes() == bin_before
    assert (d / f"concatenated_{DAY}_imec0.ap.meta").read_bytes() == meta_before
    assert b"NaN" not in cp_before


def test_without_sorter_output_no_split_is_planned(cohort3, tmp_path):
    out, sids = _copy(cohort3, tmp_path / "c")
    shutil.rmtree(out / "EPHYS" / f"{DAY}_imec0" / "kilosort4")
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    cfg["ephys_root"] = None  # derived: <base>/Data/<session> -> <base>/EPHYS
    (out / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(out, "-n", config=out / "config.yaml")
    assert f"{out}/EPHYS/{DAY}_imec0/concatenated_{DAY}_imec0.ap.bin" in proc.stdout
    assert "ephys_split_spikes" not in proc.stdout
    assert "ephys_concatenate" in proc.stdout and "ev_sync_check" in proc.stdout
    assert "no sorter output" in proc.stderr


def test_failed_check_is_recorded_or_fatal(cohort3, tmp_path):
    hs = "23280196"
    out, sids = _copy(cohort3, tmp_path / "c", ephys__calibrated_sample_rates={hs: 29500.0})
    s = sids[0]
    manifest = out / "Data" / s / "ephys" / "imec0" / "imec0_cluster_data_manifest.json"
    snakemake(out, str(manifest), config=out / "config.yaml")
    ev = json.loads((out / "Data" / s / "ephys" / "imec0" / f"{s}_imec0_ev_sync.json").read_text())
    assert not ev["passed"] and "tolerance" in ev["problem"] and ev["duration_difference_ms"] > 12
    cp = json.loads(
        (out / "EPHYS" / f"{DAY}_imec0" / f"changepoints_info_{DAY}_imec0.json").read_text()
    )
    assert cp[f"{s}.imec0"]["tracking_start_end"] is None and not cp[f"{s}.imec0"]["ev_sync_passed"]
    man = json.loads(manifest.read_text())
    assert man["files"] == [] and "E/V check" in man["skipped"]
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    cfg.setdefault("sync", {})["fail_on_mismatch"] = True
    (out / "config.yaml").write_text(yaml.safe_dump(cfg))
    ev_path = out / "Data" / s / "ephys" / "imec0" / f"{s}_imec0_ev_sync.json"
    proc = snakemake(
        out, str(ev_path), "--forcerun", "ev_sync_check", config=out / "config.yaml", check=False
    )
    assert proc.returncode != 0
    log = (out / "Data" / s / "logs" / f"ev_sync_check_{s}_imec0.log").read_text()
    assert "E/V sync FAILED" in log and "tolerance" in log


FAKE_KILOSORT = '''
"""Stand-in for the kilosort package: checks the call, then copies a prepared sorter output."""
import json, os, shutil
from pathlib import Path


def run_kilosort(settings, probe, results_dir, data_dtype):
    src = Path(os.environ["FAKE_KS_SOURCE"])
    call = {"settings": settings, "n_chan": int(probe["n_chan"]), "results_dir": results_dir, "dtype": data_dtype}
    assert Path(settings["filename"]).is_file()
    for f in src.iterdir():
        shutil.copy(f, Path(results_dir) / f.name)
    (Path(results_dir) / "call.json").write_text(json.dumps(call))
'''


def test_kilosort_rule_and_phase_shift(cohort3, tmp_path, monkeypatch):
    """Kilosort4 (a stand-in package, run through a stand-in `conda run -n kilosort`, as without
    --sdm conda) sorts the concatenation of the phase-shifted copies."""
    import hashlib

    out, sids = _copy(
        cohort3, tmp_path / "c", ephys__sorting={"run": True}, sync__ev={"apply_phase_shift": True}
    )
    ks = out / "EPHYS" / f"{DAY}_imec0" / "kilosort4"
    src = tmp_path / "prepared"
    shutil.move(ks, src)
    (src / "cluster_info.tsv").unlink()  # a fresh sort: no Phy curation yet
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "kilosort.py").write_text(FAKE_KILOSORT)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    conda = (
        bindir / "conda"
    )  # conda run --no-capture-output -n ENV python -m usvflow.ephys.kilosort ...
    conda.write_text(f'#!/bin/sh\necho "$4" > {tmp_path}/conda_env.txt\nshift 5\n'
                     f'PYTHONPATH="{fake}:$PYTHONPATH" exec {sys.executable} "$@"\n')  # fmt: skip
    conda.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_KS_SOURCE", str(src))
    dry = snakemake(out, "-n", config=out / "config.yaml")
    assert "rule kilosort4:" in dry.stdout and "gpu=1" in dry.stdout.replace(" ", "")
    snakemake(out, config=out / "config.yaml")
    assert (tmp_path / "conda_env.txt").read_text().strip() == "kilosort"  # ephys.sorting.conda_env
    call = json.loads((ks / "call.json").read_text())
    truth = json.loads((out / "truth" / sids[0] / "ground_truth.json").read_text())["ephys"]
    assert call["settings"]["fs"] == truth["rate_true"]  # the calibrated rate
    assert (
        call["settings"]["n_chan_bin"] == truth["n_saved_chans"]
        and call["n_chan"] == truth["n_saved_chans"] - 1
    )
    assert call["settings"]["filename"].endswith(f"concatenated_{DAY}_imec0.ap.bin")
    man = json.loads(
        (
            out / "Data" / sids[0] / "ephys" / "imec0" / "imec0_cluster_data_manifest.json"
        ).read_text()
    )
    assert man["labels_from"] == "cluster_group.tsv" and man["files"]  # Kilosort's labels

    parts = []
    for s in sids:
        t = json.loads((out / "truth" / s / "ground_truth.json").read_text())["ephys"]
        raw = open(t["bin"], "rb").read()
        sha = [v for v in open(t["meta"]).read().splitlines() if v.startswith("fileSHA1=")][
            0
        ].split("=")[1]
        assert (
            hashlib.sha1(raw).hexdigest().upper() == sha
        )  # the raw file is exactly what the simulator wrote
        shifted = out / "Data" / s / "ephys" / "imec0" / f"{s}.imec0.ap_phase_shifted.bin"
        y = np.fromfile(shifted, np.int16).reshape(-1, t["n_saved_chans"])
        x = np.frombuffer(raw, np.int16).reshape(-1, t["n_saved_chans"])
        np.testing.assert_array_equal(y[:, -1], x[:, -1])  # sync word bit-exact
        assert np.any(y[:, 2] != x[:, 2])  # channel 2 is sampled 1/13 sample late: corrected
        parts.append(shifted.read_bytes())
    assert (
        out / "EPHYS" / f"{DAY}_imec0" / f"concatenated_{DAY}_imec0.ap.bin"
    ).read_bytes() == b"".join(parts)
