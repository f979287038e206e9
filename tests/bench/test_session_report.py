"""bench/session.py's report: fit, projection and the memory and completeness flags, on made-up
records (no workflow run)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
session = pytest.importorskip("session")


def _rec(minutes, jobs, complete=True, unfinished=None):
    rec = {
        "minutes": minutes,
        "seconds": 60.0 * minutes,
        "cores": 2,
        "frame_size": "1024x1280",
        "probe_channels": 385,
        "temp_audio": False,
        "complete": complete,
        "workflow": {"wall_s": 100.0 * minutes},
        "load": {"mean": None if not complete else 1.0},
        "disk": {"input_bytes": 1e9, "peak_bytes": 2e9, "final_bytes": 2e9},
        "jobs": [
            {
                "rule": r,
                "job": f"{r}_{i}",
                "s": c,
                "cpu_time": c,
                "max_rss": m,
                "io_in": 0.0,
                "io_out": 1.0,
            }
            for i, (r, c, m) in enumerate(jobs)
        ],  # fmt: skip
        "threads": {"hpss": 1, "curate_usvs": 1},
        "rule_graph": [["hpss", "curate_usvs"]],
    }
    if unfinished is not None:
        rec["unfinished"] = unfinished
    return rec


def test_projection_growth_and_incomplete_flag(tmp_path):
    for m, rss in ((1, 100.0), (2, 130.0)):
        d = tmp_path / f"{m}min"
        d.mkdir()
        rec = _rec(m, [("hpss", 6.0 * m, 200.0), ("curate_usvs", 3.0 * m, rss)],
                   complete=m == 1, unfinished=None if m == 1 else {"curate_usvs": 1})  # fmt: skip
        if m == 1:
            rec["reruns"] = [
                {"rules": ["hpss"], "jobs": 1, "commit": "abc1234", "at": "2026-12-07 06:00"}
            ]
        (d / "result.json").write_text(json.dumps(rec))
    text = session.report(tmp_path, markdown=True)
    assert "In the 1-min run, the jobs of `hpss` were rerun after a fix (at abc1234" in text
    # CPU s linear in length: 6 s and 3 s per minute -> 120 + 60 CPU s at 20 minutes, in series
    assert "3.0 CPU minutes; wall 3.0 min on 2 cores, 3.0 min on 8 cores" in text
    assert "curate_usvs (100 → 130 MB)" in text and "`hpss` (" not in text.split("Peak RSS")[1]
    assert "Video re-encoding: no finished job" in text
    assert "**The 2-min run did not complete**" in text and "`curate_usvs` (1)" in text


def test_schedule_waits_for_upstream_rules():
    jobs = [("a", 10.0, 1), ("a", 10.0, 1), ("b", 5.0, 1)]
    assert session._schedule(jobs, [["a", "b"]], cores=2) == 15.0
    assert session._schedule(jobs, [], cores=2) == 15.0  # b runs beside an a: 10 + 5 on one core
    assert session._schedule(jobs, [], cores=3) == 10.0


def test_benchmark_sampling_is_every_second(tmp_path):
    """The run's Snakemake samples a job every second: a script burning 33 CPU s is counted whole
    (Snakemake's own sampling turns to every 30 s after 30 s and would count about 30)."""
    import subprocess

    (tmp_path / "burn.py").write_text(
        "import time\nt = time.process_time()\nwhile time.process_time() - t < 33:\n    pass\n"
        "open(snakemake.output[0], 'w').write('x')\n"
    )
    (tmp_path / "Snakefile").write_text(
        'rule a:\n    output: "a.txt"\n    benchmark: "a.tsv"\n    script: "burn.py"\n'
    )
    cmd = [*session.SNAKEMAKE, "--cores", "1", "--directory", str(tmp_path), "-s", str(tmp_path / "Snakefile"), "-q"]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True)
    head, row = (tmp_path / "a.tsv").read_text().splitlines()[:2]
    cpu = float(dict(zip(head.split("\t"), row.split("\t")))["cpu_time"])
    assert 32.0 <= cpu <= 36.0, cpu


def test_a_jobs_peak_rss_is_the_larger_of_logged_and_sampled(tmp_path):
    """A job's benchmark and its log sit side by side; the getrusage line the workflow scripts log
    is read back, the script's plus its largest child's (an upper bound when both run at once); a shell rule's log without
    the line keeps Snakemake's sampled value; where the sampled sum over the process tree is larger
    (several worker processes at once), it is kept."""
    s = tmp_path / "cohort" / "s1"
    (s / "benchmarks").mkdir(parents=True)
    (s / "logs").mkdir()
    head = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    for stem, rss in (("av_sync_check_s1", 3.2), ("reencode_video_A", 3.2), ("das_predict_x", 3.2),
                      ("triangulate_x", 685.4)):  # fmt: skip
        (s / "benchmarks" / f"{stem}.tsv").write_text(
            head + f"1.0\t0:00:01\t{rss}\t1\t1\t1\t0\t1\t50\t0.5\n"
        )
    (s / "logs" / "av_sync_check_s1.log").write_text(
        "x INFO resources: peak RSS 91.4 MB, largest child process 0.0 MB; CPU 0.90 s\n"
    )
    (s / "logs" / "reencode_video_A.log").write_text(
        "x INFO resources: peak RSS 80.0 MB, largest child process 240.5 MB; CPU 12.00 s\n"
    )
    (s / "logs" / "das_predict_x.log").write_text("das output\n")
    (s / "logs" / "triangulate_x.log").write_text(
        "x INFO resources: peak RSS 400.0 MB, largest child process 76.3 MB; CPU 9.00 s\n"
    )
    jobs = {
        j["job"]: j
        for j in session._benchmarks(
            tmp_path, ["av_sync_check", "reencode_video", "das_predict", "triangulate"]
        )
    }
    assert jobs["av_sync_check_s1"]["peak_rss"] == 91.4
    assert jobs["reencode_video_A"]["peak_rss"] == 320.5
    assert jobs["das_predict_x"]["peak_rss"] is None
    assert [session._rss(jobs[k]) for k in sorted(jobs)] == [91.4, 3.2, 320.5, 685.4]
    # the line the workflow scripts write is the one read here
    from usvflow.workflow import RESOURCES_LINE

    line = RESOURCES_LINE.format(self_mb=1.0, child_mb=2.0, cpu_s=3.0)
    assert session._RESOURCES.search(line).groups() == ("1.0", "2.0", "3.00")
    # CPU: the logged seconds where Snakemake's sampler read less (0.5 in every record here)
    assert [session._cpu(jobs[k]) for k in sorted(jobs)] == [0.9, 0.5, 12.0, 9.0]
