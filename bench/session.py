"""Whole sessions through the whole workflow: time, memory and disk per stage, projected to 20 minutes.

    python bench/session.py run OUT [--minutes 1 2 5] [--cores 2] [--frame-size 1024x1280]
                                    [--probe-channels 385] [--temp-audio] [--keep]
    python bench/session.py collect OUT --minutes M [--cores 2]
    python bench/session.py rerun-rules OUT --minutes M --rules R [R ...]
    python bench/session.py report OUT [--markdown]

``run`` simulates one experiment session (plus its calibration session) of each length with every
stream at its real size (24 × 250 kHz audio, five 1280×1024 cameras, a 385-channel probe), runs the
workflow on it with every stage on (``config/demo.yaml``'s overlay: SLEAP predictions stand in for
proofread poses, the call-type model is trained once on simulated calls), and keeps in
``OUT/<n>min/result.json``: every job's ``benchmark:`` record (wall and CPU seconds, peak RSS, bytes
written), the simulation's time and memory, the peak disk use sampled during the run, and the load
of the machine. The simulated data is deleted afterwards unless ``--keep``. A length whose
``result.json`` exists is skipped, so lengths can be run one at a time.

Snakemake samples a job's CPU time and memory every second for its first 30 s, then every 30 s, so
up to 30 s of a longer job's CPU time would go uncounted; the run here sets that interval to 1 s
(the default of the function under ``snakemake.benchmark.benchmarked``, a context manager: setting
the defaults of the decorated wrapper changes nothing; ``tests/bench`` checks the patch takes).

``collect`` writes ``result.json`` for a length whose workflow was stopped before the end (a run
that would not finish in the time at hand): the finished jobs' records, marked incomplete, with the
jobs per rule a dry run still plans; ``report`` says so and projects from the finished jobs only.

``rerun-rules`` runs the jobs of the given rules again on a kept length (``--keep``) with the code
as it is now, after a fix, and replaces their records in ``result.json``, which notes the rules, the
commit and the time (``report`` lists them).

``report`` prints per stage (rule): jobs, × real time per core (recording seconds per CPU second of
the stage), CPU seconds, peak RSS and bytes written at each length, a linear fit of the CPU seconds
over the lengths and its 20-minute projection, and the stages whose peak RSS grows by more than 10 %
from the shortest to the longest length. The projected 20-minute wall time on 2 and 8 cores comes
from a list schedule of every job (longest first) with each job's CPU time extrapolated to 20
minutes on ``min(threads, cores)`` cores and a rule waiting for every job of the rules it depends on
(the rule graph): conservative, since a channel's HPSS need not wait for the other channels' crops.
A multi-threaded job is taken to scale with its threads except for the serial share measured for
its rule (``SERIAL_SHARE``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
#: Snakemake with its benchmark sampling every second (see the module docstring)
SNAKEMAKE = [
    PY,
    "-c",
    "import sys, snakemake.benchmark as b; b.benchmarked.__wrapped__.__defaults__ = (None, None, 1.0); "
    "from snakemake.cli import main; sys.argv[0] = 'snakemake'; main()",
]
SECONDS_20_MIN = 1200.0
FPS = 150.057
#: rules left out of the CPU-stage projection: video re-encoding and the GPU tools
VIDEO_ENCODE = {"reencode_video", "reencode_calibration_video"}
GPU_RULES = {"sleap_predict", "das_predict", "kilosort4", "vocalocator_predict", "calltype_train"}
#: rules that run once per cohort, not per session
ONCE = {"calltype_train"}
#: share of a multi-threaded rule's CPU time that runs on one thread (Amdahl), measured by profiling:
#: the quality metrics accumulate the templates on one thread (38-40 % of their CPU time on 1- and
#: 2-min 385-channel recordings); other rules are taken to scale with their threads
SERIAL_SHARE = {"ephys_quality_metrics": 0.4}


# ------------------------------------------------------------------------------------------ run


def _usvflow(*args) -> list[str]:
    return [PY, "-m", "usvflow.cli", *map(str, args)]


def _timed(cmd, log: Path, cwd=None) -> dict:
    """Run ``cmd`` (output to ``log``); wall, CPU seconds and peak RSS of the process tree."""
    t = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=cwd)
        _, status, ru = os.wait4(proc.pid, 0)
    rc = os.waitstatus_to_exitcode(status)
    return {
        "rc": rc,
        "wall_s": time.perf_counter() - t,
        "cpu_s": ru.ru_utime + ru.ru_stime,
        "max_rss_mb": ru.ru_maxrss / 1024,
    }


def _du(folder: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(folder):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_blocks * 512
            except FileNotFoundError:
                pass
    return total


class _Sampler(threading.Thread):
    """Disk use of a folder and the machine's load, every ``every`` seconds."""

    def __init__(self, folder: Path, every: float = 10.0):
        super().__init__(daemon=True)
        self.folder, self.every = folder, every
        self.peak = 0
        self.loads: list[float] = []
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, _du(self.folder))
            self.loads.append(os.getloadavg()[0])
            self.stop.wait(self.every)


def _rule_threads() -> dict[str, int]:
    threads, rule = {}, None
    for f in sorted((ROOT / "workflow" / "rules").glob("*.smk")):
        for line in f.read_text().splitlines():
            m = re.match(r"\s*(?:rule|checkpoint) (\w+):", line)
            if m:
                rule = m.group(1)
            m = re.match(r"\s*threads:\s*(\d+)", line)
            if m and rule:
                threads[rule] = int(m.group(1))
    return threads


def _rule_graph(cmd_args: list[str], cwd: Path) -> list[list[str]]:
    """Edges [upstream, downstream] of the rule graph."""
    out = subprocess.run(
        [*SNAKEMAKE, *cmd_args, "--rulegraph"], capture_output=True, text=True, cwd=cwd
    )
    names, edges = {}, []
    for line in out.stdout.splitlines():
        m = re.match(r'\s*(\d+)\[label = "([^"]+)"', line)
        if m:
            names[m.group(1)] = m.group(2)
        m = re.match(r"\s*(\d+) -> (\d+)", line)
        if m:
            edges.append((m.group(1), m.group(2)))
    return [[names[a], names[b]] for a, b in edges if a in names and b in names]


def _benchmarks(folder: Path, rules: list[str], extra: list[Path] = ()) -> list[dict]:
    """Every job's benchmark record under ``folder`` (``*/benchmarks/*.tsv``) and in ``extra``."""
    rules = sorted(rules, key=len, reverse=True)
    jobs = []
    for p in sorted(folder.rglob("benchmarks/*.tsv")) + [e for e in extra if e.exists()]:
        stem = p.stem.removesuffix("_benchmark")
        rule = next((r for r in rules if stem == r or stem.startswith(r + "_")), stem)
        with open(p) as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
        if not rows:
            continue
        r = rows[-1]

        def num(k, r=r):
            try:
                return float(r[k])
            except (KeyError, ValueError):
                return None

        jobs.append(
            {
                "rule": rule,
                "job": p.stem,
                "s": num("s"),
                "cpu_time": num("cpu_time"),
                "max_rss": num("max_rss"),
                **_logged(p.parent.parent / "logs" / f"{p.stem}.log"),
                "io_in": num("io_in"),
                "io_out": num("io_out"),
            }
        )
    return jobs


_RESOURCES = re.compile(
    r"resources: peak RSS ([\d.]+) MB, largest child process ([\d.]+) MB; CPU ([\d.]+) s"
)


def _logged(log: Path) -> dict:
    """What a workflow script logs when it ends (None where its log has no such line: a shell rule):
    ``peak_rss``, its own high-water mark plus its largest child's in MiB (exact for a job without
    child processes, an upper bound for one whose child runs beside it, like ffmpeg under the
    re-encoding script), and ``cpu_logged``, the CPU seconds of the script and its children."""
    try:
        found = _RESOURCES.findall(log.read_text(errors="replace"))
    except OSError:
        found = []
    if not found:
        return {"peak_rss": None, "cpu_logged": None}
    me, child, cpu = map(float, found[-1])
    return {"peak_rss": me + child, "cpu_logged": cpu}


def _cpu(job: dict) -> float:
    """A job's CPU seconds: the larger of the logged (exact) and Snakemake's record (sampled every
    second: a job shorter than that reads 0)."""
    return max(job.get("cpu_logged") or 0.0, job.get("cpu_time") or 0.0)


def _rss(job: dict) -> float | None:
    """A job's peak RSS: the larger of what its script logged (its own high-water mark plus its
    largest child's) and Snakemake's record (the sum over the job's process tree, sampled every
    second: it misses the peak of a job shorter than a second or two, while the logged value misses
    the sum of several child processes running at once, like triangulation's workers)."""
    vals = [v for v in (job.get("peak_rss"), job.get("max_rss")) if v is not None]
    return max(vals) if vals else None


def _overlay(path: Path, out: Path, temp_audio: bool) -> None:
    cfg = {
        "stages": ["video", "audio", "usv", "sync", "ephys", "pose", "assignment", "calltypes"],
        "pose": {"use_unproofread": True},
        "sync": {"ev": {"apply_phase_shift": True}},  # the 385-channel phase-shift copy too
        "call_types": {
            "model_dir": str(out / "calltype_model"),
            "train": {"data_dir": str(out / "calltype_training")},
        },
    }
    if temp_audio:
        cfg["audio"] = {"disk": {"keep_split": False, "keep_cropped": False, "keep_hpss": False}}
    import yaml

    path.write_text(yaml.safe_dump(cfg, sort_keys=False))


def _left_jobs(args: list[str]) -> dict[str, int]:
    """Jobs per rule that a dry run of the workflow still plans (its ``Job stats`` table), without
    ``all``."""
    out = subprocess.run(
        [*SNAKEMAKE, *args, "--dry-run", "--nolock", "--rerun-incomplete"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    left: dict[str, int] = {}
    lines = out.stdout.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("Job stats:"):
            for row in lines[i + 3 :]:
                m = re.match(r"(\w+)\s+(\d+)$", row.strip())
                if not m or m.group(1) == "total":
                    break
                left[m.group(1)] = int(m.group(2))
            break
    left.pop("all", None)
    return left


def _snakemake_args(d: Path, cohort: Path, overlay: Path, cores: int) -> list[str]:
    return [
        "--snakefile",
        str(ROOT / "Snakefile"),
        "--directory",
        str(d),
        "--cores",
        str(cores),
        "--configfile",
        str(cohort / "config.yaml"),
        str(overlay),
        "--workflow-profile",
        "none",
    ]


def _cohort_jobs(out: Path, cohort: Path, threads: dict) -> list[dict]:
    """The records of every job of a run: the cohort's and the call-type training's (once per OUT)."""
    trained = out / "calltype_model" / "logs" / "calltype_train_benchmark.tsv"
    return _benchmarks(cohort, list(threads), [trained])


def _record(out, d, minutes, a, sim, wf, sampler, load0, args, complete) -> dict:
    """What ``result.json`` keeps of one length (see the module docstring)."""
    cohort = d / "cohort"
    threads = _rule_threads()
    jobs = _cohort_jobs(out, cohort, threads)
    rec = {
        "minutes": minutes,
        "seconds": 60.0 * minutes,
        "cores": a.cores,
        "frame_size": a.frame_size,
        "probe_channels": a.probe_channels,
        "temp_audio": a.temp_audio,
        "complete": complete,
        "simulate": sim,
        "workflow": wf,
        "load": {
            "start": load0,
            "mean": sum(sampler.loads) / max(1, len(sampler.loads)) if sampler else None,
            "end": os.getloadavg(),
        },
        "disk": {
            "input_bytes": sim["bytes"],
            "peak_bytes": sampler.peak if sampler else _du(cohort),
            "final_bytes": _du(cohort),
        },
        "jobs": jobs,
        "threads": threads,
        "rule_graph": _rule_graph(args, ROOT),
    }
    if not complete:
        rec["unfinished"] = _left_jobs(args)
    return rec


def collect(out: Path, minutes: float, a) -> None:
    """``result.json`` of a length whose workflow was stopped before the end (marked incomplete:
    the finished jobs' records, and the jobs per rule that did not finish)."""
    d = out / f"{minutes:g}min"
    cohort = d / "cohort"
    sim = json.loads((d / "simulate.json").read_text())
    args = _snakemake_args(d, cohort, d / "overlay.yaml", a.cores)
    log = d / "snakemake.log"
    wall = log.stat().st_mtime - (d / "overlay.yaml").stat().st_mtime
    wf = {"rc": None, "wall_s": wall, "cpu_s": None, "max_rss_mb": None}
    rec = _record(out, d, minutes, a, sim, wf, None, None, args, complete=False)
    (d / "result.json").write_text(json.dumps(rec, indent=1))
    print(
        f"{minutes:g} min (incomplete): {len(rec['jobs'])} jobs finished, unfinished "
        f"{sum(rec['unfinished'].values())} -> {d / 'result.json'}"
    )


def run_length(out: Path, minutes: float, a) -> None:
    d = out / f"{minutes:g}min"
    result = d / "result.json"
    if result.exists():
        print(f"{result} exists: skipped")
        return
    d.mkdir(parents=True, exist_ok=True)
    training = out / "calltype_training"
    if not training.exists():
        r = _timed(
            _usvflow(
                "export-spectrograms", "--simulate", 120, "--seed", 1, "--dataset-dir", training
            ),
            out / "calltype_training.log",
        )
        if r["rc"]:
            sys.exit(f"export-spectrograms failed, see {out / 'calltype_training.log'}")
    cohort = d / "cohort"
    seconds = 60.0 * minutes
    if not (cohort / "config.yaml").exists():
        sim = _timed(
            _usvflow(
                "simulate",
                cohort,
                "--seconds",
                seconds,
                "--seed",
                0,
                "--frame-size",
                a.frame_size,
                "--probe-channels",
                a.probe_channels,
                "--workers",
                a.cores,
                "--no-progress",
            ),
            d / "simulate.log",
        )
        if sim["rc"]:
            sys.exit(f"simulation failed, see {d / 'simulate.log'}")
        sim["bytes"] = _du(cohort)
        (d / "simulate.json").write_text(json.dumps(sim, indent=1))
    sim = json.loads((d / "simulate.json").read_text())
    overlay = d / "overlay.yaml"
    _overlay(overlay, out, a.temp_audio)
    args = _snakemake_args(d, cohort, overlay, a.cores)
    if a.rerun:  # products of an earlier run go (the raw inputs are never outputs)
        _timed([*SNAKEMAKE, *args, "--delete-all-output"], d / "delete.log", cwd=ROOT)
    sampler = _Sampler(cohort)
    sampler.start()
    load0 = os.getloadavg()
    print(
        f"{minutes:g} min: running the workflow on {a.cores} cores (log {d / 'snakemake.log'})",
        flush=True,
    )
    wf = _timed([*SNAKEMAKE, *args], d / "snakemake.log", cwd=ROOT)
    sampler.stop.set()
    sampler.join()
    if wf["rc"]:
        sys.exit(f"the workflow failed, see {d / 'snakemake.log'}")
    rec = _record(out, d, minutes, a, sim, wf, sampler, load0, args, complete=True)
    result.write_text(json.dumps(rec, indent=1))
    print(
        f"{minutes:g} min: {wf['wall_s']:.0f} s wall, {len(rec['jobs'])} jobs, peak disk "
        f"{sampler.peak / 1e9:.1f} GB -> {result}"
    )
    if not a.keep:
        shutil.rmtree(cohort)
        shutil.rmtree(d / ".snakemake", ignore_errors=True)


def rerun_rules(out: Path, minutes: float, rules: list[str]) -> None:
    """Rerun every job of ``rules`` on the kept cohort of one length and replace their records."""
    d = out / f"{minutes:g}min"
    cohort, result = d / "cohort", d / "result.json"
    if not result.exists() or not (cohort / "config.yaml").exists():
        sys.exit(f"{d}: no result.json or no kept cohort (run with --keep first)")
    rec = json.loads(result.read_text())
    unknown = sorted(set(rules) - set(rec["threads"]))
    if unknown:
        sys.exit(f"no such rule(s): {unknown}")
    args = _snakemake_args(d, cohort, d / "overlay.yaml", rec["cores"])
    log = d / f"rerun_{'_'.join(rules)}.log"
    r = _timed([*SNAKEMAKE, *args, "--forcerun", *rules, "--until", *rules], log, cwd=ROOT)
    if r["rc"]:
        sys.exit(f"the rerun failed, see {log}")
    # every record read again from its files (the other jobs' files are unchanged)
    fresh = {j["job"]: j for j in _cohort_jobs(out, cohort, rec["threads"])}
    rec["jobs"] = [fresh.get(j["job"], j) for j in rec["jobs"]]
    n = sum(j["rule"] in rules and j["job"] in fresh for j in rec["jobs"])
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()  # fmt: skip
    rec.setdefault("reruns", []).append(
        {"rules": rules, "jobs": n, "commit": commit, "at": time.strftime("%Y-%m-%d %H:%M")}
    )
    result.write_text(json.dumps(rec, indent=1))
    print(f"{minutes:g} min: {n} job(s) of {', '.join(rules)} rerun at {commit} -> {result}")


# ------------------------------------------------------------------------------------------ report


def _fit(xs, ys):
    """Least-squares ``y = a + b x`` (one point: through the origin)."""
    if len(xs) == 1:
        return 0.0, ys[0] / xs[0]
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    return my - b * mx, b


def _schedule(jobs: list[tuple[str, float, int]], edges, cores: int) -> float:
    """Makespan of a longest-first list schedule; jobs ``(rule, seconds on its cores, threads)``; a
    rule's jobs wait for every job of its upstream rules."""
    rules = {r for r, _, _ in jobs}
    ups = {r: {a for a, b in edges if b == r and a in rules} for r in rules}
    left = {r: sum(1 for j in jobs if j[0] == r) for r in rules}
    pending = sorted(jobs, key=lambda j: -j[1])
    running: list[tuple[float, str, int]] = []
    t, free = 0.0, cores
    while pending or running:
        started = True
        while started:
            started = False
            for j in pending:
                r, dur, th = j
                th = min(th, cores)
                if th <= free and all(left[u] == 0 for u in ups[r]):
                    pending.remove(j)
                    running.append((t + dur, r, th))
                    free -= th
                    started = True
                    break
        if not running:
            raise RuntimeError("schedule stuck: a cycle in the rule graph?")
        running.sort()
        end, r, th = running.pop(0)
        t, free = end, free + th
        left[r] -= 1
    return t


def report(out: Path, markdown: bool, disk_mbps: float = 500.0) -> str:
    recs = sorted(
        (json.loads(p.read_text()) for p in out.glob("*min/result.json")),
        key=lambda r: r["seconds"],
    )
    if not recs:
        sys.exit(f"no */result.json under {out}")
    lens = [r["seconds"] for r in recs]
    longest = recs[-1]
    rules = sorted({j["rule"] for r in recs for j in r["jobs"]})
    threads = longest["threads"]
    per = {}
    for rule in rules:
        row = {"cpu": [], "rss": [], "out": [], "jobs": [], "wall": []}
        for r in recs:
            js = [j for j in r["jobs"] if j["rule"] == rule]
            row["jobs"].append(len(js))
            row["cpu"].append(sum(_cpu(j) for j in js) if js else None)
            row["wall"].append(sum(j["s"] or 0 for j in js) if js else None)
            row["rss"].append(max((_rss(j) or 0 for j in js), default=None) if js else None)
            row["out"].append(sum(j["io_out"] or 0 for j in js) if js else None)
        pts = [(x, c) for x, c in zip(lens, row["cpu"]) if c is not None]
        a, b = _fit([p[0] for p in pts], [p[1] for p in pts]) if len(pts) > 1 or pts else (0.0, 0.0)
        row["fit"] = (a, b)
        if rule in ONCE:
            row["cpu20"] = max(p[1] for p in pts) if pts else 0.0
        elif len(pts) > 1:
            row["cpu20"] = max(a + b * SECONDS_20_MIN, max(p[1] for p in pts))
        else:
            row["cpu20"] = pts[0][1] * SECONDS_20_MIN / pts[0][0] if pts else 0.0
        per[rule] = row

    # per-job projection for the schedule
    def at_20(rule, pts):
        """A job's value at 20 minutes from its values at the measured lengths."""
        if rule in ONCE:  # not per session (trained once per cohort)
            return max(p[1] for p in pts)
        if len(pts) > 1:
            a, b = _fit([p[0] for p in pts], [p[1] for p in pts])
            return max(a + b * SECONDS_20_MIN, max(p[1] for p in pts))
        return pts[0][1] * SECONDS_20_MIN / pts[0][0]  # one length: proportional to the length

    def job_seconds(cores, keep):
        """(rule, seconds, threads) per job at 20 min: its CPU time on its threads, or the time its
        disk traffic takes at ``disk_mbps``, whichever is longer."""
        by_job = {}
        for r in recs:
            for j in r["jobs"]:
                io = (j["io_in"] or 0.0) + (j["io_out"] or 0.0)
                by_job.setdefault(j["job"], (j["rule"], [], []))
                by_job[j["job"]][1].append((r["seconds"], _cpu(j)))
                by_job[j["job"]][2].append((r["seconds"], io))
        jobs = []
        for rule, cpu_pts, io_pts in by_job.values():
            if not keep(rule):
                continue
            th = min(threads.get(rule, 1), cores)
            cpu, io_mb = at_20(rule, cpu_pts), at_20(rule, io_pts)
            serial = SERIAL_SHARE.get(rule, 0.0)
            on_threads = cpu * (serial + (1.0 - serial) / th)
            jobs.append((rule, max(on_threads, io_mb / disk_mbps), th))
        return jobs

    edges = longest["rule_graph"]
    cpu_stage = lambda r: r not in VIDEO_ENCODE and r not in GPU_RULES  # noqa: E731
    proj = {c: _schedule(job_seconds(c, cpu_stage), edges, c) for c in (2, 8)}
    proj_all = {
        c: _schedule(job_seconds(c, lambda r: r not in GPU_RULES), edges, c) for c in (2, 8)
    }

    lines = []
    mins = [f"{r['minutes']:g}" for r in recs]
    head = (
        ["stage (rule)", "jobs", f"× real time per core ({mins[-1]} min)"]
        + [f"CPU s ({m} min)" for m in mins]
        + ["CPU s, 20 min (fit)"]
        + [f"peak RSS MB ({m} min)" for m in mins]
        + [f"MB written ({mins[-1]} min)"]
    )
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    grows = []
    order = sorted(rules, key=lambda r: -(per[r]["cpu20"] or 0))
    for rule in order:
        row = per[rule]
        cpu_last = row["cpu"][-1]
        speed = f"{longest['seconds'] / cpu_last:#.2g}".rstrip(".") if cpu_last else "–"
        speed = "–" if rule in ONCE else speed
        rss = [v for v in row["rss"] if v]
        if len(rss) > 1 and rss[0] > 0 and (max(rss) - rss[0]) / rss[0] > 0.10:
            grows.append(f"{rule} ({rss[0]:,.0f} → {rss[-1]:,.0f} MB)")
        tag = (
            " (GPU tool)"
            if rule in GPU_RULES
            else " (video re-encoding)"
            if rule in VIDEO_ENCODE
            else ""
        )
        cells = (
            [f"`{rule}`{tag}", str(row["jobs"][-1]), speed]
            + [f"{v:,.1f}" if v is not None else "–" for v in row["cpu"]]
            + [f"{row['cpu20']:,.0f}"]
            + [f"{v:,.0f}" if v is not None else "–" for v in row["rss"]]
            + [f"{row['out'][-1]:,.0f}" if row["out"][-1] is not None else "–"]
        )
        lines.append("| " + " | ".join(cells) + " |")
    total_cpu20 = sum(per[r]["cpu20"] for r in rules if cpu_stage(r))
    enc = [j for j in longest["jobs"] if j["rule"] == "reencode_video"]
    frames = longest["seconds"] * FPS * len(enc)
    enc_cpu = sum(_cpu(j) for j in enc)
    fps_core = frames / enc_cpu if enc_cpu else float("nan")
    summary = [
        "",
        f"Lengths: {', '.join(mins)} min of recording (one experiment session + its calibration session); "
        f"{longest['cores']} cores; frames {longest['frame_size']}, probe {longest['probe_channels']} channels; "
        f"intermediate audio {'temporary' if longest['temp_audio'] else 'kept'}.",
        "Workflow wall time: "
        + ", ".join(
            f"{r['minutes']:g} min → {r['workflow']['wall_s']:,.0f} s "
            + (
                f"(load {r['load']['mean']:.1f})"
                if r["load"]["mean"] is not None
                else "(stopped before the end)"
            )
            for r in recs
        )
        + ".",
        "Peak disk during the run: "
        + ", ".join(
            f"{r['minutes']:g} min → {r['disk']['peak_bytes'] / 1e9:.1f} GB "
            f"(inputs {r['disk']['input_bytes'] / 1e9:.1f} GB)"
            for r in recs
        )
        + ".",
        f"Projected 20-min session, CPU stages (all but video re-encoding and GPU tools): {total_cpu20 / 60:,.1f} "
        f"CPU minutes; wall {proj[2] / 60:,.1f} min on 2 cores, {proj[8] / 60:,.1f} min on 8 cores.",
        "Longest jobs at 20 min (8 cores): "
        + ", ".join(
            f"`{r}` {d / 60:,.1f} min"
            for r, d, _ in sorted(job_seconds(8, cpu_stage), key=lambda j: -j[1])[:3]
        )
        + ".",
        f"(A job takes its CPU time on min(threads, cores) cores, or its disk traffic at "
        f"{disk_mbps:g} MB/s if that is longer.) "
        f"With video re-encoding: wall {proj_all[2] / 60:,.1f} min on 2 cores, {proj_all[8] / 60:,.1f} min on 8 cores.",
        (
            f"Video re-encoding: {fps_core:,.0f} frames/s per core at {longest['frame_size']} → "
            f"5 × 180,000 frames in {5 * 180000 / fps_core / 60:,.0f} CPU minutes "
            f"({5 * 180000 / fps_core / 60 / 8:,.1f} min on 8 cores)."
            if enc_cpu
            else "Video re-encoding: no finished job in the longest run."
        ),
        "Peak RSS growing by more than 10 % with length: "
        + (", ".join(grows) if grows else "none")
        + ".",
        "Largest peak RSS: "
        + ", ".join(
            f"`{r}` {max(v for v in per[r]['rss'] if v):,.0f} MB"
            for r in sorted(rules, key=lambda r: -max(v or 0 for v in per[r]["rss"]))[:3]
        )
        + ".",
    ]
    for r in recs:
        for rr in r.get("reruns", []):
            summary.append(
                f"In the {r['minutes']:g}-min run, the jobs of "
                + ", ".join(f"`{x}`" for x in rr["rules"])
                + f" were rerun after a fix (at {rr['commit']}, {rr['at']})."
            )
    for r in recs:
        if not r.get("complete", True):
            left = r.get("unfinished", {})
            summary.append(
                f"**The {r['minutes']:g}-min run did not complete**: stopped after "
                f"{r['workflow']['wall_s']:,.0f} s with {len(r['jobs'])} jobs finished; not finished "
                f"(jobs): "
                + (", ".join(f"`{k}` ({v})" for k, v in sorted(left.items())) or "none listed")
                + ". The projections count only the finished jobs."
            )
    text = "\n".join(lines + summary)
    if not markdown:
        text = text.replace("`", "")
    return text


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("out", type=Path)
    r.add_argument("--minutes", type=float, nargs="+", default=[1, 2, 5])
    r.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    r.add_argument("--frame-size", default="1024x1280")
    r.add_argument("--probe-channels", type=int, default=385)
    r.add_argument(
        "--temp-audio", action="store_true", help="split, cropped and HPSS audio temporary"
    )
    r.add_argument("--keep", action="store_true", help="keep the simulated data and products")
    r.add_argument(
        "--rerun",
        action="store_true",
        help="delete the products of an earlier run of a kept cohort before running",
    )
    c = sub.add_parser("collect", help="result.json of a length whose workflow was stopped")
    c.add_argument("out", type=Path)
    c.add_argument("--minutes", type=float, required=True)
    c.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    c.add_argument("--frame-size", default="1024x1280")
    c.add_argument("--probe-channels", type=int, default=385)
    c.add_argument("--temp-audio", action="store_true")
    rr = sub.add_parser("rerun-rules", help="rerun some rules' jobs of a kept length after a fix")
    rr.add_argument("out", type=Path)
    rr.add_argument("--minutes", type=float, required=True)
    rr.add_argument("--rules", nargs="+", required=True)
    p = sub.add_parser("report")
    p.add_argument("out", type=Path)
    p.add_argument("--markdown", action="store_true")
    p.add_argument(
        "--disk-mbps",
        type=float,
        default=500.0,
        help="disk throughput for the I/O-bound jobs of the projection (MB/s)",
    )
    a = ap.parse_args(argv)
    if a.cmd == "run":
        a.out.mkdir(parents=True, exist_ok=True)
        for m in a.minutes:
            run_length(a.out.resolve(), m, a)
        print(report(a.out, markdown=False))
    elif a.cmd == "collect":
        collect(a.out.resolve(), a.minutes, a)
    elif a.cmd == "rerun-rules":
        rerun_rules(a.out.resolve(), a.minutes, a.rules)
    else:
        print(report(a.out, a.markdown, a.disk_mbps))


if __name__ == "__main__":
    main()
