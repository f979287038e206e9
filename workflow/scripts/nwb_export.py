"""Adapter: a session's products -> <session>/nwb/<session>.nwb (usvflow.nwb.export)."""

from pathlib import Path

from usvflow.workflow import setup

log = setup(snakemake)
from usvflow.nwb.export import (  # noqa: E402
    NwbSettings,
    ProbeProducts,
    SessionProducts,
    write_session_nwb,
)

inp, info = snakemake.input, snakemake.params.session


def get(name):
    return Path(inp[name]) if name in inp.keys() else None


products = SessionProducts(
    session_id=info["session_id"],
    date_joint=info["date_joint"],
    kind=info["kind"],
    experimental_code=info["experimental_code"],
    **{
        k: get(k)
        for k in (
            "metadata_yaml",
            "usv_summary",
            "usv_assigned",
            "usv_call_types",
            "source_estimates",
            "frame_counts",
            "frame_pulses",
            "points3d_metric",
            "arena_metric",
            "calibration_toml",
            "av_sync",
        )
    },
    memmap=get("memmap_sidecar").with_suffix(".dat") if get("memmap_sidecar") else None,
    probes={
        p: ProbeProducts(
            **{
                k: get(f"{p}_{k}")
                for k in ("meta", "manifest", "cluster_dir", "ev_sync", "quality")
            }
        )
        for p in info["probes"]
    },
)
summary = write_session_nwb(products, snakemake.output[0], NwbSettings(**snakemake.params.settings))
log.info("wrote %s", summary)
