"""Adapter: calibration footage of one camera -> calibration_images/<serial>-<date_joint>-calibration.mp4."""

import tempfile
from pathlib import Path

from usvflow.workflow import setup

log = setup(snakemake)
from usvflow.io.loopbio import read_store  # noqa: E402
from usvflow.video.stage import concatenate_chunks, empirical_rate, reencode  # noqa: E402

store = read_store(Path(snakemake.input.chunks[0]).parent)
fps = empirical_rate(store.frame_number, store.frame_time)
log.info("calibration camera %s: %d frames at %.4f fps", store.serial, len(store.frame_number), fps)
with tempfile.TemporaryDirectory(dir=Path(snakemake.output[0]).parent.parent) as tmp:
    joined = Path(tmp) / "joined.mp4"
    concatenate_chunks(list(snakemake.input.chunks), joined)
    reencode(joined, snakemake.output[0], fps, crf=snakemake.params.crf, preset=snakemake.params.preset)
