"""Adapter: one cropped channel -> das_annotations/<stem>_annotations.csv with the built-in detector."""

from usvflow.workflow import setup

log = setup(snakemake)
from usvflow.usv.detect import DetectParams, detect_file, write_das_csv  # noqa: E402

# the rule's params are the config section usv_detection.builtin: its keys are DetectParams' fields
params = DetectParams().updated(**dict(snakemake.params.items()))
df = detect_file(snakemake.input[0], params)
write_das_csv(df, snakemake.output[0])
log.info("%d USV(s) detected", len(df))
