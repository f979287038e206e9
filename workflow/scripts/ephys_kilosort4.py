"""Adapter: concatenated recording -> kilosort4/ (Kilosort4 on the GPU, calibrated sample rate).

With ``--sdm conda`` the rule runs in workflow/envs/kilosort.yaml. Without it, Kilosort runs in the
Python ``ephys.sorting.python`` when set, else is imported from the running Python if it can be, else
run with ``conda run -n <ephys.sorting.conda_env>``.
"""

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

from usvflow.workflow import setup, source_root

log = setup(snakemake)
from usvflow.io.spikeglx import calibrated_rate  # noqa: E402

rate = calibrated_rate(snakemake.input.meta, snakemake.params.calibrated_rates)
args = [snakemake.input.bin, snakemake.input.meta, snakemake.params.results_dir, repr(rate)]
log.info("Kilosort4 on %s at %r Hz", snakemake.input.bin, rate)
src = str(source_root())
environ = dict(os.environ, PYTHONPATH=src + os.pathsep + os.environ.get("PYTHONPATH", ""))
if snakemake.params.python:
    cmd = [snakemake.params.python, "-m", "usvflow.ephys.kilosort", *args]
    log.info("running %s", " ".join(cmd))
    subprocess.run(cmd, check=True, env=environ, stdout=sys.stderr, stderr=sys.stderr)
elif importlib.util.find_spec("kilosort") is not None:
    from usvflow.ephys.kilosort import run_kilosort4

    run_kilosort4(*args[:3], rate)
else:
    env = snakemake.params.conda_env
    conda = shutil.which("conda") or shutil.which("mamba")
    if conda is None:
        raise SystemExit(
            f"Kilosort4 is not importable here and there is no conda to run env {env!r}: "
            "use --sdm conda (workflow/envs/kilosort.yaml) or install kilosort"
        )
    cmd = [
        conda,
        "run",
        "--no-capture-output",
        "-n",
        env,
        "python",
        "-m",
        "usvflow.ephys.kilosort",
        *args,
    ]
    log.info("running %s", " ".join(cmd))
    subprocess.run(cmd, check=True, env=environ, stdout=sys.stderr, stderr=sys.stderr)
missing = [p for p in snakemake.output if not Path(p).is_file()]
if missing:
    raise SystemExit(f"Kilosort4 did not write {missing}")
