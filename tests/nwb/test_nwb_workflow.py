"""End-to-end: every stage on a simulated session, then rule export_nwb. The NWB file is validated
with nwbinspector and dandi, and read back with pynwb against our CSV/HDF5/NPY products and the
simulator's truth (times within one sample of the session clock)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml

from tests.workflow.conftest import snakemake

pytestmark = pytest.mark.slow

SMALL = {"n_fft": 256, "n_freq": 32, "n_time": 32}
STAGES = ["video", "audio", "usv", "sync", "ephys", "pose", "assignment", "calltypes", "nwb"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from usvflow.cli import main
    from usvflow.simulate.cohort import simulate_cohort

    out = tmp_path_factory.mktemp("nwb_cohort")
    simulate_cohort(out, sessions=1, seconds=4.0, seed=0, pose=True)  # the demo's cohort
    data = out / "calltype_data"
    args = [f"--{k.replace('_', '-')}={v}" for k, v in SMALL.items()]
    assert (
        main(
            [
                "export-spectrograms",
                "--simulate",
                "20",
                "--dataset-dir",
                str(data),
                "--seed",
                "5",
                *args,
            ]
        )
        == 0
    )
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    cfg["stages"] = STAGES
    cfg["pose"] = {"use_unproofread": True}
    cfg["call_types"] = {
        "model_dir": str(out / "calltype_model"),
        "spectrogram": SMALL,
        "train": {
            "data_dir": str(data),
            "max_epochs": 2,
            "patience": 2,
            "batch_size": 16,
            "device": "cpu",
        },
        "device": "cpu",
    }
    cfg["ephys"]["spikes"] = {"min_spike_num": 3}
    cfg["ephys"]["quality_metrics"] = {
        "metric_params": {"presence_ratio": {"bin_duration_s": 0.5}},
        "thresholds": {"snr": {"greater": 3}, "presence_ratio": {"greater": 0.5}},
    }
    cfg["nwb"] = {
        "subject_age": "P90D",
        "probe_locations": {"imec0": "CA1"},
        "institution": "Simulated lab",
        "experimenter": ["Doe, Jane"],
    }
    (out / "config.yaml").write_text(yaml.safe_dump(cfg))
    snakemake(out, config=out / "config.yaml")
    sheet = pd.read_csv(out / "sessions.tsv", sep="\t", dtype=str)
    sid = sheet.loc[sheet["kind"] == "experiment", "session_id"].iloc[0]
    cal = sheet.loc[sheet["kind"] == "calibration", "session_id"].iloc[0]
    truth = json.loads((out / "truth" / sid / "ground_truth.json").read_text())
    return out, sid, cal, truth


@pytest.fixture(scope="module")
def nwb(run):
    from pynwb import NWBHDF5IO

    out, sid, _, _ = run
    path = out / "Data" / sid / "nwb" / f"{sid}.nwb"
    io = NWBHDF5IO(str(path), "r")
    yield path, io.read()
    io.close()


def test_nwbinspector_finds_nothing_serious(nwb):
    from nwbinspector import Importance, inspect_nwbfile

    path, _ = nwb
    msgs = list(inspect_nwbfile(nwbfile_path=str(path)))
    serious = [
        m for m in msgs if m.importance in (Importance.CRITICAL, Importance.BEST_PRACTICE_VIOLATION)
    ]
    assert not serious, [
        f"{m.importance.name} {m.check_function_name}: {m.message}" for m in serious
    ]


def test_dandi_validate_passes(nwb, tmp_path):
    path, _ = nwb
    dandi = Path(sys.executable).with_name("dandi")
    ds = tmp_path / "dandiset"
    ds.mkdir()
    (ds / "dandiset.yaml").write_text(
        "identifier: DANDI:000000\nname: usvflow test\ndescription: simulated\n"
    )
    env = {"HOME": str(tmp_path), "PATH": str(dandi.parent) + ":/usr/bin:/bin", "DANDI_NO_ET": "1"}
    org = subprocess.run(
        [str(dandi), "organize", "-d", str(ds), "--files-mode", "copy", str(path)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert org.returncode == 0, org.stdout + org.stderr
    assert len(list(ds.glob("sub-*/*.nwb"))) == 1
    val = subprocess.run([str(dandi), "validate", str(ds)], capture_output=True, text=True, env=env)
    assert val.returncode == 0 and "No errors found" in val.stdout, val.stdout + val.stderr


def test_usv_table_equals_the_csv_products(run, nwb):
    out, sid, _, _ = run
    _, f = nwb
    audio = out / "Data" / sid / "audio"
    got = f.intervals["usvs"].to_dataframe().reset_index(drop=True)
    ct = pd.read_csv(audio / f"{sid}_usv_summary_call_types.csv", dtype={"usv_id": str})
    asg = pd.read_csv(
        audio / f"{sid}_usv_summary_assigned.csv", dtype={"usv_id": str, "emitter": str}
    )
    est = pd.read_csv(
        audio / "sound_localization" / f"{sid}_source_estimates.csv", dtype={"usv_id": str}
    )
    assert len(ct) > 5 and len(got) == len(ct)
    ct = ct.sort_values("start", kind="stable").reset_index(drop=True)
    assert got["usv_id"].tolist() == ct["usv_id"].tolist()
    np.testing.assert_array_equal(got["start_time"], ct["start"])  # same seconds: the session clock
    np.testing.assert_array_equal(got["stop_time"], ct["stop"])
    assert got["call_type"].tolist() == ct["call_type"].tolist()
    np.testing.assert_array_equal(got["call_type_prob"], ct["call_type_prob"])
    for col in ("peak_freq_hz", "mean_freq_hz", "snr_db", "max_amplitude"):
        np.testing.assert_array_equal(got[col], ct[col])
    em = asg.set_index("usv_id")["emitter"].fillna("")
    assert got["emitter"].tolist() == [em[u] for u in got["usv_id"]]
    assert (got["emitter"] != "").sum() > 0
    e = est.set_index("usv_id")
    np.testing.assert_array_equal(
        got["emitter_confidence"], [e.loc[u, "confidence"] for u in got["usv_id"]]
    )
    np.testing.assert_array_equal(got["source_x_m"], [e.loc[u, "x_m"] for u in got["usv_id"]])


def test_poses_and_cameras_equal_the_hdf5_products(run, nwb):
    out, sid, cal, truth = run
    _, f = nwb
    metric = next(
        (out / "Data" / sid / "video").glob("[0-9]*/*_points3d_translated_rotated_metric.h5")
    )
    dj = metric.parent.name
    with h5py.File(metric, "r") as h:
        tracks = h["tracks"][()]
        nodes = [s.decode() for s in h["node_names"][()]]
        animals = [s.decode() for s in h["track_names"][()]]
    pulses = np.loadtxt(
        out / "Data" / sid / "sync" / "m_video_frames_in_audio_samples.txt", dtype=np.int64
    )
    beh = f.processing["behavior"]
    for a, animal in enumerate(animals):
        pe = beh[f"pose_{animal}"]
        for n, node in enumerate(nodes):
            s = pe.pose_estimation_series[node]
            assert s.unit == "meters"
            np.testing.assert_array_equal(s.data[:], tracks[:, a, n, :])
        ts = pe.pose_estimation_series[nodes[0]].timestamps[:]
        np.testing.assert_array_equal(ts, (pulses[: len(ts)] - pulses[0]) / 250000.0)
    # frame k's true time from the session's first frame (k / fps), within one audio sample
    assert np.abs(ts - np.arange(len(ts)) / truth["timeline"]["fps"]).max() <= 1 / 250000.0 + 1e-12
    # cameras: the calibration, re-expressed in the arena frame; each camera projects the arena
    # centre in front of it
    cams = [d for d in f.devices.values() if type(d).__name__ == "CalibratedCamera"]
    assert len(cams) == 5
    for c in cams:
        centre = -np.asarray(c.rotation_matrix).T @ np.asarray(c.translation_vector)
        assert centre[2] > 0.1  # above the floor, in metres
    mics = f.processing["audio"]["microphones"].to_dataframe()
    arena = next(
        (out / "Data" / cal / "video").glob("[0-9]*/*_points3d_translated_rotated_metric.h5")
    )
    with h5py.File(arena, "r") as h:
        pts, names = h["tracks"][0, 0], [s.decode() for s in h["node_names"][()]]
    assert len(mics) == 24
    for _, r in mics.iterrows():
        np.testing.assert_array_equal([r.x_m, r.y_m, r.z_m], pts[names.index(r.node)])
    assert mics["channel"].iloc[0] == "m_ch01" and mics["channel"].iloc[12] == "s_ch01"
    assert dj


def test_spike_times_equal_the_npy_products_and_the_truth(run, nwb):
    out, sid, _, truth = run
    _, f = nwb
    units = f.units.to_dataframe()
    d = out / "Data" / sid / "ephys" / "imec0"
    manifest = json.loads((d / "imec0_cluster_data_manifest.json").read_text())
    q = pd.read_csv(d / f"{sid}_imec0_quality_metrics.csv", index_col="cluster_id")
    assert len(units) == len(manifest["files"]) > 3
    sorter = json.loads(next((out / "truth").glob("*_imec0_sorter.json")).read_text())
    unit_of = {c["cluster_id"]: c["unit_id"] for c in sorter["clusters"]}
    rate, (a, _) = truth["ephys"]["rate_true"], truth["ephys"]["tracking_start_end"]
    true = {u["id"]: np.asarray(u["spike_samples"]) for u in truth["ephys"]["units"]}
    for _, u in units.iterrows():
        arr = np.load(d / "cluster_data" / u["cluster_file"])
        np.testing.assert_array_equal(u["spike_times"], arr[0])
        assert u["quality_label"] == q.loc[u["cluster_id"], "quality_label"]
        np.testing.assert_allclose(u["snr"], q.loc[u["cluster_id"], "snr"], rtol=1e-5)
        # the session clock: every spike within one probe sample of its true time from the tracking start
        t_true = (true[unit_of[u["cluster_id"]]] - a) / rate
        near = np.abs(u["spike_times"][:, None] - t_true[None, :]).min(axis=1)
        assert near.max() <= 1.0 / rate + 1e-9
        el = u["electrodes"]
        assert int(el["probe_channel"].iloc[0]) == u["peak_channel"]
    e = f.electrodes.to_dataframe()
    assert len(e) == 32 and set(e["location"]) == {"CA1"}
    assert e["rel_y"].max() > e["rel_y"].min()  # geometry from the .meta
    sync = f.processing["sync"]["sync_checks"].to_dataframe().set_index("stream")
    av = json.loads((out / "Data" / sid / "sync" / f"{sid}_av_sync.json").read_text())
    ev = json.loads((d / f"{sid}_imec0_ev_sync.json").read_text())
    assert (
        sync.loc["audio device m", "passed"] == av["passed"]
        and sync.loc["imec0", "passed"] == ev["passed"]
    )
    assert sync.loc["imec0", "discrepancy_ms"] == ev["duration_difference_ms"]
    # the demo cohort's clocks agree; its 4 s hold too few IPIs for an A/V pass
    assert av["verdict"] == "insufficient" and ev["passed"]


def test_session_metadata(run, nwb):
    _, sid, _, _ = run
    _, f = nwb
    assert f.session_id == sid
    assert "electrophysiology; 2 animals; male; female" in f.session_description
    assert f.subject.subject_id == "animal_0-animal_1" and f.subject.age == "P90D"
    assert f.session_start_time.strftime("%Y%m%d%H%M%S") == next(
        p.name for p in (run[0] / "Data" / sid / "video").glob("[0-9]" * 14)
    )


def test_cli_writes_the_same_content(run, nwb, tmp_path):
    from pynwb import NWBHDF5IO

    from usvflow.cli import main

    out, sid, cal, _ = run
    _, f = nwb
    dst = tmp_path / "cli.nwb"
    assert main(
        [
            "to-nwb",
            str(out / "Data" / sid),
            "--calibration",
            str(out / "Data" / cal),
            "-o",
            str(dst),
            "--config",
            str(out / "config.yaml"),
            "--experimental-code",
            "E2MF",
        ]
    ) in (0, None)
    with NWBHDF5IO(str(dst), "r") as io:
        g = io.read()
        pd.testing.assert_frame_equal(
            g.intervals["usvs"].to_dataframe(), f.intervals["usvs"].to_dataframe()
        )
        a, b = g.units.to_dataframe(), f.units.to_dataframe()
        assert a["cluster_id"].tolist() == b["cluster_id"].tolist()
        for x, y in zip(a["spike_times"], b["spike_times"]):
            np.testing.assert_array_equal(x, y)
        assert sorted(g.processing["behavior"].data_interfaces) == sorted(
            f.processing["behavior"].data_interfaces
        )
    shutil.rmtree(tmp_path, ignore_errors=True)
