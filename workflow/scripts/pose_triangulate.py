"""Adapter: per-camera analysis files + calibration -> <date_joint>_points3d.h5 (arena mode in calibration sessions)."""

from usvflow.workflow import setup

log = setup(snakemake)
from usvflow.io.atomic import read_json, write_json  # noqa: E402
from usvflow.pose.triangulate import triangulate  # noqa: E402

tri = dict(snakemake.params.tri)
arena = snakemake.params.session["kind"] == "calibration"
frames = None
if not arena:
    frames = tri.get("frame_restriction") or (
        0,
        int(read_json(snakemake.input.counts)["total_frame_number_least"]),
    )
h5 = dict(zip(snakemake.params.serials, snakemake.input.h5))
summary = triangulate(h5, snakemake.input.calibration, snakemake.output.points, tri, arena=arena, frames=frames,
                      threads=snakemake.threads, chunk=int(tri["chunk_frames"]))  # fmt: skip
log.info("triangulation: %s", {k: v for k, v in summary.items() if k != "qc"})
qc = dict(
    summary["qc"], frames=summary["frames"], views=summary["views"], session=snakemake.params.sid
)
write_json(snakemake.output.qc, qc)
