"""Shared preamble of the workflow scripts (``workflow/scripts/*.py``): log to the rule's log file."""

import logging
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
    return logging.getLogger(snakemake.rule)


def _one_line_input_errors(kind, exc, tb):
    """Bad input (InputError: the message names the file and the problem) ends the job with that one
    message in the rule's log, which Snakemake shows below its error; anything else keeps its traceback."""
    from .io.atomic import InputError

    if isinstance(exc, InputError):
        print(f"usvflow: error: {exc}", file=sys.stderr, flush=True)
        return
    sys.__excepthook__(kind, exc, tb)


def source_root() -> Path:
    """The folder that holds the ``usvflow`` package (for a subprocess in another Python env)."""
    return Path(__file__).resolve().parents[1]
