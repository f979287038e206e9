"""Adapter: a session's products -> its overview figures / cohort-table row; rows -> the cohort CSV."""

import sys

from usvflow.workflow import setup

log = setup(snakemake)
from usvflow.io.atomic import read_json, write_json  # noqa: E402
from usvflow.report import overview as ov  # noqa: E402

inp = snakemake.input
rule = snakemake.rule


def get(name):
    return inp[name] if name in inp.keys() else None


def many(name):
    v = get(name)
    return [] if v is None else ([v] if isinstance(v, str) else list(v))


if rule == "cohort_overview":
    df = ov.write_cohort_table([read_json(p) for p in inp], snakemake.output[0])
    log.info("cohort overview: %d session(s), columns %s", len(df), list(df.columns))
    sys.exit(0)

sid = snakemake.wildcards.session
usvs = ov.load_usvs(get("summary"), get("assigned"), get("call_types")) if get("summary") else None
window = ov.tracking_window(get("counts")) if get("counts") else None
av = read_json(get("av")) if get("av") else None
evs = {ov.probe_of(p): read_json(p) for p in many("ev")}
units = {ov.probe_of(p): ov.read_units(p) for p in many("units")}
pose = read_json(get("pose")) if get("pose") else None
out = snakemake.output[0]
if rule == "overview_row":
    row = ov.session_row(sid, usvs, window, av, evs, units, pose)
    write_json(out, row)
    log.info("overview of %s: %s", sid, row)
elif rule == "overview_timeline":
    ov.plot_timeline(usvs, window, out, title=f"{sid}: {len(usvs)} USVs")
elif rule == "overview_gallery":
    from usvflow.usv.spectrogram import load_spectrograms

    ov.plot_gallery(usvs, load_spectrograms(get("spectrograms")), out, per_type=int(snakemake.params.per_type),
                    title=f"{sid}: example calls per type (highest SNR)")  # fmt: skip
elif rule == "overview_pose":
    ov.plot_pose_qc(pose, out, title=f"{sid}: {pose.get('message', '')}")
elif rule == "session_explorer":
    import pandas as pd

    from usvflow.report.explorer import (
        explorer_data,
        read_arena_corners,
        read_poses,
        write_explorer,
    )
    from usvflow.usv.spectrogram import load_spectrograms

    specs = load_spectrograms(get("spectrograms")) if get("spectrograms") else None
    est = pd.read_csv(get("estimates"), dtype={"usv_id": str}) if get("estimates") else None
    poses = read_poses(get("poses")) if get("poses") else None
    corners = read_arena_corners(get("arena")) if get("arena") else None
    data = explorer_data(sid, usvs, specs, est, poses, get("video"), window,
                         frame_width=int(snakemake.params.frame_width), arena_corners=corners)  # fmt: skip
    write_explorer(data, out)
    log.info("explorer of %s: %d calls, %d with a frame", sid, len(data["calls"]),
             sum("image" in c for c in data["calls"]))  # fmt: skip
elif rule == "overview_sync_units":
    ov.plot_sync_units(av, evs, units, out, title=sid)
else:
    raise RuntimeError(f"report_overview.py: unknown rule {rule}")
