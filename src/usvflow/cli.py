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


def _cmd_split_audio(a):
    from .audio.split import split_device

    paths, n = split_device(a.files, a.out_dir, a.device, a.stamp, channels=a.channels)
    print(f"wrote {len(paths)} channels of {n} samples to {a.out_dir}")


def _cmd_crop_audio(a):
    from .audio.crop import crop_session
    from .io.atomic import read_json

    counts = read_json(a.frame_counts)
    session = Path(a.session)
    res = crop_session(
        session / "audio" / "original",
        session / "audio" / "cropped_to_video",
        session / "sync",
        session / "audio" / "audio_triggerbox_sync_info.json",
        a.devices,
        a.stamp,
        int(counts["total_frame_number_least"]),
        float(counts["total_video_time_least"]),
        trigger_device=a.trigger_device,
        triggerbox_channel=a.triggerbox_channel,
    )
    print(json.dumps(res["info"], indent=2))


def _cmd_hpss(a):
    from .audio.hpss import hpss_file

    print(hpss_file(a.input, a.output, n_fft=a.n_fft, hop=a.hop, kernel=tuple(a.kernel), power=a.power,
                    margin=tuple(a.margin)))  # fmt: skip


def _cmd_highpass(a):
    from .audio.highpass import design_sinc, highpass_file
    from .audio.wav import wav_info

    taps = design_sinc(wav_info(a.input).samplerate, hp_hz=a.freq_bounds[1], lp_hz=a.freq_bounds[0],
                       atten_db=a.atten_db)  # fmt: skip
    print(highpass_file(a.input, a.output, taps=taps))


def _cmd_memmap(a):
    from .audio.memmap import write_memmap

    print(write_memmap(a.wavs, a.out_dir, a.stamp, kind=a.kind))


def _cmd_detect_usvs(a):
    from .usv.detect import run_cli

    run_cli(a)


def _cmd_curate_usvs(a):
    from .usv.curate import curate_session

    session = Path(a.session)
    audio = session / "audio"
    mmaps = sorted((audio / "hpss_filtered").glob("*.mmap"))
    if len(mmaps) != 1:
        raise InputError(audio / "hpss_filtered", f"expected one .mmap, found {len(mmaps)}")
    csvs = sorted((audio / "das_annotations").glob("*_annotations.csv"))
    name = session.resolve().name
    out = Path(a.output) if a.output else audio / f"{name}_usv_summary.csv"
    svg = out.with_name(out.name.replace("_usv_summary.csv", "") + "_usv_signal_correlation_histogram.svg")
    params = {"filter_putative_noise": not a.no_filter, "peak_min": a.peak_min, "valley_frac": a.valley_frac,
              "coverage_bin_ms": a.coverage_bin_ms, "noise_corr_cutoff_min": a.corr_cutoff,
              "noise_var_cutoff_max": a.var_cutoff}  # fmt: skip
    df, stats = curate_session(csvs, mmaps[0], out, svg, params=params, title=name)
    print(f"{stats['n_detections']} detections -> {stats['n_merged']} merged -> {stats['n_kept']} USVs: {out}")


def _cmd_evaluate_detections(a):
    from .io.atomic import write_json
    from .usv.score import evaluate_paths, scores_table

    rows = evaluate_paths(a.detections, a.labels)
    print(scores_table(rows))
    if a.json:
        write_json(a.json, {name: s.as_dict() for name, s in rows})


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

    s = sub.add_parser("split-audio", help="split a device's Avisoft multichannel WAVs into mono channels")
    s.add_argument("files", nargs="+", help="the device's multichannel files (joined in name order)")
    s.add_argument("-o", "--out-dir", required=True)
    s.add_argument("--device", required=True)
    s.add_argument("--stamp", required=True, help="<YYMMDDHHMMSS> naming the outputs")
    s.add_argument("--channels", type=int, default=12)
    s.set_defaults(func=_cmd_split_audio)

    s = sub.add_parser("crop-audio", help="crop a session's split audio to the video (sync info + cropped WAVs)")
    s.add_argument("session", help="session folder (reads audio/original, writes audio/cropped_to_video)")
    s.add_argument("--frame-counts", required=True, help="<date_joint>_camera_frame_count_dict.json")
    s.add_argument("--stamp", required=True)
    s.add_argument("--devices", nargs="+", default=["m", "s"])
    s.add_argument("--trigger-device", default="both", choices=["both", "m", "s"])
    s.add_argument("--triggerbox-channel", type=int, default=4)
    s.set_defaults(func=_cmd_crop_audio)

    s = sub.add_parser("hpss", help="harmonic part of a mono WAV (chunked, equal to the whole-file result)")
    s.add_argument("input")
    s.add_argument("-o", "--output", required=True)
    s.add_argument("--n-fft", type=int, default=512)
    s.add_argument("--hop", type=int, default=128)
    s.add_argument("--kernel", type=int, nargs=2, default=[5, 60])
    s.add_argument("--power", type=float, default=4.0)
    s.add_argument("--margin", type=float, nargs=2, default=[4, 1])
    s.set_defaults(func=_cmd_hpss)

    s = sub.add_parser("highpass", help="linear-phase FIR filter of a mono WAV (SoX sinc semantics)")
    s.add_argument("input")
    s.add_argument("-o", "--output", required=True)
    s.add_argument("--freq-bounds", type=float, nargs=2, default=[0, 30000], help="[low, high] as the config")
    s.add_argument("--atten-db", type=float, default=120)
    s.set_defaults(func=_cmd_highpass)

    s = sub.add_parser("memmap", help="concatenate mono WAVs into one int16 samples x channels memmap")
    s.add_argument("wavs", nargs="+", help="channels in column order")
    s.add_argument("-o", "--out-dir", required=True)
    s.add_argument("--stamp", required=True)
    s.add_argument("--kind", default="hpss_filtered")
    s.set_defaults(func=_cmd_memmap)

    s = sub.add_parser("detect-usvs", help="built-in USV detector on any WAV >= 192 kHz (DAS CSV format)")
    from .usv.detect import add_cli_arguments

    add_cli_arguments(s)
    s.set_defaults(func=_cmd_detect_usvs)

    s = sub.add_parser("curate-usvs", help="merge a session's per-channel detections into <session>_usv_summary.csv")
    s.add_argument("session", help="session folder (reads audio/das_annotations and audio/hpss_filtered/*.mmap)")
    s.add_argument("-o", "--output", help="summary CSV (default audio/<session>_usv_summary.csv); the SVG beside it")
    s.add_argument("--no-filter", action="store_true", help="keep putative noise (no correlation/variance cut)")
    s.add_argument("--peak-min", type=int, default=8)
    s.add_argument("--valley-frac", type=float, default=0.5)
    s.add_argument("--coverage-bin-ms", type=float, default=1.0)
    s.add_argument("--corr-cutoff", type=float, default=0.15)
    s.add_argument("--var-cutoff", type=float, default=0.001)
    s.set_defaults(func=_cmd_curate_usvs)

    s = sub.add_parser("evaluate-detections", help="precision/recall/F1 and onset/offset errors against labels")
    s.add_argument("detections", help="detection file or folder (DAS CSV, summary CSV, two-column tables)")
    s.add_argument("labels", help="label file or folder (gt_<key>.csv paired with *_<key>.csv)")
    s.add_argument("--json", help="also write the scores as JSON")
    s.set_defaults(func=_cmd_evaluate_detections)

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
