"""Adapter (sync.fail_on_mismatch): fail on a failed A/V verdict, else write sync/<session>_av_sync.passed."""

from usvflow.workflow import setup

log = setup(snakemake)
from usvflow.io.atomic import atomic_open, read_json  # noqa: E402

res = read_json(snakemake.input[0])
if not res.get("passed"):
    msg = f"A/V sync check failed ({snakemake.input[0]}):\n  " + "\n  ".join(res.get("reasons", []))
    log.error(msg)
    raise SystemExit(msg)
with atomic_open(snakemake.output[0]) as fh:
    fh.write(f"A/V sync verdict: pass ({snakemake.input[0]})\n")
log.info("A/V sync verdict: pass")
