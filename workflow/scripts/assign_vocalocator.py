"""Adapter: vocalocator(-ssl) outputs -> <session>_usv_summary_assigned.csv (emitter = track name)."""

import numpy as np

from usvflow.workflow import setup

log = setup(snakemake)
from usvflow.io.atomic import InputError, read_json  # noqa: E402
from usvflow.usv.curate import read_summary, write_summary  # noqa: E402
from usvflow.usv.localize import (  # noqa: E402
    LocalizeParams,
    assign,
    read_metric_tracks,
    vocalocator_ssl_assignments,
)

summ = read_summary(snakemake.input.summary)
tr = read_metric_tracks(snakemake.input.tracks)
names = tr["track_names"]
if snakemake.params.method == "vocalocator-ssl":
    a = vocalocator_ssl_assignments(snakemake.input.predictions, len(summ))
else:
    # legacy vocalocator: its point prediction (mm, nose xy first) with the built-in confidence model
    import h5py

    settings = {k: v for k, v in snakemake.params.settings.items() if k != "mic_node_pattern"}
    p = LocalizeParams.from_mapping(settings)
    fps = float(read_json(snakemake.input.frame_counts)["median_empirical_camera_sr"])
    node = tr["node_names"].index(p.node)
    with h5py.File(snakemake.input.predictions, "r") as h:
        if "point_predictions" not in h:
            raise InputError(snakemake.input.predictions, "no 'point_predictions' dataset")
        pts = np.asarray(h["point_predictions"][()], np.float64).reshape(len(summ), -1) / 1000.0
    n = tr["tracks"].shape[0]
    a = np.array([assign(pts[i, :2], np.asarray(tr["tracks"][min(int(t * fps), n - 1), :, node, :2]), p)[0]
                  for i, t in enumerate(summ["start"])], dtype=np.int64)  # fmt: skip
tr["file"].close()
bad = (a >= len(names)) | (a < -1)
if bad.any():
    raise InputError(
        snakemake.input.predictions, f"assignment {a[bad][0]} for {len(names)} tracks {names}"
    )
summ["emitter"] = np.array([names[k] if k >= 0 else None for k in a], dtype=object)
write_summary(summ, snakemake.output[0])
log.info("%d of %d USVs assigned", int((a >= 0).sum()), len(summ))
