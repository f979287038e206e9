# Input functions, constants and targets of sync.smk (rules in workflow/rules/sync.smk).
AV = config["sync"]["av"]


def av_sync_serials(sid):
    """Configured sync cameras that the session recorded."""
    lay = LAYOUTS[sid]
    return [s for s in AV["sync_camera_serials"] if s in lay.cameras]


def check_led_pixels():
    """Stage sync, at start-up: every sync camera's LED pixels (config) lie inside its frames."""
    from usvflow.io.config import read_yaml
    from usvflow.sync.leds import led_table

    ver = AV["led_px_version"]
    for sid, lay in LAYOUTS.items():
        if not (lay.kind == "experiment" and lay.audio and lay.coolterm):
            continue
        for s in av_sync_serials(sid):
            try:
                nominal = led_table(AV["led_pixels"], ver, s)
            except InputError as exc:
                raise WorkflowError(f"usvflow: session {sid}: {exc}") from None
            meta = Path(lay.folder, "video", lay.cameras[s].folder, "metadata.yaml")
            shape = (read_yaml(meta).get("__store") or {}).get("imgshape")
            if not shape:
                continue
            h, w = int(shape[0]), int(shape[1])
            for name, (row, col) in nominal.items():
                if not (0 <= row < h and 0 <= col < w):
                    raise WorkflowError(
                        f"usvflow: session {sid}: sync.av.led_pixels[{ver}][{s}].{name} = [{row}, {col}]"
                        f" lies outside camera {s}'s {h}x{w} frames ({meta}); set the camera's LED"
                        " pixels (or sync.av.led_px_version) for this set-up"
                    )


if "sync" in config["stages"]:
    check_led_pixels()


def av_nidq_used(sid):
    return bool(AV["nidq"]["enabled"] and LAYOUTS[sid].nidq)


def _av_sid(wildcards):
    return SID_BY_ROOT[wildcards.sroot]


def av_led_files(wildcards):
    sid, lay = _av_sid(wildcards), layout(wildcards)
    dj = lay.date_joint
    return {
        "px": [f"{wildcards.sroot}/sync/sync_px_{s}-{dj}" for s in av_sync_serials(sid)],
        "px_info": [f"{wildcards.sroot}/sync/sync_px_{s}-{dj}.json" for s in av_sync_serials(sid)],
    }


def av_audio_channels(wildcards):
    lay = layout(wildcards)
    ch = f"{AV['sync_ch_receiving_input']:02d}"
    return [
        f"{wildcards.sroot}/audio/cropped_to_video/{d}_{lay.audio_stamp}_ch{ch}_cropped_to_video.wav"
        for d in config["audio"]["devices"]
    ]


def av_optional_inputs(wildcards):
    sid, lay = _av_sid(wildcards), layout(wildcards)
    out = {}
    if av_nidq_used(sid):
        out["nidq"] = f"{wildcards.sroot}/sync/nidq_ipi_data.npy"
    if AV["extract_exact_video_frame_times"]:
        out["npz"] = [
            raw(wildcards, "video", lay.cameras[s].folder, c.rsplit(".", 1)[0] + ".npz")
            for s in av_sync_serials(sid)
            for c in lay.cameras[s].chunks
        ]
    return out


def av_camera_folders(wildcards):
    sid, lay = _av_sid(wildcards), layout(wildcards)
    return {s: raw(wildcards, "video", lay.cameras[s].folder) for s in av_sync_serials(sid)}


def av_coolterm(wildcards):
    return raw(wildcards, layout(wildcards).coolterm)


def av_nidq_bin(wildcards):
    return raw(wildcards, layout(wildcards).nidq)


def av_nidq_meta(wildcards):
    return raw(wildcards, layout(wildcards).nidq[: -len(".bin")] + ".meta")


def av_sync_json(sid):
    return f"{product_root(sid)}/sync/{sid}_av_sync.json"


def sync_targets(sid):
    """A/V products of a session with audio, the sync camera(s) and a CoolTerm log."""
    lay = LAYOUTS[sid]
    if not (lay.kind == "experiment" and lay.audio and av_sync_serials(sid) and lay.coolterm):
        return []
    root = product_root(sid)
    out = [av_sync_json(sid), f"{root}/sync/{sid}_summary.svg"]
    if config["sync"]["fail_on_mismatch"]:
        out.append(f"{root}/sync/{sid}_av_sync.passed")
    return out


STAGE_TARGETS["sync"] = sync_targets
