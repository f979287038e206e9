"""Adapter: a session's recording + the day's sorter output -> <session>_<probe>_quality_metrics.csv."""

from pathlib import Path

from usvflow.workflow import setup

log = setup(snakemake)
from usvflow.ephys.concat import recording_key  # noqa: E402
from usvflow.ephys.quality import (  # noqa: E402
    METRIC_COLUMNS,
    QualitySettings,
    session_quality_metrics,
)
from usvflow.io.atomic import InputError, atomic_path, read_json  # noqa: E402

inp, sp = snakemake.input, snakemake.params.spikes
settings = QualitySettings(**snakemake.params.quality)
key = recording_key(Path(snakemake.params.raw_bin))
cp = read_json(inp.changepoints)
if key not in cp:
    raise InputError(inp.changepoints, f"has no entry {key!r}")
entry = cp[key]
if entry["tracking_start_end"] is None:
    import pandas as pd

    log.warning("%s: no tracking window (E/V check failed): no quality metrics", key)
    cols = ["label", "peak_channel", *METRIC_COLUMNS, "quality_label", "quality_failed"]
    table = pd.DataFrame(columns=cols, index=pd.Index([], name="cluster_id"))
else:
    table = session_quality_metrics(
        inp.bin,
        inp.meta,
        Path(inp.spike_times).parent,
        entry["session_start_end"][0],
        entry["tracking_start_end"],
        entry["sample_rate"],
        settings,
        remove_duplicates=sp["remove_duplicate_spikes"],
        censor_samples=int(round(sp["duplicate_censored_period_ms"] * 1e-3 * entry["sample_rate"])),
        n_jobs=snakemake.threads,
    )
    log.info(
        "%s: %d cluster(s), %d good by the rule",
        key,
        len(table),
        int((table["quality_label"] == "good").sum()),
    )
with atomic_path(Path(snakemake.output[0])) as tmp:
    table.to_csv(tmp, float_format="%.6g")
