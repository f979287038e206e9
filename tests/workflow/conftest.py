import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def snakemake(workdir, *args, check=True, config=None):
    """Run the workflow of this repository with ``workdir`` as working directory."""
    cmd = [
        *SNAKEMAKE,
        "--snakefile",
        str(ROOT / "Snakefile"),
        "--directory",
        str(workdir),
        "--cores",
        "2",
    ]
    if config:
        cmd += ["--configfile", str(config)]
    cmd += ["--workflow-profile", "none", *args]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
        )
    return proc


@pytest.fixture(scope="session")
def cohort3(tmp_path_factory):
    """A simulated cohort of 3 two-second experiment sessions and a calibration session."""
    from usvflow.simulate.cohort import simulate_cohort

    out = tmp_path_factory.mktemp("cohort3")
    simulate_cohort(out, sessions=3, seconds=2.0, seed=7, frame_time_jitter_s=1e-5)
    # these tests are about the video stage and the DAG; the audio chain has its own test module
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    cfg["stages"] = ["video"]
    (out / "config.yaml").write_text(yaml.safe_dump(cfg))
    return out


@pytest.fixture
def cohort_copy(cohort3, tmp_path):
    """A private copy of the simulated cohort (for tests that alter it)."""
    dst = tmp_path / "cohort"
    shutil.copytree(cohort3, dst, symlinks=True)
    cfg = (dst / "config.yaml").read_text().replace(str(cohort3), str(dst))
    (dst / "config.yaml").write_text(cfg)
    return dst
