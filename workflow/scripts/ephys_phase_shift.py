"""Adapter: raw .ap.bin -> <session>.imec<N>.ap_phase_shifted.bin/.meta (ADC phase-shift copy)."""

from usvflow.workflow import setup

log = setup(snakemake)
from usvflow.ephys.phase_shift import phase_shift_copy  # noqa: E402

res = phase_shift_copy(
    snakemake.input.bin,
    snakemake.input.meta,
    snakemake.output.bin,
    snakemake.output.meta,
    workers=snakemake.threads,
)
log.info("phase-shifted copy of %s: %s", snakemake.input.bin, res)
