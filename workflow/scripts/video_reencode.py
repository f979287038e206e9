"""Adapter: concatenated camera video -> <serial>-<date_joint>.mp4 re-encoded at the empirical rate."""

from usvflow.workflow import setup

log = setup(snakemake)
from usvflow.io.atomic import read_json  # noqa: E402
from usvflow.video.stage import reencode  # noqa: E402

counts = read_json(snakemake.input.counts)
serial = snakemake.wildcards.serial
fps = counts[serial][1]
log.info("re-encoding camera %s at %.6f fps", serial, fps)
reencode(
    snakemake.input.video,
    snakemake.output[0],
    fps,
    crf=snakemake.params.crf,
    preset=snakemake.params.preset,
)
