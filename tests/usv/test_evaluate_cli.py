"""`usvflow evaluate-detections` and `usvflow curate-usvs` on files and folders."""

import json

import numpy as np
import pytest

from usvflow.cli import main
from usvflow.usv.detect import write_das_csv
from usvflow.usv.score import evaluate_paths

LABELS = [(0.10, 0.15), (0.40, 0.48), (0.90, 0.95), (1.50, 1.60)]


def write_pairs(folder, key, det, lab):
    folder.mkdir(exist_ok=True)
    (folder / f"gt_{key}.csv").write_text("".join(f"{a},{b}\n" for a, b in lab))
    write_das_csv(det, folder / f"tool_{key}_annotations.csv")


def test_file_against_file(tmp_path, capsys):
    det = [(0.101, 0.152), (0.41, 0.47), (1.2, 1.25)]  # 2 hits, 1 false alarm, 2 misses
    write_pairs(tmp_path, "1", det, LABELS)
    assert main(["evaluate-detections", str(tmp_path / "tool_1_annotations.csv"), str(tmp_path / "gt_1.csv"),
                 "--json", str(tmp_path / "s.json")]) == 0  # fmt: skip
    s = json.loads((tmp_path / "s.json").read_text())["tool_1_annotations.csv"]
    assert s["precision"] == pytest.approx(2 / 3) and s["recall"] == pytest.approx(0.5)
    assert s["f1"] == pytest.approx(4 / 7)
    assert s["f1_iou"] == pytest.approx(4 / 7)  # both hits overlap with IoU > 0.5
    assert s["median_onset_error_s"] == pytest.approx((0.001 + 0.01) / 2)
    assert "tool_1_annotations.csv" in capsys.readouterr().out


def test_folders_pair_by_key_and_pool(tmp_path):
    d, lab = tmp_path / "det", tmp_path / "lab"
    lab.mkdir()
    d.mkdir()
    for key, det in (("1", LABELS), ("2", LABELS[:2])):
        (lab / f"gt_{key}.csv").write_text("".join(f"{a},{b}\n" for a, b in LABELS))
        write_das_csv(det, d / f"rec_{key}_annotations.csv")
    rows = dict(evaluate_paths(d, lab))
    assert rows["rec_1_annotations.csv"].f1 == 1.0
    assert rows["rec_2_annotations.csv"].recall == 0.5
    assert rows["pooled"].recall == pytest.approx(6 / 8) and rows["pooled"].precision == 1.0


def test_folder_against_one_label_file_scores_every_tool(tmp_path):
    write_pairs(tmp_path, "1", LABELS, LABELS)
    (tmp_path / "other_1.csv").write_text("0.1,0.15\n")
    rows = dict(evaluate_paths(tmp_path, tmp_path / "gt_1.csv"))
    assert set(rows) == {"tool_1_annotations.csv", "other_1.csv"}
    assert rows["other_1.csv"].recall == 0.25


def test_unpaired_labels_and_missing_paths_fail_clearly(tmp_path, capsys):
    d, lab = tmp_path / "det", tmp_path / "lab"
    d.mkdir()
    lab.mkdir()
    (lab / "gt_7.csv").write_text("0.1,0.2\n")
    write_das_csv([(0.1, 0.2)], d / "rec_1_annotations.csv")
    assert main(["evaluate-detections", str(d), str(lab)]) == 2
    assert "gt_7.csv" in capsys.readouterr().err
    assert main(["evaluate-detections", str(tmp_path / "nope.csv"), str(lab)]) == 2
    assert "nope.csv" in capsys.readouterr().err


def test_curate_usvs_command(tmp_path, capsys):
    from tests.usv.test_curate import session

    sess = tmp_path / "20250430_145009"
    (sess / "audio" / "hpss_filtered").mkdir(parents=True)
    (sess / "audio" / "das_annotations").mkdir()
    mm, csvs = session(
        sess / "audio" / "hpss_filtered", [(0.2, 0.03, 60e3, range(10)), (0.5, 0.02, 70e3, [3])]
    )
    for c in csvs:
        c.rename(sess / "audio" / "das_annotations" / c.name)
    assert main(["curate-usvs", str(sess)]) == 0
    out = sess / "audio" / "20250430_145009_usv_summary.csv"
    assert "-> 2 USVs" in capsys.readouterr().out
    assert out.read_text().count("\n") == 3
    assert (sess / "audio" / "20250430_145009_usv_signal_correlation_histogram.svg").exists()
    assert np.isfinite(float(out.read_text().splitlines()[1].split(",")[1]))
