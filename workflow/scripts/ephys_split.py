"""Adapter: the day's sorter output + changepoints -> <session>/ephys/imec<N>/cluster_data/ + manifest."""

from pathlib import Path

from usvflow.workflow import setup

log = setup(snakemake)
from usvflow.ephys.concat import recording_key  # noqa: E402
from usvflow.ephys.split import split_session  # noqa: E402
from usvflow.io.atomic import InputError, read_json, write_json  # noqa: E402

inp, sp = snakemake.input, snakemake.params.spikes
probe = snakemake.wildcards.probe
key = recording_key(Path(inp.meta).with_suffix(".bin"))
cp = read_json(inp.changepoints)
if key not in cp:
    raise InputError(inp.changepoints, f"has no entry {key!r}")
entry = cp[key]
counts = read_json(inp.counts)
ks_dir = Path(inp.spike_times).parent
if entry["tracking_start_end"] is None:
    # The E/V check failed: no trustworthy tracking window. Record why; write no clusters.
    Path(snakemake.output.folder).mkdir(parents=True, exist_ok=True)
    manifest = {"probe": probe, "recording": key, "sorter_dir": str(ks_dir), "files": [],
                "skipped": f"no tracking window (E/V check: {entry['ev_sync_problem']})"}  # fmt: skip
    log.warning("%s: %s", key, manifest["skipped"])
else:
    import numpy as np

    onsets = np.load(inp.onsets) + (
        entry["tracking_start_end"][0] - entry["tracking_start_end_in_file"][0]
    )
    censor = int(round(sp["duplicate_censored_period_ms"] * 1e-3 * entry["sample_rate"]))
    manifest = split_session(
        ks_dir,
        snakemake.output.folder,
        probe,
        entry["tracking_start_end"],
        entry["sample_rate"],
        float(counts["median_empirical_camera_sr"]),
        int(counts["total_frame_number_least"]),
        min_spike_num=sp["min_spike_num"],
        remove_duplicates=sp["remove_duplicate_spikes"],
        censor_samples=censor,
        frame_onsets=onsets,
    )
    manifest = {"recording": key, **manifest, "skipped": None}
    log.info("%s: %d cluster file(s)", key, len(manifest["files"]))
if inp.quality:
    from usvflow.ephys.quality import manifest_with_quality, read_quality_table

    q = Path(inp.quality)
    manifest = manifest_with_quality(
        manifest, read_quality_table(q), q.name, snakemake.params.thresholds
    )
write_json(snakemake.output.manifest, manifest)
