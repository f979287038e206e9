"""The workflow scripts' preamble: a bad input ends the job with one message in the rule's log."""

import re
import subprocess
import sys

SCRIPT = """
import sys, types
from usvflow.io.atomic import InputError
from usvflow.workflow import setup
log = setup(types.SimpleNamespace(log=[sys.argv[1]], rule="r"))
log.info("started")
if sys.argv[2] == "input":
    raise InputError("/data/m_250430145017.wav", "truncated WAV: the header claims 10 frames")
raise ZeroDivisionError("a bug")
"""


def test_input_error_is_one_line_in_the_log(tmp_path):
    log = tmp_path / "logs" / "r.log"
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(log), "input"], capture_output=True)
    assert proc.returncode == 1
    lines = log.read_text().splitlines()
    assert lines[-1] == (
        "usvflow: error: /data/m_250430145017.wav: truncated WAV: the header claims 10 frames"
    )
    assert "Traceback" not in log.read_text() and len(lines) == 2


def test_a_bug_keeps_its_traceback(tmp_path):
    log = tmp_path / "r.log"
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(log), "bug"], capture_output=True)
    assert proc.returncode == 1
    text = log.read_text()
    assert "Traceback" in text and "ZeroDivisionError: a bug" in text


RESOURCES = """
import subprocess, sys, types
import numpy as np
from usvflow.workflow import setup
log = setup(types.SimpleNamespace(log=[sys.argv[1]], rule="r"))
a = np.ones(200 * 2**20 // 8)  # 200 MiB touched in this process
subprocess.run([sys.executable, "-c", "import numpy as np; b = np.ones(300 * 2**20 // 8)"], check=True)
"""


def test_a_finished_job_logs_its_exact_peak_rss(tmp_path):
    """The high-water marks of the script and of its largest child, in MiB (what the session
    benchmark reads back), as the log's last line; the script's own, not the spawning process's
    (started from a process holding 600 MiB, as Snakemake holds ~150)."""
    log = tmp_path / "r.log"
    spawn = (
        "import subprocess, sys, numpy as np; big = np.ones(600 * 2**20 // 8); "
        "subprocess.run(sys.argv[1:], check=True)"
    )
    subprocess.run(
        [sys.executable, "-c", spawn, sys.executable, "-c", RESOURCES, str(log)], check=True
    )
    m = re.search(
        r"resources: peak RSS ([\d.]+) MB, largest child process ([\d.]+) MB; CPU ([\d.]+) s$",
        log.read_text().splitlines()[-1],
    )
    assert m, log.read_text()
    me, child, cpu = map(float, m.groups())
    assert 200 < me < 400 and 300 < child < 500 and cpu > 0
