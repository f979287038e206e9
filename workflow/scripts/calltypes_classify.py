"""Adapter: summary + spectrograms + model -> audio/<sid>_usv_summary_call_types.csv (atomic)."""

from pathlib import Path

from usvflow.workflow import setup

log = setup(snakemake)
from usvflow.usv.calltypes import classify_summary, resolve_device  # noqa: E402

model_dir = Path(snakemake.input.model[0]).parent
device = resolve_device(snakemake.params.device)
out = classify_summary(snakemake.input.summary, snakemake.input.spectrograms, model_dir, snakemake.output[0],
                       device=device, expected_classes=snakemake.params.expected_classes,
                       threads=snakemake.threads, min_probability=snakemake.params.min_probability)  # fmt: skip
log.info(
    "%d USV(s) classified on %s: %s", len(out), device, out["call_type"].value_counts().to_dict()
)
