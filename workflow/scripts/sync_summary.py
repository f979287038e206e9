"""Adapter: sync/<session>_av_sync.json -> sync/<session>_summary.svg."""

from usvflow.workflow import setup

log = setup(snakemake)
from usvflow.io.atomic import read_json  # noqa: E402
from usvflow.sync.plot import plot_summary  # noqa: E402

info = plot_summary(read_json(snakemake.input[0]), snakemake.output[0])
log.info("panels: %s", info)
