"""Adapter: 24 filtered channels -> one int16 samples x channels memmap + JSON sidecar (channel by channel)."""

from pathlib import Path

from usvflow.workflow import setup

log = setup(snakemake)
from usvflow.audio.memmap import write_memmap  # noqa: E402

out = write_memmap(
    list(snakemake.input),
    Path(snakemake.output.mmap).parent,
    snakemake.wildcards.stamp,
    kind="hpss_filtered",
)
if str(out) != snakemake.output.mmap:
    raise RuntimeError(f"memmap written as {out}, expected {snakemake.output.mmap}")
log.info("memmap: %s", out)
