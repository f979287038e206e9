"""Adapter: vocalocator's dset.h5 (USV audio snippets, animal locations in mm) for one session."""

import numpy as np

from usvflow.workflow import setup

log = setup(snakemake)
from usvflow.audio.memmap import open_memmap_reader, parse_memmap_name  # noqa: E402
from usvflow.io.atomic import read_json  # noqa: E402
from usvflow.usv.curate import read_summary  # noqa: E402
from usvflow.usv.localize import arena_geometry, read_metric_tracks, write_dset  # noqa: E402

summ = read_summary(snakemake.input.summary)
mm = open_memmap_reader(snakemake.input.mmap)
sr = parse_memmap_name(snakemake.input.mmap)["sample_rate"]
fps = float(read_json(snakemake.input.frame_counts)["median_empirical_camera_sr"])
geo = arena_geometry(
    snakemake.input.arena,
    mm.shape[1],
    snakemake.config["assignment"]["builtin"]["mic_node_pattern"],
)
dims = np.ptp(geo["corners_xy"], axis=0)
tr = read_metric_tracks(snakemake.input.tracks)
try:
    n = tr["tracks"].shape[0]
    write_dset(snakemake.output[0], mm, sr, summ, lambda f: tr["tracks"][min(max(f, 0), n - 1)], tr["node_names"],
               fps, (float(dims[0]), float(dims[1])), tr["tracks"].shape[1])  # fmt: skip
finally:
    tr["file"].close()
log.info("dset.h5: %d USVs, arena %.1f x %.1f mm", len(summ), 1000 * dims[0], 1000 * dims[1])
