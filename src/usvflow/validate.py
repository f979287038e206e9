"""``usvflow validate``: the workflow's own start-up checks, without running a job.

The checks are not re-implemented here: the config files are read (a YAML error names the file,
line and column), then Snakemake parses the workflow with them in a dry-run. That runs exactly the
code of a real start-up: schema validation with defaults, the sessions sheet, the discovery of every
session folder (headers of every raw file included) and each enabled stage's requirements, and it
builds the job graph. A failure is reported as the one message the workflow gives, without the
traceback.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .io.config import read_yaml

REPO = Path(__file__).resolve().parents[2]
SNAKEFILE = REPO / "Snakefile"


@dataclass
class Result:
    ok: bool
    message: str  # the error (one message), or the dry-run's summary of pending jobs
    output: str  # everything Snakemake printed


_HEADER = re.compile(r"^(\w*(?:Error|Exception))(?: in (?:file|rule|line) .*)?:?\s*$")


def error_message(output: str) -> str:
    """The user-facing message of a failed Snakemake start-up: the text after the error header,
    without Snakemake's ``File ...`` traceback lines and without the ``usvflow: `` prefix."""
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if _HEADER.match(line.strip()) and i + 1 < len(lines):
            body = []
            for nxt in lines[i + 1 :]:
                if nxt.startswith("  File ") or not nxt.strip():
                    break
                body.append(nxt.strip())
            if body:
                text = " ".join(body)
                return text.removeprefix("usvflow: ")
    tail = [ln for ln in lines if ln.strip()]
    return tail[-1] if tail else "snakemake failed without a message"


def stage_table(output: str) -> str:
    """The start-up table (per session, the stages that run and why others are skipped)."""
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("usvflow: stages per session"):
            out = [line.removeprefix("usvflow: ")]
            for nxt in lines[i + 1 :]:
                if not nxt.startswith("  "):
                    break
                out.append(nxt)
            return "\n".join(out)
    return ""


def validate(configs: list[str | os.PathLike], cwd: str | os.PathLike | None = None) -> Result:
    """Run the workflow's start-up (a dry-run) on ``configs`` (later files override earlier ones)."""
    for c in configs:
        read_yaml(c, "config file")  # file/line/column of a syntax error; Snakemake names neither
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(SNAKEFILE),
        "--dry-run",
    ]
    cmd += ["--workflow-profile", "none", "--cores", "1", "--quiet", "rules"]
    cmd += ["--configfile", *[str(Path(c).resolve()) for c in configs]]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), *filter(None, [env.get("PYTHONPATH")])])
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        return Result(False, error_message(out), out)
    return Result(True, "", out)
