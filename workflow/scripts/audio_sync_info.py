"""Adapter: triggerbox pulses in the LSB -> audio_triggerbox_sync_info.json + frame onsets per device."""

from pathlib import Path

from usvflow.workflow import setup

log = setup(snakemake)
from usvflow.audio.crop import write_sync_outputs  # noqa: E402
from usvflow.io.atomic import read_json  # noqa: E402

counts = read_json(snakemake.input.counts)
devices = list(snakemake.params.devices)
trigger = dict(zip(devices, snakemake.input.trigger))
info = write_sync_outputs(
    trigger,
    snakemake.output.info,
    Path(snakemake.output.frames[0]).parent,
    devices,
    int(counts["total_frame_number_least"]),
    float(counts["total_video_time_least"]),
    trigger_device=snakemake.params.trigger_device,
)
log.info("sync info: %s", info)
