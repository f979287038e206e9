"""The ``usvflow`` command: every step of the workflow runnable on its own."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .io.atomic import InputError


def _cmd_simulate(a):
    from .simulate.cohort import simulate_cohort

    res = simulate_cohort(
        a.out,
        sessions=a.sessions,
        seconds=a.seconds,
        seed=a.seed,
        calibration=not a.no_calibration,
        calls_per_minute=a.calls_per_minute,
    )
    print(f"simulated {len(res['sessions'])} session(s) in {res['root']}")
    print(f"  config:   {res['config']}")
    print(f"  sessions: {res['sheet']}")
    print(f"run: snakemake --cores 2 --configfile {res['config']}")


def _cmd_discover(a):
    from .io.session import discover

    lay = discover(a.session_id or Path(a.folder).name, a.folder, camera_serials=a.serials)
    print(json.dumps(lay.to_dict(), indent=2))


def _cmd_validate(a):
    import yaml

    from .io.config import read_sessions, validate_config

    schemas = Path(a.schemas)
    with open(a.config) as fh:
        cfg = validate_config(yaml.safe_load(fh) or {}, schemas / "config.schema.yaml", source=a.config)
    sheet = read_sessions(cfg["sessions"], schemas / "sessions.schema.yaml")
    print(f"{a.config}: valid; {len(sheet)} session(s) in {cfg['sessions']}")


def _cmd_config_docs(a):
    from .io.config import load_schema, render_config_readme

    schemas = Path(a.schemas)
    readme = Path(a.readme)
    text = render_config_readme(
        readme.read_text() if readme.exists() else "",
        load_schema(schemas / "config.schema.yaml"),
        load_schema(schemas / "sessions.schema.yaml"),
    )
    readme.write_text(text)
    print(f"wrote {readme}")


def _cmd_frame_counts(a):
    from .io.atomic import write_json
    from .io.loopbio import camera_dirs, read_store
    from .video.stage import camera_frame_count_dict

    stores = [read_store(d) for d in camera_dirs(a.video_dir) if not Path(d).name.startswith("calibration_")]
    counts = camera_frame_count_dict(stores)
    if a.output:
        write_json(a.output, counts)
    print(json.dumps(counts, indent=2))


def _cmd_concat_video(a):
    from .video.stage import concatenate_chunks

    concatenate_chunks(a.chunks, a.output)


def _cmd_reencode_video(a):
    from .video.stage import reencode

    reencode(a.input, a.output, a.fps, crf=a.crf, preset=a.preset)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="usvflow", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("simulate", help="write a simulated cohort (all streams + ground truth)")
    s.add_argument("out", help="output folder (created)")
    s.add_argument("--sessions", type=int, default=1, help="experiment sessions (default 1)")
    s.add_argument("--seconds", type=float, default=4.0, help="seconds of recorded video per session (default 4)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    s.add_argument("--calls-per-minute", type=float, default=90.0, help="USV rate (default 90/min)")
    s.add_argument("--no-calibration", action="store_true", help="do not add a calibration session")
    s.set_defaults(func=_cmd_simulate)

    s = sub.add_parser("discover", help="print what a session folder holds")
    s.add_argument("folder")
    s.add_argument("--session-id")
    s.add_argument("--serials", nargs="+", default=["21372315", "21372316", "21369048", "22085397", "21241563"])
    s.set_defaults(func=_cmd_discover)

    s = sub.add_parser("validate", help="validate a config and its sessions sheet")
    s.add_argument("config")
    s.add_argument("--schemas", default=str(Path(__file__).resolve().parents[2] / "workflow" / "schemas"))
    s.set_defaults(func=_cmd_validate)

    s = sub.add_parser("config-docs", help="regenerate the settings tables of config/README.md from the schemas")
    s.add_argument("--readme", default=str(Path(__file__).resolve().parents[2] / "config" / "README.md"))
    s.add_argument("--schemas", default=str(Path(__file__).resolve().parents[2] / "workflow" / "schemas"))
    s.set_defaults(func=_cmd_config_docs)

    s = sub.add_parser("frame-counts", help="camera frame counts and empirical rates of a session's video/ folder")
    s.add_argument("video_dir")
    s.add_argument("-o", "--output", help="write <date_joint>_camera_frame_count_dict.json here")
    s.set_defaults(func=_cmd_frame_counts)

    s = sub.add_parser("concat-video", help="join Loopbio mp4 chunks by stream copy")
    s.add_argument("chunks", nargs="+")
    s.add_argument("-o", "--output", required=True)
    s.set_defaults(func=_cmd_concat_video)

    s = sub.add_parser("reencode-video", help="re-encode a video at a given (empirical) frame rate")
    s.add_argument("input")
    s.add_argument("-o", "--output", required=True)
    s.add_argument("--fps", type=float, required=True)
    s.add_argument("--crf", type=int, default=16)
    s.add_argument("--preset", default="veryfast")
    s.set_defaults(func=_cmd_reencode_video)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except InputError as exc:
        print(f"usvflow {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
