"""Shared preamble of the workflow scripts: log to the rule's log file, import the repo's library."""

import logging
import sys
from pathlib import Path


def setup(snakemake):
    """Send stderr and logging to the rule's log, make ``usvflow`` importable, return a logger."""
    src = Path(snakemake.scriptdir).resolve().parents[1] / "src"
    if str(src) not in sys.path:
        sys.path.insert(0, str(src))
    if snakemake.log:
        Path(snakemake.log[0]).parent.mkdir(parents=True, exist_ok=True)
        sys.stderr = open(snakemake.log[0], "w", buffering=1)
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", force=True
    )
    return logging.getLogger(snakemake.rule)
