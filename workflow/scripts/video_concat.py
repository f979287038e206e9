"""Adapter: Loopbio mp4 chunks of one camera -> video/concatenated_temp_<serial>.mp4 (stream copy)."""

from usvflow.workflow import setup

log = setup(snakemake)
from usvflow.video.stage import concatenate_chunks  # noqa: E402

log.info("concatenating %d chunks", len(snakemake.input))
concatenate_chunks(list(snakemake.input), snakemake.output[0])
