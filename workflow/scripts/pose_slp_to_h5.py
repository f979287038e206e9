"""Adapter: a camera's .slp -> <serial>-<date_joint>.analysis.h5, padded to the camera's frame count."""

from usvflow.workflow import setup

log = setup(snakemake)
from usvflow.io.atomic import InputError, read_json  # noqa: E402
from usvflow.pose.slp import slp_to_analysis_h5  # noqa: E402

n_frames = None
if snakemake.input.counts:
    counts = read_json(snakemake.input.counts)
    serial = snakemake.wildcards.serial
    if serial not in counts:
        raise InputError(snakemake.input.counts, f"has no frame count of camera {serial}")
    n_frames = int(counts[serial][0])
summary = slp_to_analysis_h5(snakemake.input.slp, snakemake.output[0], n_frames=n_frames)
log.info("%s -> %s: %s", snakemake.input.slp, snakemake.output[0], summary)
