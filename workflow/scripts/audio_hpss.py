"""Adapter: cropped channel -> harmonic part (chunked HPSS equal to the whole-file computation)."""

from usvflow.workflow import setup

log = setup(snakemake)
from usvflow.audio.hpss import HPSSParams, hpss_file  # noqa: E402

params = HPSSParams.from_mapping(dict(snakemake.params.items()))
res = hpss_file(snakemake.input[0], snakemake.output[0], params)
log.info("hpss: %s", res)
