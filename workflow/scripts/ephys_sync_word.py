"""Adapter: a probe's SpikeGLX .bin -> <session>_imec<N>_sync_ch_data.npy (one streamed pass)."""

from usvflow.workflow import setup

log = setup(snakemake)
from usvflow.sync.ev import extract_sync_word  # noqa: E402

n = extract_sync_word(snakemake.input.bin, snakemake.input.meta, snakemake.output[0])
log.info("sync word of %s: %d samples", snakemake.input.bin, n)
