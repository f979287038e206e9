"""Adapter: a session's annotation CSVs + memmap -> <session>_usv_summary.csv and its noise histogram."""

from usvflow.workflow import setup

log = setup(snakemake)
from usvflow.usv.curate import curate_session  # noqa: E402

df, stats = curate_session(
    snakemake.input.csvs,
    snakemake.input.mmap,
    snakemake.output.summary,
    snakemake.output.histogram,
    params=dict(snakemake.params.settings),
    title=snakemake.wildcards.session,
    progress=True,
)
log.info(
    "%d detections -> %d merged USVs -> %d kept (rejected: %s; correlation cut %.3g, variance cut %.3g)",
    stats["n_detections"], stats["n_merged"], stats["n_kept"], stats["rejected"], stats["corr_cut"], stats["var_cut"],
)  # fmt: skip
