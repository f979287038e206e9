"""Runs through a real single-node SLURM cluster with profiles/slurm (see tests/slurm_cluster.py).

The profile is used as shipped (groups, squeue polling, resources) except for what a pip-only,
GPU-less test machine and a quick test need; see ``slurm_profile``. Every DAG level costs at least
one status-poll interval (10 s here), so the workflows run here are kept shallow.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SLURM_PROFILE = REPO / "profiles" / "slurm" / "config.yaml"

# Keys of profiles/slurm that the test replaces, and why.
TEST_OVERRIDES = {
    # First status check 10 s after submission (plugin default 40 s; it adds 10 s per check
    # while nothing finishes). A toy job takes ~6 s here, so one check usually suffices.
    "slurm-init-seconds-before-status-checks": 10,
    "seconds-between-status-checks": 10,
}
# Keys dropped if a site adds them: the test venv already has every dependency and has no conda
# (Snakemake's --sdm cannot be switched off from the command line once a profile sets it).
TEST_DROPS = ("software-deployment-method", "conda-prefix")
# Resources the test cluster cannot offer (no GPUs) or does not know (site partitions/accounts).
SITE_KEYS = (
    "gpu",
    "gpu_model",
    "gres",
    "cpus_per_gpu",
    "tasks_per_gpu",
    "slurm_partition",
    "slurm_account",
    "constraint",
    "qos",
)

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]

try:
    from slurm_cluster import ENABLE_HINT, unavailable_reason
except ImportError:  # tests/ imported as a package (rootdir on sys.path)
    from tests.slurm_cluster import ENABLE_HINT, unavailable_reason

# One line for the whole module where SLURM is not installed (CI sets USVFLOW_REQUIRE_SLURM=1 and
# installs it; there the slurm_cluster fixture fails instead of skipping).
if os.environ.get("USVFLOW_REQUIRE_SLURM") != "1" and unavailable_reason():
    pytest.skip(
        f"SLURM tests skipped ({unavailable_reason()}); {ENABLE_HINT}", allow_module_level=True
    )


@pytest.fixture(scope="module")
def slurm_profile(tmp_path_factory, slurm_cluster) -> Path:
    """profiles/slurm/config.yaml adapted to the test cluster and the test venv.

    Drops conda deployment, polls every 10 s, removes GPU/partition/account requests and caps every
    per-rule memory request at a quarter of the node's memory (a group job may sum several).
    """
    profile = yaml.safe_load(SLURM_PROFILE.read_text())
    assert profile["executor"] == "slurm"
    assert profile["slurm-status-command"] == "squeue"
    assert "software-deployment-method" not in profile, "conda is opt-in (--sdm conda)"
    for key in TEST_DROPS:
        profile.pop(key, None)
    profile.update(TEST_OVERRIDES)
    mem_cap = slurm_cluster.real_memory_mb // 4
    for res in [
        profile.get("default-resources") or {},
        *(profile.get("set-resources") or {}).values(),
    ]:
        for key in SITE_KEYS:
            res.pop(key, None)
        if isinstance(res.get("mem_mb"), int):
            res["mem_mb"] = min(res["mem_mb"], mem_cap)
    out = tmp_path_factory.mktemp("profile") / "slurm"
    out.mkdir()
    (out / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return out


def run_snakemake(workdir: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--directory", str(workdir), *args]
    proc = subprocess.run(
        cmd,
        cwd=workdir,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
    proc.cmd_text = " ".join(cmd)
    return proc


def planned_submissions(dry_run_output: str) -> int:
    """sbatch submissions a dry-run plans: its group jobs plus its ungrouped jobs (at column 0;
    those of a group are indented), except local ones and `all` (no shell/script: run locally)."""
    groups = len(re.findall(r"^\[.*\] Group job \w+ ", dry_run_output, flags=re.M))
    single = re.findall(r"^rule (\w+):$", dry_run_output, flags=re.M)
    return groups + sum(1 for name in single if name != "all")


def report(proc, cluster) -> str:
    return (
        f"$ {proc.cmd_text}\n(exit {proc.returncode})\n{proc.stdout[-8000:]}\n"
        + cluster.diagnostics()
    )


TOY_SNAKEFILE = """
ITEMS = ["a", "b"]


rule all:
    input:
        "gather.txt",


rule item:
    output:
        "items/{item}.txt",
    log:
        "logs/item_{item}.log",
    shell:
        "(echo {wildcards.item} job=$SLURM_JOB_ID host=$(hostname) > {output}) 2> {log}"


rule gather:
    input:
        expand("items/{item}.txt", item=ITEMS),
    output:
        "gather.txt",
    log:
        "logs/gather.log",
    shell:
        "cat {input} > {output} 2> {log}"
"""

FAILING_SNAKEFILE = """
rule fail:
    output:
        "never.txt",
    log:
        "logs/fail.log",
    shell:
        "echo 'usvflow-test: deliberate failure, exit code 3' > {log}; exit 3"
"""


def test_toy_workflow_runs_through_slurm(tmp_path, slurm_profile, slurm_cluster):
    (tmp_path / "Snakefile").write_text(TOY_SNAKEFILE)
    proc = run_snakemake(tmp_path, "--profile", str(slurm_profile))
    assert proc.returncode == 0, report(proc, slurm_cluster)
    lines = (tmp_path / "gather.txt").read_text().splitlines()
    assert [ln.split()[0] for ln in lines] == ["a", "b"]
    # Each item ran inside a SLURM job (the job step keeps SLURM_JOB_ID).
    job_ids = [ln.split()[1] for ln in lines]
    assert all(j.startswith("job=") and j != "job=" for j in job_ids), lines
    assert len(set(job_ids)) == 2, lines
    # item x2 and gather were submitted with sbatch; `all` ran locally.
    assert proc.stdout.count("has been submitted with SLURM jobid") == 3, report(
        proc, slurm_cluster
    )
    assert "4 of 4 steps (100%) done" in proc.stdout


def test_failing_job_fails_the_run_and_shows_its_log(tmp_path, slurm_profile, slurm_cluster):
    (tmp_path / "Snakefile").write_text(FAILING_SNAKEFILE)
    proc = run_snakemake(tmp_path, "--profile", str(slurm_profile))
    assert proc.returncode != 0, report(proc, slurm_cluster)
    assert "has been submitted with SLURM jobid" in proc.stdout, report(proc, slurm_cluster)
    assert "Error in rule fail" in proc.stdout, report(proc, slurm_cluster)
    # show-failed-logs: the rule's log text is printed by the controlling snakemake.
    assert "usvflow-test: deliberate failure, exit code 3" in proc.stdout, report(
        proc, slurm_cluster
    )
    assert not (tmp_path / "never.txt").exists()


def test_real_workflow_runs_through_slurm(tmp_path, slurm_profile, slurm_cluster):
    snakefile = REPO / "Snakefile"
    if not snakefile.exists():
        pytest.skip("the workflow's Snakefile does not exist yet")
    cohort = tmp_path / "cohort"
    sim = subprocess.run(
        [
            sys.executable,
            "-m",
            "usvflow.cli",
            "simulate",
            str(cohort),
            "--sessions",
            "1",
            "--seconds",
            "1",
            "--seed",
            "3",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
    )
    assert sim.returncode == 0, sim.stdout
    # The video stage keeps the cluster test short (every DAG level costs a status poll); the audio
    # chain's grouping is checked by the dry-run test below.
    cfg = yaml.safe_load((cohort / "config.yaml").read_text())
    cfg["stages"] = ["video"]
    (cohort / "config.yaml").write_text(yaml.safe_dump(cfg))
    args = [
        "--snakefile",
        str(snakefile),
        "--configfile",
        str(cohort / "config.yaml"),
        "--profile",
        str(slurm_profile),
        "--cores",
        "2",
    ]
    plan = run_snakemake(cohort, "-n", *args, timeout=300)
    assert plan.returncode == 0, report(plan, slurm_cluster)
    planned = planned_submissions(plan.stdout)
    proc = run_snakemake(cohort, *args, timeout=600)
    assert proc.returncode == 0, report(proc, slurm_cluster)
    # one sbatch per planned group job and per ungrouped job, none twice (`all` runs locally)
    submitted = proc.stdout.count("has been submitted with SLURM jobid")
    assert submitted == planned == 2, (submitted, planned, report(proc, slurm_cluster))
    # The profile's `groups:` bundle a session's video work into one SLURM job.
    assert "slurm_logs/group_video" in proc.stdout, report(proc, slurm_cluster)
    counts = sorted(cohort.glob("**/video/*_camera_frame_count_dict.json"))
    assert counts, report(proc, slurm_cluster)
