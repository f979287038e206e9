"""Adapter: Loopbio frame metadata of every camera -> <date_joint>_camera_frame_count_dict.json."""

from usvflow.workflow import setup

log = setup(snakemake)
from usvflow.io.atomic import write_json  # noqa: E402
from usvflow.io.loopbio import read_store  # noqa: E402
from usvflow.video.stage import camera_frame_count_dict  # noqa: E402

stores = [read_store(d) for d in snakemake.params.cameras]
counts = camera_frame_count_dict(stores)
log.info("frame counts: %s", counts)
write_json(snakemake.output[0], counts)
