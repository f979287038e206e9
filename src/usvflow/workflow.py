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
    return logging.getLogger(snakemake.rule)


def source_root() -> Path:
    """The folder that holds the ``usvflow`` package (for a subprocess in another Python env)."""
    return Path(__file__).resolve().parents[1]
