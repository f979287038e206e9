"""Snakemake on a simulated cohort for the tools tier (the workflow of this repository)."""

import subprocess
import sys
import time
from pathlib import Path

from .conftest import tool_env

ROOT = Path(__file__).resolve().parents[2]


def snakemake(workdir, *args, config, cores=2, timeout=3600):
    """Run the workflow; returns (CompletedProcess, wall seconds). Raises with the logs on failure."""
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
           "--cores", str(cores), "--configfile", str(config), "--workflow-profile", "none", *args]  # fmt: skip
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=tool_env(), timeout=timeout)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        logs = "\n".join(
            f"== {p}\n{p.read_text()[-3000:]}"
            for p in sorted(Path(workdir).rglob("logs/*.log"))[-4:]
        )
        raise AssertionError(
            f"snakemake failed ({proc.returncode}):\n{proc.stderr[-6000:]}\n{logs}"
        )
    return proc, wall
