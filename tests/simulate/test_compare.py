"""usvflow compare-truth: a cohort's products against the simulator's truth, on a hand-made cohort whose
answers are known (no workflow run)."""

import json

import h5py
import numpy as np
import pytest

from usvflow.cli import main
from usvflow.simulate.compare import compare_truth, format_comparison

SID = "20250430_145017"
DJ = "20250430145035"


def _cohort(tmp_path):
    (tmp_path / "sessions.tsv").write_text(
        "session_id\tfolder\tkind\n20250430_142017\tData/cal\tcalibration\n"
        f"{SID}\tData/{SID}\texperiment\n"
    )
    calls = [  # (start, stop, emitter, type); the last one lies outside the video window
        (0.10, 0.15, "animal_0", "flat"),
        (0.30, 0.36, "animal_1", "trill"),
        (0.50, 0.55, "animal_0", "step"),
        (0.70, 0.72, "animal_1", "flat"),
        (-1.0, -0.9, "animal_0", "flat"),
    ]
    usvs = [{"t_start_video_s": a, "t_stop_video_s": b, "emitter": e, "type": t,
             "outside_video": a < 0} for a, b, e, t in calls]  # fmt: skip
    truth_dir = tmp_path / "truth" / SID
    truth_dir.mkdir(parents=True)
    rng = np.random.default_rng(0)
    pts = rng.uniform(-0.3, 0.3, (20, 2, 3, 3))
    np.savez(truth_dir / "pose_truth.npz", points3d=pts, track_names=["animal_0", "animal_1"],
             node_names=["a", "b", "c"])  # fmt: skip
    truth = {
        "audio": {"usvs": usvs},
        "video": {"date_joint": DJ},
        "pose": {"truth_file": str(truth_dir / "pose_truth.npz")},
        "ephys": {"units": [{"id": k} for k in range(5)]},
    }
    (truth_dir / "ground_truth.json").write_text(json.dumps(truth))

    s = tmp_path / "Data" / SID
    (s / "audio").mkdir(parents=True)
    # 3 of the 4 calls found (onsets 2 ms late), one false detection
    (s / "audio" / f"{SID}_usv_summary.csv").write_text(
        "usv_id,start,stop\n0000,0.102,0.15\n0001,0.302,0.36\n0002,0.502,0.55\n0003,0.90,0.95\n"
    )
    (s / "audio" / f"{SID}_usv_summary_assigned.csv").write_text(
        "usv_id,start,stop,emitter\n0000,0.102,0.15,animal_0\n0001,0.302,0.36,animal_0\n"
        "0002,0.502,0.55,\n0003,0.90,0.95,animal_1\n"
    )
    (s / "audio" / f"{SID}_usv_summary_call_types.csv").write_text(
        "usv_id,call_type\n0000,flat\n0001,trill\n0002,none\n0003,flat\n"
    )
    (s / "video").mkdir()
    with h5py.File(s / "video" / f"{DJ}_points3d_translated_rotated_metric.h5", "w") as h:
        est = pts[:, ::-1].copy()  # stored in the other track order
        est[..., 0] += 0.003  # 3 mm off
        est[0] = np.nan
        h["tracks"] = est
        h["track_names"] = np.array([b"animal_1", b"animal_0"])
    (s / "sync").mkdir()
    (s / "sync" / f"{SID}_av_sync.json").write_text(json.dumps({"verdict": "insufficient"}))
    (s / "ephys" / "imec0").mkdir(parents=True)
    (s / "ephys" / "imec0" / f"{SID}_imec0_ev_sync.json").write_text(json.dumps({"passed": True}))
    (s / "ephys" / "imec0" / "imec0_cluster_data_manifest.json").write_text(
        json.dumps({"files": [{"file": f"u{k}.npy"} for k in range(4)]})
    )
    return tmp_path


def test_compare_truth_on_known_answers(tmp_path, capsys):
    cohort = _cohort(tmp_path)
    (row,) = compare_truth(cohort)  # the calibration session has no truth: not listed
    assert row["session"] == SID
    assert (row["usv_true"], row["usv_detected"], row["usv_matched"]) == (4, 4, 3)
    assert row["precision"] == pytest.approx(0.75) and row["recall"] == pytest.approx(0.75)
    assert row["onset_error_ms"] == pytest.approx(2.0)
    assert row["emitter_correct_pct"] == pytest.approx(100 / 3)  # wrong, unassigned, right
    assert row["call_type_accuracy_pct"] == pytest.approx(200 / 3)  # "none" counts as wrong
    assert row["pose_error_mm"] == pytest.approx(3.0)  # tracks matched by name, not position
    assert row["pose_points_pct"] == pytest.approx(95.0)
    assert (row["av_sync"], row["ev_sync"]) == ("insufficient", "pass")
    assert (row["units_kept"], row["units_simulated"]) == (4, 5)
    text = format_comparison([row])
    assert (
        "precision 0.75, recall 0.75" in text and "3.0 mm" in text and "units kept 4 of 5" in text
    )

    assert main(["compare-truth", str(cohort), "--json", str(tmp_path / "c.json")]) == 0
    assert capsys.readouterr().out.strip() == text
    assert json.loads((tmp_path / "c.json").read_text())[0]["units_kept"] == 4


def test_missing_products_show_as_dashes(tmp_path, capsys):
    cohort = _cohort(tmp_path)
    for p in (cohort / "Data" / SID).rglob("*"):
        if p.is_file():
            p.unlink()
    (row,) = compare_truth(cohort)
    assert row == {"session": SID, "usv_true": 4, "units_simulated": 5}
    assert "USVs: - detected, 4 simulated" in format_comparison([row])
    assert main(["compare-truth", str(tmp_path / "nowhere")]) == 2
    assert "sessions.tsv" in capsys.readouterr().err
