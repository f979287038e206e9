"""Adapter: a device's Avisoft multichannel files -> audio/original/<dev>_<stamp>_chNN.wav (one pass)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir)))
from _common import setup  # noqa: E402

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
