"""Adapter: one filtered channel -> das_annotations/<stem>_annotations.csv with the built-in detector."""

from usvflow.workflow import setup

log = setup(snakemake)
from usvflow.usv.detect import DetectParams, detect_file, write_das_csv  # noqa: E402

p = snakemake.params
params = DetectParams(f_lo_hz=p.f_lo_hz, f_hi_hz=p.f_hi_hz, thr_high_db=p.thr_high_db, thr_low_db=p.thr_low_db,
                      minlen_s=p.segment_minlen, fillgap_s=p.segment_fillgap)  # fmt: skip
df = detect_file(snakemake.input[0], params)
write_das_csv(df, snakemake.output[0])
log.info("%d USV(s) detected", len(df))
