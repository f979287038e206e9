"""Adapter: built-in localizer + assignment of one session's USVs (summary + memmap + poses)."""

from usvflow.workflow import setup

log = setup(snakemake)
from usvflow.io.atomic import read_json  # noqa: E402
from usvflow.usv.localize import assign_session  # noqa: E402

settings = dict(snakemake.params.settings)
pattern = settings.pop("mic_node_pattern")
fps = float(read_json(snakemake.input.frame_counts)["median_empirical_camera_sr"])
res = assign_session(
    snakemake.input.summary,
    snakemake.input.mmap,
    snakemake.input.tracks,
    snakemake.input.arena,
    fps,
    snakemake.output.estimates,
    snakemake.output.assigned,
    snakemake.output.plot,
    params=settings,
    mic_node_pattern=pattern,
    progress=True,
    workers=snakemake.threads,
)
log.info("%d of %d USVs assigned: %s", res["assigned"], res["usvs"], res["per_track"])
