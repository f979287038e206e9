"""Adapter: one split channel -> cropped_to_video (sample-exact; the longer device resampled in NO SYNC)."""

from pathlib import Path

from usvflow.workflow import setup

log = setup(snakemake)
from usvflow.audio.crop import crop_file, load_plans  # noqa: E402

plans = load_plans(
    snakemake.input.info,
    Path(snakemake.input.frames[0]).parent,
    snakemake.params.devices,
    trigger_device=snakemake.params.trigger_device,
)
plan = plans[snakemake.wildcards.dev]
log.info("crop plan: %s (%s)", plan, plan.mapping)
crop_file(snakemake.input.wav, snakemake.output[0], plan)
