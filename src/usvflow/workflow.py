"""Shared preamble of the workflow scripts (``workflow/scripts/*.py``): log to the rule's log file."""

import atexit
import logging
import resource
import sys
from pathlib import Path


def setup(snakemake):
    """Send stderr and logging to the rule's log file (if the rule has one), return a logger."""
    if snakemake.log:
        Path(snakemake.log[0]).parent.mkdir(parents=True, exist_ok=True)
        sys.stderr = open(snakemake.log[0], "w", buffering=1)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        force=True,
    )
    sys.excepthook = _one_line_input_errors
    log = logging.getLogger(snakemake.rule)
    atexit.register(log_resources, log)
    return log


#: the line :func:`log_resources` writes (``bench/session.py`` reads it back from the rule's log)
RESOURCES_LINE = "resources: peak RSS {self_mb:.1f} MB, largest child process {child_mb:.1f} MB; CPU {cpu_s:.2f} s"


def _own_peak_rss_mb() -> float:
    """This process's own peak RSS in MiB: ``VmHWM``, the high-water mark of its memory map. Not
    ``getrusage``'s ``ru_maxrss``: that keeps the high-water mark of the process it was spawned from
    across ``exec``, so a small script started by a 150-MB Snakemake reads 150 MB."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # no /proc: an upper bound


def log_resources(log: logging.Logger) -> dict:
    """Log the peak RSS of this process (exact) and of its largest finished child (``getrusage``:
    the larger of the child's own peak and this process's RSS when it started the child, so an
    upper bound) and the CPU seconds of both (MiB, the unit of Snakemake's max_rss); returns them."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    vals = {
        "self_mb": _own_peak_rss_mb(),
        "child_mb": kids.ru_maxrss / 1024.0,  # KiB on Linux
        "cpu_s": me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime,
    }
    log.info(RESOURCES_LINE.format(**vals))
    return vals


def _one_line_input_errors(kind, exc, tb):
    """Bad input (InputError: the message names the file and the problem) ends the job with that one
    message in the rule's log, which Snakemake shows below its error; anything else keeps its traceback.
    A failed job logs no resources line (the error stays the log's last line)."""
    from .io.atomic import InputError

    atexit.unregister(log_resources)

    if isinstance(exc, InputError):
        print(f"usvflow: error: {exc}", file=sys.stderr, flush=True)
        return
    sys.__excepthook__(kind, exc, tb)


def source_root() -> Path:
    """The folder that holds the ``usvflow`` package (for a subprocess in another Python env)."""
    return Path(__file__).resolve().parents[1]
