"""Adapter: a group's SpikeGLX recordings (sheet order) -> concatenated_<YYYYMMDD>_imec<N>.<ft>.bin/.meta."""

from usvflow.workflow import setup

log = setup(snakemake)
from usvflow.ephys.concat import concatenate_recordings  # noqa: E402

res = concatenate_recordings(
    list(zip(snakemake.input.bins, snakemake.input.metas)),
    snakemake.output.bin,
    snakemake.output.meta,
)
log.info(
    "concatenated %d recording(s): %d samples x %d channels",
    res["n_recordings"],
    res["n_samples"],
    res["n_saved_chans"],
)
