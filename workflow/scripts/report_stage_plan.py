"""Adapter: the start-up stage table (params.rows, from workflow/rules/common/plan.smk) -> report/stage_plan.csv."""

import csv

from usvflow.workflow import setup

log = setup(snakemake)
from usvflow.io.atomic import atomic_open  # noqa: E402

rows = snakemake.params.rows
with atomic_open(snakemake.output[0], "w", newline="") as fh:
    w = csv.writer(fh)
    w.writerow(["session", "kind", "stage", "runs", "why_skipped"])
    w.writerows(rows)
log.info("stage plan: %d session(s), %d row(s)", len({r[0] for r in rows}), len(rows))
