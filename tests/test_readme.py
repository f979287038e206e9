"""The README's "Running on your own data" works as written: its sessions sheet, cohort config and
commands, run from the repository with the venv's executables first on PATH, on a simulated cohort
that stands in for /data (the run line as a dry-run: the run itself is tested in tests/workflow)."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def section_blocks(title: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end > 0 else None]
    blocks = re.findall(r"^( *)```[a-z]*\n(.*?)^\1```", section, flags=re.M | re.S)
    return ["".join(ln[len(ind) :] + "\n" for ln in body.splitlines()) for ind, body in blocks]


def test_blocks_are_the_sheet_config_and_commands():
    sheet, config, commands = section_blocks("Running on your own data")
    assert sheet.startswith("session_id\tfolder\tkind\t")
    assert "sessions: sessions.tsv" in config
    assert commands.splitlines()[0].startswith("snakemake -n ")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A simulated cohort with the README's session ids: <data>/Data/<session>."""
    from usvflow.simulate.cohort import simulate_cohort

    out = tmp_path_factory.mktemp("data")
    simulate_cohort(out, sessions=2, seconds=1.0, seed=2)
    return out


def test_the_readme_blocks_run(data):
    sheet, config, commands = (
        b.replace("/data/", f"{data}/") for b in section_blocks("Running on your own data")
    )
    cohort = data / "cohort7"
    cohort.mkdir()
    (cohort / "sessions.tsv").write_text(sheet)
    (cohort / "config.yaml").write_text(config)
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env["PATH"]])
    outputs = []
    for line in commands.splitlines():
        argv = shlex.split(line, comments=True)
        if argv[:2] == ["snakemake", "--cores"]:
            argv.append("-n")
        proc = subprocess.run(
            argv,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert proc.returncode == 0, f"$ {shlex.join(argv)}\n{proc.stdout[-4000:]}"
        outputs.append(proc.stdout)
    dry, run, validate, discover = outputs
    # 3 sessions: the calibration's 5 re-encodes, and both experiments' video, audio and USVs
    assert re.search(r"^reencode_calibration_video\s+5$", dry, flags=re.M), dry[-3000:]
    assert re.search(r"^curate_usvs\s+2$", dry, flags=re.M), dry[-3000:]
    assert ": valid (the workflow's start-up checks passed" in validate, validate
    assert len(re.findall(r"^\s+\d{8}_\d{6} \(", validate, flags=re.M)) == 3, validate
    assert "20250430_145017" in discover
