"""Adapter: a device's Avisoft multichannel files -> audio/original/<dev>_<stamp>_chNN.wav (one pass)."""

from pathlib import Path

from usvflow.workflow import setup

log = setup(snakemake)
from usvflow.audio.split import split_device  # noqa: E402

paths, n = split_device(
    list(snakemake.input),
    Path(snakemake.output[0]).parent,
    snakemake.wildcards.dev,
    snakemake.wildcards.stamp,
    channels=snakemake.params.channels,
)
log.info("split %d files into %d channels of %d samples", len(snakemake.input), len(paths), n)
