"""Adapter: <date_joint>_points3d.h5 -> <date_joint>_points3d_translated_rotated_metric.h5 (arena frame, metres)."""

from pathlib import Path

from usvflow.workflow import setup

log = setup(snakemake)
import yaml  # noqa: E402

from usvflow.io.atomic import InputError, read_json  # noqa: E402
from usvflow.pose.recoordinate import recoordinate_animals, recoordinate_arena  # noqa: E402

a = snakemake.params.arena
inp = snakemake.input
if snakemake.params.session["kind"] == "calibration":
    summary = recoordinate_arena(
        inp.points, snakemake.output[0], a["static_reference_len"], a["rail_offset"]
    )
else:
    names = None
    if "metadata" in inp.keys():
        meta = yaml.safe_load(Path(inp.metadata).read_text()) or {}
        subjects = [
            s.get("subject_id") for s in meta.get("Subjects", []) or [] if isinstance(s, dict)
        ]
        names = [str(s) for s in subjects if s] or None
    rate = read_json(inp.counts).get("median_empirical_camera_sr")
    try:
        summary = recoordinate_animals(inp.points, inp.arena, snakemake.output[0], a["static_reference_len"],
                                       track_names=names, experimental_code=snakemake.params.session["experimental_code"],
                                       frame_rate=float(rate) if rate is not None else float("nan"))  # fmt: skip
    except InputError as exc:
        if names and "subject names" in str(
            exc
        ):  # metadata lists other animals than the tracks: keep track names
            log.warning("%s; using the SLEAP track names", exc)
            summary = recoordinate_animals(inp.points, inp.arena, snakemake.output[0], a["static_reference_len"],
                                           experimental_code=snakemake.params.session["experimental_code"],
                                           frame_rate=float(rate) if rate is not None else float("nan"))  # fmt: skip
        else:
            raise
log.info("re-coordinated: %s", summary)
