"""Adapter: sync word + camera frame counts -> <session>_imec<N>_ev_sync.json (E/V verdict)."""

from usvflow.workflow import setup

log = setup(snakemake)
from usvflow.io.atomic import read_json, write_json  # noqa: E402
from usvflow.sync.ev import ev_sync_check, read_sync_word  # noqa: E402

ev = snakemake.params.ev
res = ev_sync_check(
    read_sync_word(snakemake.input.sync),
    snakemake.input.meta,
    read_json(snakemake.input.counts),
    session_id=snakemake.wildcards.session,
    probe=snakemake.wildcards.probe,
    bin_path=snakemake.input.bin,
    calibrated_rates=snakemake.params.calibrated_rates,
    triggerbox_bit=ev["triggerbox_bit"],
    min_largest_break_s=ev["min_largest_break_s"],
    tolerance_ms=ev["npx_ms_divergence_tolerance"],
)
if res.passed:
    log.info(
        "E/V sync passed: e-phys - video = %.3f ms (tolerance %s ms)",
        res.duration_difference_ms,
        res.tolerance_ms,
    )
else:
    log.warning("E/V sync FAILED: %s", res.problem)
    if snakemake.params.fail_on_mismatch:
        raise SystemExit(
            f"E/V sync of {snakemake.input.bin} failed (sync.fail_on_mismatch): {res.problem}"
        )
import numpy as np  # noqa: E402

from usvflow.io.atomic import atomic_open  # noqa: E402

onsets = (
    np.zeros(0, dtype=np.int64)
    if res.frame_onsets is None
    else np.asarray(res.frame_onsets, dtype=np.int64)
)
with atomic_open(snakemake.output.onsets, "wb") as fh:
    np.save(fh, onsets)
write_json(snakemake.output.json, res.to_dict())
