# Input functions, constants and targets of nwb.smk (rule export_nwb in workflow/rules/nwb.smk).
NWB = config["nwb"]


def nwb_path(sid):
    return f"{product_root(sid)}/nwb/{sid}.nwb"


def _staged(stage, sid):
    """A stage's targets of a session when the stage is configured (else none)."""
    return STAGE_TARGETS[stage](sid) if stage in config["stages"] else []


def nwb_products(sid):
    """{name: path} of the session's products that go into its NWB file; probes: {probe: {...}}."""
    lay, root, name = LAYOUTS[sid], product_root(sid), session_name(sid)
    out, probes = {}, {}
    if lay.metadata_yaml:
        out["metadata_yaml"] = str(Path(lay.folder, lay.metadata_yaml))
    if lay.cameras:
        out["frame_counts"] = f"{root}/video/{lay.date_joint}_camera_frame_count_dict.json"
    if audio_targets(sid) and any(s in config["stages"] for s in ("audio", "usv", "calltypes")):
        trig = config["audio"]["crop"]["trigger_device"]
        dev = config["audio"]["devices"][0] if trig == "both" else trig
        out["frame_pulses"] = f"{root}/sync/{dev}_video_frames_in_audio_samples.txt"
        out["memmap_sidecar"] = memmap_path(sid, "json")
        if NWB["include_audio"]:
            out["memmap"] = memmap_path(sid)
    if _staged("usv", sid):
        out["usv_summary"] = usv_summary_path(sid)
    for f in _staged("assignment", sid):
        if f.endswith("_usv_summary_assigned.csv"):
            out["usv_assigned"] = f
        elif f.endswith("_source_estimates.csv"):
            out["source_estimates"] = f
    if _staged("calltypes", sid):
        out["usv_call_types"] = f"{root}/audio/{name}_usv_summary_call_types.csv"
    metric = f"{pose_dir(sid)}/{lay.date_joint}_points3d_translated_rotated_metric.h5"
    if metric in _staged("pose", sid):
        cal = calibration_session_of(sid)
        out["points3d_metric"] = metric
        out["calibration_toml"] = calibration_toml_of(sid)
        out["arena_metric"] = (
            f"{pose_dir(cal)}/{LAYOUTS[cal].date_joint}_points3d_translated_rotated_metric.h5"
        )
    av = av_sync_json(sid)
    if av in _staged("sync", sid):
        out["av_sync"] = av
    ephys = _staged("ephys", sid)
    for p, pr in lay.probes.items():
        d = {"meta": str(Path(lay.folder, pr.meta))}
        manifest = f"{root}/ephys/{p}/{p}_cluster_data_manifest.json"
        if manifest in ephys:
            d["manifest"] = manifest
            d["cluster_dir"] = f"{root}/ephys/{p}/cluster_data"
        if ev_json(sid, p) in ephys:
            d["ev_sync"] = ev_json(sid, p)
        if quality_metrics_csv(sid, p) in ephys:
            d["quality"] = quality_metrics_csv(sid, p)
        probes[p] = d
    return out, probes


def nwb_inputs(wildcards):
    out, probes = nwb_products(SID_BY_ROOT[wildcards.sroot])
    for p, d in probes.items():
        for k, v in d.items():
            out[f"{p}_{k}"] = v
    return out


def nwb_session(wildcards):
    """Session facts the export needs besides the files (from the sessions sheet and discovery)."""
    sid = SID_BY_ROOT[wildcards.sroot]
    return {
        "session_id": sid,
        "kind": LAYOUTS[sid].kind,
        "date_joint": LAYOUTS[sid].date_joint,
        "experimental_code": str(SESSIONS.loc[sid].get("experimental_code", "") or ""),
        "probes": sorted(nwb_products(sid)[1]),
    }


def nwb_targets(sid):
    lay = LAYOUTS[sid]
    if lay.kind != "experiment":
        return []
    return [nwb_path(sid)]


STAGE_TARGETS["nwb"] = nwb_targets
