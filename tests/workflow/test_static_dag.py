"""The dry-run shows the whole plan: on a new simulated cohort the dry-run lists every job that the
run then executes (no checkpoint), also through profiles/slurm, and profiles/slurm plans each job
once and finishes - on a machine without conda - after a config change and with --forcerun."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import ROOT, snakemake

pytestmark = pytest.mark.slow

SLURM_PROFILE = ROOT / "profiles" / "slurm"
STAGES = ["video", "audio", "usv"]
# A dry-run plans in seconds; one that runs past this is the group-job loop of old.
DRY_RUN_TIMEOUT_S = 300
TRIES = 20


def job_stats(text: str) -> dict[str, int]:
    """The last "Job stats" table of Snakemake's output: {rule: jobs, "total": jobs}."""
    tables = re.findall(r"Job stats:\njob\s+count\n[-\s]+\n((?:\S+\s+\d+\n)+)", text)
    assert tables, f"no job stats in the output:\n{text[-3000:]}"
    return {name: int(n) for name, n in re.findall(r"(\S+)\s+(\d+)\n", tables[-1])}


def listed_jobs(text: str) -> dict[str, int]:
    """How often each rule's jobs are listed in a dry-run (grouped jobs are indented)."""
    out: dict[str, int] = {}
    for name in re.findall(r"^\s*(?:local)?rule (\w+):$", text, flags=re.M):
        out[name] = out.get(name, 0) + 1
    return out


def no_conda_env() -> dict[str, str]:
    """The environment without any conda on PATH (as on a cluster without conda)."""
    path = [d for d in os.environ["PATH"].split(os.pathsep) if d and not Path(d, "conda").exists()]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONDA", "MAMBA"))}
    env.update(PATH=os.pathsep.join(path), PYTHONUNBUFFERED="1")
    return env


def slurm_dry_run(workdir: Path, config: Path, log: Path, *args: str) -> str:
    """`snakemake -n --workflow-profile profiles/slurm` with no conda reachable; its output (written
    to ``log``, so that a looping run cannot fill the memory) after it finished within the timeout."""
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-n",
        "--snakefile",
        str(ROOT / "Snakefile"),
        "--directory",
        str(workdir),
        "--workflow-profile",
        str(SLURM_PROFILE),
        "--configfile",
        str(config),
        *args,
    ]
    with open(log, "w") as fh:
        try:
            proc = subprocess.run(
                cmd,
                stdout=fh,
                stderr=subprocess.STDOUT,
                env=no_conda_env(),
                timeout=DRY_RUN_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"dry-run did not finish in {DRY_RUN_TIMEOUT_S} s: {' '.join(cmd)}")
    size = log.stat().st_size
    assert size < 20e6, f"dry-run wrote {size} bytes (a looping plan?): {' '.join(cmd)}"
    text = log.read_text()
    assert proc.returncode == 0, f"{' '.join(cmd)} (exit {proc.returncode}):\n{text[-4000:]}"
    return text


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """A new simulated cohort (a calibration and an experiment session), not yet processed."""
    from usvflow.simulate.cohort import simulate_cohort

    out = tmp_path_factory.mktemp("static_dag")
    simulate_cohort(out, sessions=1, seconds=1.0, seed=23)
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    cfg["stages"] = STAGES
    (out / "config.yaml").write_text(yaml.safe_dump(cfg))
    return out


@pytest.fixture(scope="module")
def planned_and_run(fresh, tmp_path_factory):
    """The dry-runs (workstation and profiles/slurm) of the new cohort, then its run."""
    cfg = fresh / "config.yaml"
    dry = snakemake(fresh, "-n", config=cfg)
    logs = tmp_path_factory.mktemp("static_dag_logs")
    slurm = slurm_dry_run(fresh, cfg, logs / "slurm_dry.log")
    run = snakemake(fresh, config=cfg)
    after = snakemake(fresh, "-n", config=cfg)
    return (
        dry.stdout + dry.stderr,
        slurm,
        run.stdout + run.stderr,
        after.stdout + after.stderr,
    )


def test_the_dry_run_lists_every_job_the_run_executes(planned_and_run):
    dry, slurm, run, after = planned_and_run
    planned = job_stats(dry)
    steps = re.findall(r"(\d+) of (\d+) steps \(100%\) done", run)
    assert steps, run[-3000:]
    done, total = map(int, steps[-1])
    assert done == total == planned["total"], (planned, steps[-1])
    assert job_stats(run) == planned
    # every stage's jobs are planned before anything ran: 24 channel chains, the memmap, the summary
    for rule, n in {"hpss": 24, "highpass_filter": 24, "detect_usvs": 24}.items():
        assert planned[rule] == n, planned
    assert planned["audio_memmap"] == planned["curate_usvs"] == planned["audio_sync_info"] == 1
    assert "Nothing to be done" in after, after[-2000:]


def test_the_slurm_profile_plans_the_same_jobs_each_once(planned_and_run):
    dry, slurm, _, _ = planned_and_run
    planned = job_stats(dry)
    assert job_stats(slurm) == planned
    assert listed_jobs(slurm) == {k: v for k, v in planned.items() if k != "total"}
    # the profile's groups: one video job per session, 24 channel chains in 4 jobs, calibration
    groups = re.findall(r"Group job (\w+) \(jobs in lexicogr\. order\):", slurm)
    assert sorted(groups) == sorted(["video"] + ["audio_channels"] * 4 + ["calibration"]), groups


def test_the_documented_memmap_name_is_the_workflow_file(planned_and_run, fresh):
    from usvflow.audio.memmap import open_memmap, parse_memmap_name

    folders = list(fresh.glob("Data/*/audio/hpss_filtered"))
    assert len(folders) == 1
    mmaps = list(folders[0].glob("*.mmap"))
    assert len(mmaps) == 1, mmaps
    fixed = list(folders[0].glob("*_concatenated_audio_hpss_filtered.dat"))
    assert len(fixed) == 1 and mmaps[0].samefile(fixed[0])
    assert mmaps[0].with_suffix(".json").samefile(fixed[0].with_suffix(".json"))
    meta = parse_memmap_name(mmaps[0])
    assert (
        open_memmap(fixed[0]).shape
        == (meta["n_samples"], meta["n_channels"])
        == (
            meta["n_samples"],
            24,
        )
    )


def test_20_slurm_dry_runs_finish_and_list_each_job_once(planned_and_run, fresh, tmp_path):
    """20 consecutive dry-runs through profiles/slurm on the processed cohort, alternately after a
    config change and with --forcerun, each finishing within the timeout and listing each pending
    job once (with the old checkpoint, such runs looped or listed hpss twice)."""
    cfg = yaml.safe_load((fresh / "config.yaml").read_text())
    for i in range(TRIES):
        args, config = [], fresh / "config.yaml"
        if i % 2 == 0:  # HPSS power 3, 5, 3, ... (the cohort ran with 4)
            cfg.setdefault("audio", {}).setdefault("hpss", {})["power"] = 3.0 + (i % 4) // 2 * 2
            config = tmp_path / f"config_{i}.yaml"
            config.write_text(yaml.safe_dump(cfg))
        else:
            args = ["--forcerun", "hpss"]
        text = slurm_dry_run(fresh, config, tmp_path / f"dry_{i}.log", *args)
        stats = job_stats(text)
        assert listed_jobs(text) == {k: v for k, v in stats.items() if k != "total"}, (
            i,
            stats,
        )
        # the 24 HPSS jobs and what reads their output, nothing upstream of them and not the
        # built-in detection, which reads the cropped channels
        assert stats["hpss"] == stats["highpass_filter"] == 24, (i, stats)
        assert "split_audio_channels" not in stats and "crop_audio_to_video" not in stats, stats
        assert "detect_usvs" not in stats, stats
        assert stats["audio_memmap"] == stats["curate_usvs"] == 1, (i, stats)
        groups = re.findall(r"Group job (\w+) \(jobs in lexicogr\. order\):", text)
        assert groups == ["audio_channels"] * 4, (i, groups)


def test_conda_is_opt_in(planned_and_run, fresh, tmp_path):
    """`--sdm conda` switches the conda environments on (where conda is missing: the error)."""
    with pytest.raises(AssertionError, match="conda"):
        slurm_dry_run(
            fresh,
            fresh / "config.yaml",
            tmp_path / "conda.log",
            "--sdm",
            "conda",
            "--forcerun",
            "hpss",
        )
