"""End-to-end: the workflow's video stage on a simulated cohort, dry-runs, reruns and bad input."""

import json
import os
import re
import time
from pathlib import Path

import pytest
import yaml

from .conftest import snakemake

pytestmark = pytest.mark.slow


def pending_jobs(proc) -> dict:
    """Job counts per rule from a dry-run's summary table."""
    jobs = {}
    m = re.search(r"Job stats:\njob\s+count\n[-\s]+\n(.*?)\ntotal\s+(\d+)", proc.stdout, re.S)
    if not m:
        return jobs
    for line in m.group(1).splitlines():
        name, count = line.split()
        jobs[name] = int(count)
    return jobs


def snapshot(folder: Path) -> dict:
    """Size, mtime and content hash of every file below ``folder``."""
    import hashlib

    return {
        str(p): (p.stat().st_size, p.stat().st_mtime_ns, hashlib.sha1(p.read_bytes()).hexdigest())
        for p in folder.rglob("*")
        if p.is_file()
    }


def truth(cohort, sid):
    return json.loads((cohort / "truth" / sid / "ground_truth.json").read_text())


def sessions(cohort):
    rows = [line.split("\t") for line in (cohort / "sessions.tsv").read_text().splitlines()[1:]]
    return {r[0]: (cohort / r[1], r[2]) for r in rows}


def test_dry_run_run_and_rerun(cohort_copy):
    c = cohort_copy
    cfg = c / "config.yaml"
    jobs = pending_jobs(snakemake(c, "-n", config=cfg))
    exp = [s for s, (_, k) in sessions(c).items() if k == "experiment"]
    assert len(exp) == 3
    assert jobs["camera_frame_count"] == 3
    assert jobs["concatenate_video"] == 15 and jobs["reencode_video"] == 15
    assert jobs["reencode_calibration_video"] == 5

    raw_before = snapshot(c / "Data")
    snakemake(c, config=cfg)
    raw_after = snapshot(c / "Data")
    assert {p: raw_after[p] for p in raw_before} == raw_before, "a raw file was modified"
    assert pending_jobs(snakemake(c, "-n", config=cfg)) == {}

    # frame counts and rates equal the simulator's truth
    for sid in exp:
        folder, _ = sessions(c)[sid]
        t = truth(c, sid)
        dj = t["video"]["date_joint"]
        counts = json.loads((folder / "video" / f"{dj}_camera_frame_count_dict.json").read_text())
        frames = t["timeline"]["camera_frames"]
        for serial, n in frames.items():
            assert counts[serial][0] == n
            assert abs(counts[serial][1] - t["timeline"]["fps"]) < 1e-3
        assert counts["total_frame_number_least"] == min(frames.values())
        assert abs(counts["median_empirical_camera_sr"] - t["timeline"]["fps"]) < 1e-3
        for serial in frames:
            assert (folder / "video" / dj / serial / f"{serial}-{dj}.mp4").stat().st_size > 0
        # temp() concatenations are gone, raw camera folders untouched (no new files)
        assert not list((folder / "video").glob("concatenated_temp_*.mp4"))

    # touching one raw chunk makes only that camera's jobs pending
    sid = exp[1]
    folder, _ = sessions(c)[sid]
    chunk = sorted((folder / "video").glob("*.21372316/000000.mp4"))[0]
    later = time.time() + 5
    os.utime(chunk, (later, later))
    # Snakemake keeps checksums of inputs under 1 MB and ignores a mere touch of them; real camera
    # chunks are far larger, so the check is made as it would behave on a real-size session.
    jobs = pending_jobs(snakemake(c, "-n", "--max-checksum-file-size", "0", config=cfg))
    assert jobs == {"all": 1, "concatenate_video": 1, "reencode_video": 1}, jobs


def test_invalid_config_stops_with_one_clear_message(cohort_copy):
    cfg = yaml.safe_load((cohort_copy / "config.yaml").read_text())
    cfg["video"]["constant_rate_factor"] = "high"
    bad = cohort_copy / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    proc = snakemake(cohort_copy, "-n", config=bad, check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "video.constant_rate_factor" in out and "'high'" in out and "integer" in out


def test_invalid_sheet_row_is_named(cohort_copy):
    sheet = cohort_copy / "sessions.tsv"
    lines = sheet.read_text().splitlines()
    lines[2] = lines[2].replace("experiment", "experimnet")
    sheet.write_text("\n".join(lines) + "\n")
    proc = snakemake(cohort_copy, "-n", config=cohort_copy / "config.yaml", check=False)
    assert proc.returncode != 0
    assert "row 3" in proc.stderr + proc.stdout and "'experimnet'" in proc.stderr + proc.stdout


def test_session_without_video_has_no_video_jobs(cohort_copy):
    exp = [s for s, (_, k) in sessions(cohort_copy).items() if k == "experiment"]
    folder, _ = sessions(cohort_copy)[exp[0]]
    for d in (folder / "video").iterdir():
        for f in d.iterdir():
            f.unlink()
        d.rmdir()
    jobs = pending_jobs(snakemake(cohort_copy, "-n", config=cohort_copy / "config.yaml"))
    assert jobs["camera_frame_count"] == 2 and jobs["concatenate_video"] == 10


def test_malformed_session_folder_stops_with_clear_error(cohort_copy):
    exp = [s for s, (_, k) in sessions(cohort_copy).items() if k == "experiment"]
    folder, _ = sessions(cohort_copy)[exp[2]]
    npz = sorted((folder / "video").glob("*.21369048/000001.npz"))[0]
    npz.unlink()
    proc = snakemake(cohort_copy, "-n", config=cohort_copy / "config.yaml", check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert f"malformed session {exp[2]}" in out and "000001.mp4" in out and "frame metadata" in out


def test_output_root_mirrors_products_and_leaves_sessions_untouched(cohort_copy, tmp_path):
    cfg = yaml.safe_load((cohort_copy / "config.yaml").read_text())
    mirror = tmp_path / "mirror"
    cfg["output_root"] = str(mirror)
    exp = [s for s, (_, k) in sessions(cohort_copy).items() if k == "experiment"]
    # one experiment session (and the calibration session it refers to) is enough
    sheet = cohort_copy / "sessions.tsv"
    lines = sheet.read_text().splitlines()
    sheet.write_text(
        "\n".join(
            [lines[0]]
            + [line for line in lines[1:] if line.startswith(exp[0]) or "\tcalibration\t" in line]
        )
        + "\n"
    )
    path = cohort_copy / "mirror.yaml"
    path.write_text(yaml.safe_dump(cfg))
    before = snapshot(cohort_copy / "Data")
    snakemake(cohort_copy, config=path)
    assert snapshot(cohort_copy / "Data") == before, (
        "session folder changed although output_root is set"
    )
    dj = truth(cohort_copy, exp[0])["video"]["date_joint"]
    assert (mirror / exp[0] / "video" / f"{dj}_camera_frame_count_dict.json").is_file()
    assert len(list((mirror / exp[0] / "video" / dj).glob("*/*.mp4"))) == 5
    assert len(list(mirror.glob("*/video/*/*/calibration_images/*-calibration.mp4"))) == 5
