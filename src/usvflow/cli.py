"""The ``usvflow`` command: every step of the workflow runnable on its own."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .io.atomic import InputError
from .io.cli_options import settings_from_args


def _frame_size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected HEIGHTxWIDTH (e.g. 1024x1280), got {text!r}"
        ) from None
    return h, w


def _cmd_simulate(a):
    from .simulate.cohort import N_AP_FULL, REAL_FRAME_SIZE, simulate_cohort

    frame_size, probe_channels = a.frame_size, a.probe_channels
    if a.real_size:
        frame_size = frame_size or REAL_FRAME_SIZE
        probe_channels = probe_channels or N_AP_FULL + 1
    kw = {} if frame_size is None else {"frame_size": frame_size}
    if probe_channels is not None:
        kw["probe_channels"] = probe_channels
    res = simulate_cohort(
        a.out,
        sessions=a.sessions,
        seconds=a.seconds,
        seed=a.seed,
        calibration=not a.no_calibration,
        calls_per_minute=a.calls_per_minute,
        pose=not a.no_pose,
        progress=not a.no_progress,
        workers=a.workers,
        **kw,
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
    from .validate import validate

    res = validate(a.config)
    if not res.ok:
        raise InputError(None, res.message)
    names = " + ".join(a.config)
    print(
        f"{names}: valid (the workflow's start-up checks passed: config, sessions sheet, every session folder, each enabled stage's requirements)"
    )
    from .validate import stage_table

    print(stage_table(res.output))
    if a.verbose:
        print(res.output.rstrip())


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

    stores = [
        read_store(d)
        for d in camera_dirs(a.video_dir)
        if not Path(d).name.startswith("calibration_")
    ]
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
    from .audio.hpss import HPSSParams, hpss_file

    print(hpss_file(a.input, a.output, HPSSParams(**settings_from_args(a, a.settings))))


def _cmd_highpass(a):
    from .audio.highpass import design_sinc, highpass_file
    from .audio.wav import wav_info

    taps = design_sinc(wav_info(a.input).samplerate, hp_hz=a.freq_bounds[1], lp_hz=a.freq_bounds[0],
                       atten_db=a.stopband_attenuation_db)  # fmt: skip
    print(highpass_file(a.input, a.output, taps=taps))


def _cmd_memmap(a):
    from .audio.memmap import write_memmap

    print(write_memmap(a.wavs, a.out_dir, a.stamp, kind=a.kind))


def _cmd_detect_usvs(a):
    from .usv.detect import run_cli

    run_cli(a)


def _cmd_calltypes(a):
    from .usv import calltypes_cli

    {"export-spectrograms": calltypes_cli.run_export, "train-calltypes": calltypes_cli.run_train,
     "classify-calltypes": calltypes_cli.run_classify}[a.command](a)  # fmt: skip


def _cmd_av_sync(a):
    import yaml

    from .io.config import validate_config
    from .io.session import discover
    from .sync.av import run_session

    cfg = {}
    if a.config:
        with open(a.config) as fh:
            cfg = yaml.safe_load(fh) or {}
    cfg.setdefault("sessions", "unused")
    schema = Path(a.schemas) / "config.schema.yaml"
    cfg = validate_config(cfg, schema, source=a.config or "defaults")
    lay = discover(a.session_id or Path(a.session).name, a.session, devices=cfg["audio"]["devices"],
                   channels_per_device=cfg["audio"]["channels_per_device"], sample_rate=cfg["audio"]["sample_rate"],
                   camera_serials=cfg["video"]["camera_serials"], video_extension=cfg["video"]["extension"])  # fmt: skip
    res = run_session(
        lay, a.products or a.session, cfg["sync"]["av"], cfg["audio"]["devices"], force_leds=a.force
    )
    for dev, e in res["devices"].items():
        st = e.get("stats", {})
        if st.get("n"):
            print(f"device {dev}: {st['n']} IPIs, median {st['median_ms']:.2f} ms, mean {st['mean_ms']:.2f} ms, "
                  f"max |d| {st['max_abs_ms']:.2f} ms")  # fmt: skip
    print(f"A/V sync verdict: {res['verdict']}" + "".join(f"\n  {r}" for r in res["reasons"]))
    if not res["passed"] and cfg["sync"]["fail_on_mismatch"]:
        raise SystemExit(1)


def _rates(pairs):
    out = {}
    for p in pairs or []:
        hs, sep, rate = p.partition("=")
        if not sep:
            raise SystemExit(f"--calibrated-rate expects HEADSTAGE_SN=RATE, got {p!r}")
        out[hs] = float(rate)
    return out


def _cmd_ev_sync(a):
    import numpy as np

    from .io.atomic import atomic_open, read_json, write_json
    from .sync.ev import ev_sync_check, extract_sync_word, read_sync_word

    b = Path(a.bin)
    meta = Path(a.meta) if a.meta else b.with_suffix(".meta")
    name = b.name.split(".")[0]
    probe = a.probe or next((p for p in b.name.split(".") if p.startswith("imec")), "imec0")
    session = a.session_id or name
    out = Path(a.out_dir) if a.out_dir else b.parent
    npy = out / f"{session}_{probe}_sync_ch_data.npy"
    if not npy.exists() or a.force:
        extract_sync_word(b, meta, npy)
    res = ev_sync_check(read_sync_word(npy), meta, read_json(a.frame_counts), session_id=session, probe=probe,
                        bin_path=str(b), calibrated_rates=_rates(a.calibrated_rate), triggerbox_bit=a.triggerbox_bit,
                        min_largest_break_s=a.min_largest_break_s, tolerance_ms=a.npx_ms_divergence_tolerance)  # fmt: skip
    with atomic_open(out / f"{session}_{probe}_frame_onsets.npy", "wb") as fh:
        np.save(
            fh,
            np.zeros(0, np.int64)
            if res.frame_onsets is None
            else np.asarray(res.frame_onsets, np.int64),
        )
    write_json(out / f"{session}_{probe}_ev_sync.json", res.to_dict())
    print(json.dumps(res.to_dict(), indent=2))
    if not res.passed:
        raise InputError(b, f"E/V sync failed: {res.problem}")


def _cmd_concat_ephys(a):
    from .ephys.concat import concatenate_recordings

    recs = [(b, Path(b).with_suffix(".meta")) for b in a.bins]
    out = Path(a.output)
    print(json.dumps(concatenate_recordings(recs, out, out.with_suffix(".meta")), indent=2))


def _cmd_split_spikes(a):
    import numpy as np

    from .ephys.split import split_session
    from .io.atomic import read_json, write_json

    cp = read_json(a.changepoints)
    if a.recording not in cp:
        raise InputError(a.changepoints, f"no entry {a.recording!r} (entries: {', '.join(cp)})")
    e = cp[a.recording]
    if e["tracking_start_end"] is None:
        raise InputError(
            a.changepoints, f"{a.recording}: no tracking window ({e.get('ev_sync_problem')})"
        )
    counts = read_json(a.frame_counts)
    onsets = None
    if a.onsets:
        onsets = np.load(a.onsets) + (
            e["tracking_start_end"][0] - e["tracking_start_end_in_file"][0]
        )
    probe = a.recording.rsplit(".", 1)[-1]
    man = split_session(a.sorter_dir, a.out_dir, probe, e["tracking_start_end"], e["sample_rate"],
                        float(counts["median_empirical_camera_sr"]), int(counts["total_frame_number_least"]),
                        min_spike_num=a.min_spikes, remove_duplicates=not a.keep_duplicates,
                        censor_samples=int(round(a.censored_period_ms * 1e-3 * e["sample_rate"])),
                        frame_onsets=onsets)  # fmt: skip
    write_json(Path(a.out_dir).parent / f"{probe}_cluster_data_manifest.json", man)
    print(f"wrote {len(man['files'])} cluster file(s) to {a.out_dir}")


def _session_memmap(session: Path) -> Path:
    """The one concatenated memmap of a session's audio/hpss_filtered/."""
    folder = session / "audio" / "hpss_filtered"
    mmaps = sorted(folder.glob("*.mmap"))
    if len(mmaps) != 1:
        raise InputError(folder, f"expected one .mmap, found {len(mmaps)}")
    return mmaps[0]


def _cmd_curate_usvs(a):
    from .usv.curate import curate_session

    session = Path(a.session)
    audio = session / "audio"
    mmap = _session_memmap(session)
    csvs = sorted((audio / "das_annotations").glob("*_annotations.csv"))
    name = session.resolve().name
    out = Path(a.output) if a.output else audio / f"{name}_usv_summary.csv"
    svg = out.with_name(
        out.name.replace("_usv_summary.csv", "") + "_usv_signal_correlation_histogram.svg"
    )
    params = settings_from_args(a, a.settings)
    df, stats = curate_session(csvs, mmap, out, svg, params=params, title=name)
    print(
        f"{stats['n_detections']} detections -> {stats['n_merged']} merged -> {stats['n_kept']} USVs: {out}"
    )


def _cmd_assign_usvs(a):
    from .io.atomic import read_json
    from .usv.localize import assign_session

    session = Path(a.session)
    name = session.resolve().name
    audio = session / "audio"
    mmap = _session_memmap(session)
    fps = a.fps
    if fps is None:
        counts = sorted((session / "video").glob("*_camera_frame_count_dict.json"))
        if not counts:
            raise InputError(session / "video", "no *_camera_frame_count_dict.json: give --fps")
        fps = float(read_json(counts[0])["median_empirical_camera_sr"])
    loc = audio / "sound_localization"
    settings = settings_from_args(a, a.settings)
    pattern = settings.pop("mic_node_pattern")
    res = assign_session(audio / f"{name}_usv_summary.csv", mmap, a.tracks, a.arena, fps,
                         loc / f"{name}_source_estimates.csv", audio / f"{name}_usv_summary_assigned.csv",
                         loc / f"{name}_sound_sources.svg", params=settings, mic_node_pattern=pattern)  # fmt: skip
    print(f"{res['assigned']} of {res['usvs']} USVs assigned: {res['per_track']}")


def _cmd_evaluate_detections(a):
    from .io.atomic import write_json
    from .usv.score import evaluate_paths, scores_table

    if a.protocol:
        from .usv.protocol import protocol_report, write_report_json

        text, res = protocol_report(a.real or None, n_sim=a.sim_sessions, sim_seconds=a.sim_seconds,
                                    n_noise=a.noise_sessions, noise_seconds=a.noise_seconds,
                                    hpss_channels=a.hpss_channels)  # fmt: skip
        print(text)
        if a.json:
            write_report_json(a.json, res)
        return
    if not (a.detections and a.labels):
        raise InputError(None, "give DETECTIONS and LABELS, or --protocol")
    rows = evaluate_paths(a.detections, a.labels)
    print(scores_table(rows))
    if a.json:
        write_json(a.json, {name: s.as_dict() for name, s in rows})


def _cmd_compare_truth(a):
    from .io.atomic import write_json
    from .simulate.compare import compare_truth, format_comparison

    rows = compare_truth(a.cohort)
    print(format_comparison(rows))
    if a.json:
        write_json(a.json, rows)


def _named_paths(items, what):
    out = {}
    for it in items:
        name, sep, path = it.partition("=")
        if not sep or not name or not path:
            raise InputError(None, f"{what} must be given as NAME=PATH, got {it!r}")
        out[name] = path
    return out


def _cmd_slp_to_h5(a):
    from .pose.slp import slp_to_analysis_h5

    print(slp_to_analysis_h5(a.slp, a.output, n_frames=a.frames))


def _cmd_calibrate_cameras(a):
    from .pose.calibrate import calibrate

    out = Path(a.output)
    stem = out.name[: -len(".toml")] if out.name.endswith(".toml") else out.name
    base = stem[: -len("_calibration")] if stem.endswith("_calibration") else stem
    board = settings_from_args(a, a.settings)
    summary = calibrate(_named_paths(a.videos, "videos"), board, out, out.with_name(f"{stem}.metadata.h5"),
                        out.with_name(f"{base}_reprojection_histogram.svg"), threads=a.threads)  # fmt: skip
    print(json.dumps(summary, indent=2))


def _cmd_triangulate(a):
    from .pose.triangulate import triangulate

    tri = {}
    if a.config:
        import yaml

        with open(a.config) as fh:
            tri = ((yaml.safe_load(fh) or {}).get("pose") or {}).get("triangulation") or {}
    summary = triangulate(_named_paths(a.h5, "h5"), a.calibration, a.output, tri, arena=a.arena,
                          frames=tuple(a.frames) if a.frames else None, threads=a.threads)  # fmt: skip
    print(json.dumps(summary, indent=2))


def _cmd_recoordinate(a):
    from .pose.recoordinate import recoordinate_animals, recoordinate_arena

    if Path(a.points3d).resolve() == Path(a.arena).resolve():
        print(recoordinate_arena(a.arena, a.output, a.static_reference_len, a.rail_offset))
    else:
        print(recoordinate_animals(a.points3d, a.arena, a.output, a.static_reference_len, track_names=a.track_names,
                                   experimental_code=a.exp_code, frame_rate=a.frame_rate))  # fmt: skip


def _cmd_to_nwb(a):
    import yaml

    from .io.config import validate_config
    from .nwb.export import NwbSettings, find_products, write_session_nwb

    cfg = {}
    if a.config:
        with open(a.config) as fh:
            cfg = yaml.safe_load(fh) or {}
    schema = Path(a.schemas) / "config.schema.yaml"
    cfg = validate_config(cfg, schema, source=a.config or "defaults")
    products = find_products(a.session_dir, a.calibration)
    if a.experimental_code is not None:
        products.experimental_code = a.experimental_code
    sid = products.session_id
    out = Path(a.output) if a.output else Path(a.session_dir) / "nwb" / f"{sid}.nwb"
    summary = write_session_nwb(products, out, NwbSettings(**cfg["nwb"]))
    print(json.dumps(summary, indent=2))


def _cmd_check_model(a):
    from usvflow import modelcheck

    argv = [a.tool, a.model] + (["--exe", a.exe] if a.exe else ["--python", a.python])
    code = modelcheck.main(argv)
    if code:
        raise SystemExit(code)


def build_parser() -> argparse.ArgumentParser:
    from .io.cli_options import add_settings_options
    from .io.config import SCHEMAS, schema_defaults

    audio = schema_defaults("audio")  # the options' defaults are the workflow's (config schema)
    from . import __version__

    p = argparse.ArgumentParser(prog="usvflow", description=__doc__)
    p.add_argument("--version", action="version", version=f"usvflow {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("simulate", help="write a simulated cohort (all streams + ground truth)")
    s.add_argument("out", help="output folder (created)")
    s.add_argument("--sessions", type=int, default=1, help="experiment sessions (default 1)")
    s.add_argument(
        "--seconds",
        type=float,
        default=4.0,
        help="seconds of recorded video per session (default 4)",
    )
    s.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    s.add_argument("--calls-per-minute", type=float, default=90.0, help="USV rate (default 90/min)")
    s.add_argument("--no-calibration", action="store_true", help="do not add a calibration session")
    s.add_argument(
        "--no-pose",
        action="store_true",
        help="no pose streams (SLEAP files, ChArUco footage, arena labels)",
    )
    s.add_argument(
        "--frame-size",
        type=_frame_size,
        metavar="HxW",
        help="camera frame size, height x width (default 128x160; the real cameras: 1024x1280)",
    )
    s.add_argument(
        "--probe-channels",
        type=int,
        metavar="N",
        help="saved channels of the Neuropixels probe, sync channel included (default 33; "
        "a full NP1.0 recording: 385)",
    )
    s.add_argument(
        "--real-size",
        action="store_true",
        help="every stream at its real size: 1024x1280 frames and a 385-channel probe "
        "(audio is always 24 x 250 kHz)",
    )
    s.add_argument("--no-progress", action="store_true", help="no progress bars")
    s.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="cameras encoded at the same time (default: the CPU count; same files for any value)",
    )
    s.set_defaults(func=_cmd_simulate)

    s = sub.add_parser("discover", help="print what a session folder holds")
    s.add_argument("folder")
    s.add_argument("--session-id")
    s.add_argument(
        "--serials", nargs="+", default=["21372315", "21372316", "21369048", "22085397", "21241563"]
    )
    s.set_defaults(func=_cmd_discover)

    s = sub.add_parser(
        "validate", help="run the workflow's start-up checks on a config (no job runs)"
    )
    s.add_argument(
        "config", nargs="+", help="cohort config file(s), as given to snakemake --configfile"
    )
    s.add_argument(
        "-v", "--verbose", action="store_true", help="also print the jobs a run would start"
    )
    s.set_defaults(func=_cmd_validate)

    s = sub.add_parser(
        "config-docs", help="regenerate the settings tables of config/README.md from the schemas"
    )
    s.add_argument(
        "--readme", default=str(Path(__file__).resolve().parents[2] / "config" / "README.md")
    )
    s.add_argument("--schemas", default=str(SCHEMAS))
    s.set_defaults(func=_cmd_config_docs)

    s = sub.add_parser(
        "frame-counts", help="camera frame counts and empirical rates of a session's video/ folder"
    )
    s.add_argument("video_dir")
    s.add_argument("-o", "--output", help="write <date_joint>_camera_frame_count_dict.json here")
    s.set_defaults(func=_cmd_frame_counts)

    s = sub.add_parser(
        "split-audio", help="split a device's Avisoft multichannel WAVs into mono channels"
    )
    s.add_argument(
        "files", nargs="+", help="the device's multichannel files (joined in name order)"
    )
    s.add_argument("-o", "--out-dir", required=True)
    s.add_argument("--device", required=True)
    s.add_argument("--stamp", required=True, help="<YYMMDDHHMMSS> naming the outputs")
    s.add_argument("--channels", type=int, default=12)
    s.set_defaults(func=_cmd_split_audio)

    s = sub.add_parser(
        "crop-audio", help="crop a session's split audio to the video (sync info + cropped WAVs)"
    )
    s.add_argument(
        "session", help="session folder (reads audio/original, writes audio/cropped_to_video)"
    )
    s.add_argument(
        "--frame-counts", required=True, help="<date_joint>_camera_frame_count_dict.json"
    )
    s.add_argument("--stamp", required=True)
    s.add_argument("--devices", nargs="+", default=audio["devices"])
    s.add_argument(
        "--trigger-device", default=audio["crop"]["trigger_device"], choices=["both", "m", "s"]
    )
    s.add_argument("--triggerbox-channel", type=int, default=audio["crop"]["triggerbox_channel"])
    s.set_defaults(func=_cmd_crop_audio)

    s = sub.add_parser(
        "hpss", help="harmonic part of a mono WAV (chunked, equal to the whole-file result)"
    )
    s.add_argument("input")
    s.add_argument("-o", "--output", required=True)
    s.set_defaults(settings=add_settings_options(s, "audio.hpss"))
    s.set_defaults(func=_cmd_hpss)

    s = sub.add_parser(
        "highpass", help="linear-phase FIR filter of a mono WAV (SoX sinc semantics)"
    )
    s.add_argument("input")
    s.add_argument("-o", "--output", required=True)
    add_settings_options(s, "audio.filter", ["freq_bounds", "stopband_attenuation_db"])
    s.set_defaults(func=_cmd_highpass)

    s = sub.add_parser(
        "memmap", help="concatenate mono WAVs into one int16 samples x channels memmap"
    )
    s.add_argument("wavs", nargs="+", help="channels in column order")
    s.add_argument("-o", "--out-dir", required=True)
    s.add_argument("--stamp", required=True)
    s.add_argument("--kind", default="hpss_filtered")
    s.set_defaults(func=_cmd_memmap)

    s = sub.add_parser(
        "detect-usvs",
        help="built-in USV detector on any WAV >= 192 kHz as recorded, not HPSS'd (DAS CSV format)",
    )
    from .usv.detect import add_cli_arguments

    add_cli_arguments(s)
    s.set_defaults(func=_cmd_detect_usvs)

    from .usv import calltypes_cli

    s = sub.add_parser("export-spectrograms", help="USV spectrograms of a summary (.npz, PNG) or a class-folder "
                       "training set (labelled summary or --simulate)")  # fmt: skip
    calltypes_cli.add_export_arguments(s)
    s.set_defaults(func=_cmd_calltypes)

    s = sub.add_parser("train-calltypes", help="train the call-type CNN on DATA_DIR/<class>/*.npy")
    calltypes_cli.add_train_arguments(s)
    s.set_defaults(func=_cmd_calltypes)

    s = sub.add_parser("classify-calltypes", help="add call_type / call_type_prob to a USV summary")
    calltypes_cli.add_classify_arguments(s)
    s.set_defaults(func=_cmd_calltypes)

    s = sub.add_parser(
        "av-sync", help="A/V sync check of a session (LED pixels, IPIs, verdict JSON, summary SVG)"
    )
    s.add_argument(
        "session", help="session folder (raw inputs: sync/ CoolTerm log, NIDQ, camera folders)"
    )
    s.add_argument(
        "--products",
        help="folder with the session's video/ and audio/ products (default: the session)",
    )
    s.add_argument(
        "--config", help="config YAML (sync.av, audio, video sections; defaults otherwise)"
    )
    s.add_argument("--session-id")
    s.add_argument(
        "--force", action="store_true", help="re-extract the LED intensities even if present"
    )
    s.add_argument("--schemas", default=str(SCHEMAS))
    s.set_defaults(func=_cmd_av_sync)

    s = sub.add_parser(
        "curate-usvs",
        help="merge a session's per-channel detections into <session>_usv_summary.csv",
    )
    s.add_argument(
        "session",
        help="session folder (reads audio/das_annotations and audio/hpss_filtered/*.mmap)",
    )
    s.add_argument(
        "-o",
        "--output",
        help="summary CSV (default audio/<session>_usv_summary.csv); the SVG beside it",
    )
    s.set_defaults(settings=add_settings_options(s, "usv_summary"))
    s.set_defaults(func=_cmd_curate_usvs)

    s = sub.add_parser(
        "assign-usvs", help="built-in sound-source localization and assignment of a session's USVs"
    )
    s.add_argument(
        "session",
        help="session folder (audio/<session>_usv_summary.csv, audio/hpss_filtered/*.mmap)",
    )
    s.add_argument(
        "--tracks", required=True, help="the session's *_points3d_translated_rotated_metric.h5"
    )
    s.add_argument(
        "--arena", required=True, help="the arena's metric file (corners and microphones, frame 0)"
    )
    s.add_argument(
        "--fps", type=float, help="video rate (default: the session's camera_frame_count_dict.json)"
    )
    s.set_defaults(settings=add_settings_options(s, "assignment.builtin"))
    s.set_defaults(func=_cmd_assign_usvs)

    s = sub.add_parser(
        "evaluate-detections", help="precision/recall/F1 and onset/offset errors against labels"
    )
    s.add_argument(
        "detections",
        nargs="?",
        help="detection file or folder (DAS CSV, summary CSV, two-column tables)",
    )
    s.add_argument(
        "labels", nargs="?", help="label file or folder (gt_<key>.csv paired with *_<key>.csv)"
    )
    s.add_argument("--json", help="also write the scores as JSON")
    s.add_argument("--protocol", action="store_true",
                   help="instead: the built-in detector's evaluation protocol (leave-one-recording-out on labelled "
                        "real recordings, a simulated family, pure noise; docs/detector.md)")  # fmt: skip
    s.add_argument("--real", action="append", metavar="DIR",
                   help="--protocol: folder searched for labelled recordings (*.wav with gt_<key>.csv; repeatable; "
                        "default: the repository's tests/data/usv-audio)")  # fmt: skip
    s.add_argument(
        "--sim-sessions", type=int, default=3, help="--protocol: simulated sessions (default 3)"
    )
    s.add_argument(
        "--sim-seconds", type=float, default=2.0, help="--protocol: seconds per simulated session"
    )
    s.add_argument(
        "--noise-sessions",
        type=int,
        default=2,
        help="--protocol: sessions without calls (default 2)",
    )
    s.add_argument(
        "--noise-seconds", type=float, default=10.0, help="--protocol: seconds per noise session"
    )
    s.add_argument(
        "--hpss-channels",
        type=int,
        default=4,
        help="--protocol: noise channels also run through HPSS + FIR per session (default 4)",
    )
    s.set_defaults(func=_cmd_evaluate_detections)

    s = sub.add_parser(
        "compare-truth",
        help="a simulated cohort's products against the simulator's truth (USVs, emitters, call "
        "types, 3D pose, sync verdicts, units)",
    )
    s.add_argument("cohort", help="the folder `usvflow simulate` wrote (sessions.tsv, truth/)")
    s.add_argument("--json", help="also write the comparison as JSON")
    s.set_defaults(func=_cmd_compare_truth)

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

    s = sub.add_parser(
        "ev-sync", help="E/V sync check of one probe recording against the session's video"
    )
    s.add_argument("bin", help="<session>.imec<N>.ap.bin")
    s.add_argument("--meta", help="its .meta (default: beside the .bin)")
    s.add_argument(
        "--frame-counts", required=True, help="<date_joint>_camera_frame_count_dict.json"
    )
    s.add_argument("-o", "--out-dir", help="where the products go (default: the .bin's folder)")
    s.add_argument("--session-id")
    s.add_argument("--probe")
    s.add_argument(
        "--calibrated-rate", nargs="*", metavar="HS=RATE", help="headstage serial = calibrated rate"
    )
    add_settings_options(
        s, "sync.ev", ["triggerbox_bit", "min_largest_break_s", "npx_ms_divergence_tolerance"]
    )
    s.add_argument(
        "--force", action="store_true", help="re-extract the sync word even if its .npy exists"
    )
    s.set_defaults(func=_cmd_ev_sync)

    s = sub.add_parser(
        "concat-ephys", help="join SpikeGLX recordings (in the given order) for spike sorting"
    )
    s.add_argument("bins", nargs="+", help=".bin files (each with its .meta beside it)")
    s.add_argument(
        "-o",
        "--output",
        required=True,
        help="concatenated_<YYYYMMDD>_imec<N>.ap.bin (meta beside it)",
    )
    s.set_defaults(func=_cmd_concat_ephys)

    s = sub.add_parser(
        "split-spikes", help="split sorted clusters into one session's cluster_data/"
    )
    s.add_argument(
        "sorter_dir", help="kilosort4/ folder (spike_times.npy, spike_clusters.npy, labels)"
    )
    s.add_argument(
        "--changepoints", required=True, help="changepoints_info_<YYYYMMDD>_imec<N>.json"
    )
    s.add_argument("--recording", required=True, help="its entry, <session>.imec<N>")
    s.add_argument(
        "--frame-counts", required=True, help="the session's camera_frame_count_dict.json"
    )
    s.add_argument(
        "--onsets", help="<session>_imec<N>_frame_onsets.npy (else frames from the empirical rate)"
    )
    s.add_argument("-o", "--out-dir", required=True, help="<session>/ephys/imec<N>/cluster_data")
    s.add_argument("--min-spikes", type=int, default=100)
    s.add_argument("--keep-duplicates", action="store_true")
    s.add_argument("--censored-period-ms", type=float, default=0.3)
    s.set_defaults(func=_cmd_split_spikes)

    s = sub.add_parser(
        "to-nwb", help="one session's products as <session>/nwb/<session>.nwb (as rule export_nwb)"
    )
    s.add_argument("session_dir", help="the session's product folder")
    s.add_argument("-o", "--output", help="default: SESSION_DIR/nwb/<session>.nwb")
    s.add_argument("--calibration", help="calibration session folder (cameras, arena, microphones)")
    s.add_argument("--config", help="cohort config whose nwb settings to use (default: defaults)")
    s.add_argument("--experimental-code", help="the sheet's code (default: the metadata YAML's)")
    s.add_argument("--schemas", default=str(SCHEMAS))
    s.set_defaults(func=_cmd_to_nwb)

    s = sub.add_parser(
        "slp-to-h5", help="SLEAP .slp -> analysis HDF5 (SLEAP's layout), padded to a frame count"
    )
    s.add_argument("slp")
    s.add_argument("-o", "--output", required=True, help="<serial>-<date_joint>.analysis.h5")
    s.add_argument(
        "--frames", type=int, help="pad/trim to this many frames (the video's frame count)"
    )
    s.set_defaults(func=_cmd_slp_to_h5)

    s = sub.add_parser(
        "calibrate-cameras", help="aniposelib calibration from ChArUco videos (one per camera)"
    )
    s.add_argument("videos", nargs="+", help="NAME=video.mp4 per camera (NAME = camera serial)")
    s.add_argument(
        "-o",
        "--output",
        required=True,
        help="<date_joint>_calibration.toml (metadata .h5 and histogram .svg beside it)",
    )
    s.set_defaults(settings=add_settings_options(s, "pose.calibration"))
    s.add_argument("--threads", type=int, default=1)
    s.set_defaults(func=_cmd_calibrate_cameras)

    s = sub.add_parser(
        "triangulate",
        help="3D points from per-camera analysis HDF5 files (aniposelib triangulate_optim)",
    )
    s.add_argument("h5", nargs="+", help="NAME=<serial>-<date_joint>.analysis.h5 per camera")
    s.add_argument("--calibration", required=True, help="calibration TOML (aniposelib)")
    s.add_argument("-o", "--output", required=True, help="<date_joint>_points3d.h5")
    s.add_argument(
        "--arena", action="store_true", help="arena labelling: frame 0, aniposelib defaults"
    )
    s.add_argument("--frames", type=int, nargs=2, help="[start, stop) frames")
    s.add_argument(
        "--config", help="config YAML whose pose.triangulation is used (else the defaults)"
    )
    s.add_argument("--threads", type=int, default=1)
    s.set_defaults(func=_cmd_triangulate)

    s = sub.add_parser(
        "recoordinate", help="points3d -> metric arena frame (the arena's corners define it)"
    )
    s.add_argument(
        "points3d", help="<date_joint>_points3d.h5 (the same file as --arena: the arena itself)"
    )
    s.add_argument(
        "--arena", required=True, help="the calibration session's arena <date_joint>_points3d.h5"
    )
    s.add_argument(
        "-o", "--output", required=True, help="..._points3d_translated_rotated_metric.h5"
    )
    s.set_defaults(settings=add_settings_options(s, "pose.arena"))
    s.add_argument("--track-names", nargs="+", help="subject ids (default: the tracks' names)")
    s.add_argument("--exp-code", default="", help="experimental code stored in the file")
    s.add_argument(
        "--frame-rate",
        type=float,
        default=float("nan"),
        help="recording frame rate stored in the file",
    )
    s.set_defaults(func=_cmd_recoordinate)

    s = sub.add_parser(
        "check-model",
        help="can a tool env load a trained model? (the version it was trained "
        "with against the env's)",
    )
    s.add_argument(
        "tool",
        choices=["das", "sleap", "vocalocator", "vocalocator-ssl"],
        help="the tool whose env is checked: das, sleap, vocalocator or vocalocator-ssl",
    )
    s.add_argument(
        "model",
        help="DAS <base>_params.yaml, sleap-nn training_config.yaml, vocalocator config.json",
    )
    env = s.add_mutually_exclusive_group()
    env.add_argument(
        "--python",
        default=sys.executable,
        help="the tool env's Python, e.g. <env>/bin/python (default: this Python)",
    )
    env.add_argument("--exe", help="or an executable of the env: its das or sleap-nn command")
    s.set_defaults(func=_cmd_check_model)
    _fill_help(p)
    return p


#: help of the arguments declared above without one ("command dest": text; defaults are appended)
_HELP = {
    "discover folder": "the session folder",
    "discover session_id": "session id (default: the folder's name)",
    "discover serials": "camera serials to look for",
    "config-docs readme": "the README whose generated block is rewritten",
    "config-docs schemas": "folder of the config and sessions schemas",
    "frame-counts video_dir": "the session's video/ folder (Loopbio camera folders)",
    "split-audio out_dir": "folder of the mono WAVs (audio/original)",
    "split-audio device": "device letter (m or s) naming the outputs",
    "split-audio channels": "channels per device",
    "crop-audio stamp": "<YYMMDDHHMMSS> of the split files",
    "crop-audio devices": "audio devices",
    "crop-audio trigger_device": "device(s) whose triggerbox channel defines the crop",
    "crop-audio triggerbox_channel": "channel with the frame pulses in its LSB",
    "hpss input": "mono WAV",
    "hpss output": "harmonic-part WAV",
    "hpss n_fft": "STFT size",
    "hpss hop": "STFT hop",
    "hpss kernel": "median filter sizes, harmonic and percussive",
    "hpss power": "soft-mask exponent",
    "hpss margin": "mask margins, harmonic and percussive",
    "highpass input": "mono WAV",
    "highpass output": "filtered WAV",
    "highpass atten_db": "stop-band attenuation, dB",
    "memmap out_dir": "folder of the .mmap and its .json sidecar",
    "memmap stamp": "<YYMMDDHHMMSS> naming the memmap",
    "memmap kind": "stage named in the file name",
    "train-calltypes seed": "seed of splits, initialisation, shuffling and augmentation",
    "train-calltypes batch_size": "mini-batch size",
    "train-calltypes learning_rate": "Adam learning rate",
    "train-calltypes val_fraction": "share of each class for early stopping",
    "train-calltypes test_fraction": "share of each class held out for the report",
    "train-calltypes no_augment": "train without time/frequency shifts",
    "classify-calltypes device": "cpu, cuda or cuda:N",
    "classify-calltypes threads": "CPU threads",
    "av-sync session_id": "session id (default: the folder's name)",
    "av-sync schemas": "folder of the config and sessions schemas",
    "curate-usvs peak_min": "fewest channels voting for a USV",
    "curate-usvs valley_frac": "split two calls at a vote valley below this fraction of the lower peak",
    "curate-usvs coverage_bin_ms": "voting grid, ms",
    "curate-usvs corr_cutoff": "drop USVs whose channels correlate below this",
    "curate-usvs var_cutoff": "drop one-channel USVs whose normalised power varies less than this",
    "concat-video chunks": "mp4 chunks in order",
    "concat-video output": "joined mp4",
    "reencode-video input": "video to re-encode",
    "reencode-video output": "re-encoded mp4",
    "reencode-video fps": "frame rate to encode at (the empirical rate)",
    "reencode-video crf": "x264 constant rate factor",
    "reencode-video preset": "x264 preset",
    "ev-sync session_id": "session id (default: from the file name)",
    "ev-sync probe": "imec<N> (default: from the file name)",
    "ev-sync min_largest_break_s": "shortest accepted break before the first frame, s",
    "ev-sync tolerance_ms": "largest accepted e-phys/video duration difference, ms",
    "split-spikes min_spikes": "write clusters with more spikes than this",
    "split-spikes keep_duplicates": "keep spikes closer than the censored period",
    "split-spikes censored_period_ms": "duplicate spikes within this are removed, ms",
    "to-nwb schemas": "folder of the config and sessions schemas",
    "slp-to-h5 slp": "SLEAP .slp file (predictions or proofread)",
    "calibrate-cameras threads": "cameras detected in parallel",
    "triangulate threads": "worker processes",
}


def _fill_help(parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for name, sub in action.choices.items():
            for a in sub._actions:
                text = _HELP.get(f"{name} {a.dest}")
                if a.help or text is None:
                    continue
                default = a.default
                if default not in (None, False, argparse.SUPPRESS) and not a.required:
                    shown = " ".join(map(str, default)) if isinstance(default, list) else default
                    text += f" (default {shown})"
                a.help = text


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
