"""Adapter: a group's recordings + E/V verdicts -> changepoints_info_<YYYYMMDD>_imec<N>.json."""

from usvflow.workflow import setup

log = setup(snakemake)
from usvflow.ephys.concat import changepoints  # noqa: E402
from usvflow.io.atomic import read_json, write_json  # noqa: E402

recs = []
for s in snakemake.params.sessions:
    recs.append(dict(s, ev=None if s["ev"] is None else read_json(s["ev"])))
cp = changepoints(recs, snakemake.params.calibrated_rates)
for key, e in cp.items():
    log.info(
        "%s: samples %s, tracking %s, E/V passed %s",
        key,
        e["session_start_end"],
        e["tracking_start_end"],
        e["ev_sync_passed"],
    )
write_json(snakemake.output[0], cp)
