"""Adapter: per-camera analysis files + calibration -> <date_joint>_points3d.h5 (arena mode in calibration sessions)."""

from usvflow.workflow import setup

log = setup(snakemake)
from usvflow.io.atomic import read_json  # noqa: E402
from usvflow.pose.triangulate import triangulate  # noqa: E402

tri = dict(snakemake.params.tri)
arena = snakemake.params.session["kind"] == "calibration"
frames = None
if not arena:
    frames = tri.get("frame_restriction") or (0, int(read_json(snakemake.input.counts)["total_frame_number_least"]))
h5 = dict(zip(snakemake.params.serials, snakemake.input.h5))
summary = triangulate(h5, snakemake.input.calibration, snakemake.output[0], tri, arena=arena, frames=frames,
                      threads=snakemake.threads, chunk=int(tri["chunk_frames"]))  # fmt: skip
log.info("triangulation: %s", summary)
