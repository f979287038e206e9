"""Adapter: calibration footage of one camera -> calibration_images/<serial>-<date_joint>-calibration.mp4."""

from pathlib import Path

from usvflow.workflow import setup

log = setup(snakemake)
from usvflow.io.atomic import temporary_name  # noqa: E402
from usvflow.io.loopbio import read_store  # noqa: E402
from usvflow.video.stage import concatenate_chunks, empirical_rate, reencode  # noqa: E402

store = read_store(Path(snakemake.input.chunks[0]).parent)
fps = empirical_rate(store.frame_number, store.frame_time)
log.info("calibration camera %s: %d frames at %.4f fps", store.serial, len(store.frame_number), fps)
# the joined chunks go to a temporary beside the output, removed here or by the next run if killed
out = Path(snakemake.output[0])
joined = temporary_name(out.with_name(out.stem + ".joined.mp4"))
try:
    concatenate_chunks(list(snakemake.input.chunks), joined)
    reencode(joined, out, fps, crf=snakemake.params.crf, preset=snakemake.params.preset)
finally:
    joined.unlink(missing_ok=True)
