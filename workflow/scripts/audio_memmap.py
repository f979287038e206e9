"""Adapter: 24 filtered channels -> one int16 samples x channels memmap + JSON sidecar (fixed names,
the documented names linked to them)."""

from pathlib import Path

from usvflow.workflow import setup

log = setup(snakemake)
from usvflow.audio.memmap import fixed_memmap_name, write_memmap  # noqa: E402

out = write_memmap(
    list(snakemake.input),
    Path(snakemake.output.mmap).parent,
    snakemake.wildcards.stamp,
    kind="hpss_filtered",
    fixed=True,
)
if (
    fixed_memmap_name(snakemake.wildcards.stamp, "hpss_filtered")
    != Path(snakemake.output.mmap).name
):
    raise RuntimeError(f"memmap written under another name than {snakemake.output.mmap}")
log.info("memmap: %s (documented name: %s)", snakemake.output.mmap, out)
