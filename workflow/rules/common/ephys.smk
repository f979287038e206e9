# Input functions, constants and targets of ephys.smk (rules in workflow/rules/ephys.smk).
EPHYS_FT = config["sync"]["ev"]["npx_file_type"]


KS_DIRNAME = f"kilosort{config['ephys']['spikes']['kilosort_version']}"


KS_FILES = ["spike_times.npy", "spike_clusters.npy", "templates.npy", "channel_map.npy"]


KS_LABEL_FILES = ["cluster_info.tsv", "cluster_group.tsv", "cluster_KSLabel.tsv"]


# ADC phase-shift correction (AP streams only): written as a copy beside the raw file's products,
# and the concatenation joins the copies. The raw .bin is never rewritten.
PHASE_SHIFT = config["sync"]["ev"]["apply_phase_shift"] and EPHYS_FT == "ap"


def ephys_root_of(sid):
    """<ephys_root> of a session: the config's, else <base>/EPHYS for a folder <base>/Data/<session>."""
    if config["ephys_root"]:
        return str(Path(config["ephys_root"]).expanduser().resolve())
    folder = Path(LAYOUTS[sid].folder)
    if folder.parent.name != "Data":
        raise WorkflowError(
            f"usvflow: session {sid}: cannot derive ephys_root from {folder} (its parent is not "
            "named 'Data'); set ephys_root in the config"
        )
    return str(folder.parent.with_name("EPHYS"))


def _ephys_groups():
    """{(ephys_root, YYYYMMDD, probe): [session ids in sheet order]} of every e-phys group."""
    by_group = {}
    for sid, row in SESSIONS.iterrows():
        lay = LAYOUTS[sid]
        if lay.kind != "experiment" or not lay.probes:
            continue
        name = row["ephys_group"] or f"(ungrouped sessions of {sid[:8]})"
        by_group.setdefault(name, []).append(sid)
    groups = {}
    for name, sids in by_group.items():
        roots = {ephys_root_of(s) for s in sids}
        if len(roots) > 1:
            raise WorkflowError(
                f"usvflow: e-phys group {name}: sessions map to several ephys roots {sorted(roots)}"
            )
        eroot, day = roots.pop(), sids[0][:8]
        for probe in sorted(set().union(*(LAYOUTS[s].probes for s in sids))):
            key = (eroot, day, probe)
            if key in groups:
                raise WorkflowError(
                    f"usvflow: e-phys group {name} and another group both map to {eroot}/{day}_{probe}; "
                    "give sessions of one day one ephys_group in the sessions sheet"
                )
            groups[key] = [s for s in sids if probe in LAYOUTS[s].probes]
    return groups


EPHYS_GROUPS = _ephys_groups()


GROUP_OF = {(s, k[2]): k for k, sids in EPHYS_GROUPS.items() for s in sids}


EROOT_RE = "|".join(re.escape(k[0]) for k in EPHYS_GROUPS) or "(?!)"


def day_dir(key):
    eroot, day, probe = key
    return f"{eroot}/{day}_{probe}"


def changepoints_path(key):
    return f"{day_dir(key)}/changepoints_info_{key[1]}_{key[2]}.json"


def concatenated_path(key, ext):
    return f"{day_dir(key)}/concatenated_{key[1]}_{key[2]}.{EPHYS_FT}.{ext}"


def sorter_dir(key):
    return f"{day_dir(key)}/{KS_DIRNAME}"


def ev_json(sid, probe):
    return f"{product_root(sid)}/ephys/{probe}/{sid}_{probe}_ev_sync.json"


def _group_key(wildcards):
    key = (wildcards.eroot, wildcards.day, wildcards.probe)
    if key not in EPHYS_GROUPS:
        raise WorkflowError(
            f"usvflow: no e-phys group writes {wildcards.eroot}/{wildcards.day}_{wildcards.probe}"
        )
    return key


def _session_check(wildcards):
    sid = SID_BY_ROOT[wildcards.sroot]
    if hasattr(wildcards, "session") and wildcards.session != sid:
        raise WorkflowError(
            f"usvflow: {wildcards.session} is not the session of {wildcards.sroot} ({sid})"
        )
    if wildcards.probe not in LAYOUTS[sid].probes:
        raise WorkflowError(f"usvflow: session {sid} has no probe {wildcards.probe}")
    return sid


def probe_bin_meta(wildcards):
    sid = _session_check(wildcards)
    pr = LAYOUTS[sid].probes[wildcards.probe]
    return {"bin": raw(wildcards, pr.bin), "meta": raw(wildcards, pr.meta)}


def group_recordings(wildcards):
    """The group's raw .bin and .meta files in sheet order."""
    key = _group_key(wildcards)
    sids = EPHYS_GROUPS[key]
    p = key[2]
    folder = lambda s: LAYOUTS[s].folder  # noqa: E731
    return {
        "bins": [str(Path(folder(s), LAYOUTS[s].probes[p].bin)) for s in sids],
        "metas": [str(Path(folder(s), LAYOUTS[s].probes[p].meta)) for s in sids],
    }


def shifted_bin(sid, probe, ext="bin"):
    return f"{product_root(sid)}/ephys/{probe}/{sid}.{probe}.ap_phase_shifted.{ext}"


def concat_inputs(wildcards):
    """What the concatenation joins: the raw recordings, or their phase-shifted copies."""
    if not PHASE_SHIFT:
        return group_recordings(wildcards)
    key = _group_key(wildcards)
    sids = EPHYS_GROUPS[key]
    return {
        "bins": [shifted_bin(s, key[2]) for s in sids],
        "metas": [shifted_bin(s, key[2], "meta") for s in sids],
    }


def group_ev_results(wildcards):
    """The E/V verdicts of the group's sessions that have video."""
    key = _group_key(wildcards)
    return [ev_json(s, key[2]) for s in EPHYS_GROUPS[key] if LAYOUTS[s].cameras]


def group_sessions(wildcards):
    key = _group_key(wildcards)
    p = key[2]
    return [
        {
            "session_id": s,
            "root_directory": LAYOUTS[s].folder,
            "bin": str(Path(LAYOUTS[s].folder, LAYOUTS[s].probes[p].bin)),
            "meta": str(Path(LAYOUTS[s].folder, LAYOUTS[s].probes[p].meta)),
            "ev": ev_json(s, p) if LAYOUTS[s].cameras else None,
        }
        for s in EPHYS_GROUPS[key]
    ]


def sorter_inputs(wildcards):
    """The day's sorter files the split reads (labels: whichever of Phy's/Kilosort's files exist)."""
    sid = _session_check(wildcards)
    key = GROUP_OF[(sid, wildcards.probe)]
    ks = sorter_dir(key)
    out = {f.split(".")[0]: f"{ks}/{f}" for f in KS_FILES}
    if config["ephys"]["sorting"]["run"]:
        out["labels"] = [f"{ks}/cluster_group.tsv", f"{ks}/cluster_KSLabel.tsv"]
        if Path(ks, "cluster_info.tsv").is_file():
            out["labels"].append(f"{ks}/cluster_info.tsv")
    else:
        out["labels"] = [f"{ks}/{f}" for f in KS_LABEL_FILES if Path(ks, f).is_file()]
    out["changepoints"] = changepoints_path(key)
    out["meta"] = str(Path(LAYOUTS[sid].folder, LAYOUTS[sid].probes[wildcards.probe].meta))
    out["counts"] = frame_count_json(wildcards)
    out["onsets"] = (
        f"{wildcards.sroot}/ephys/{wildcards.probe}/{sid}_{wildcards.probe}_frame_onsets.npy"
    )
    return out


QUALITY = config["ephys"]["quality_metrics"]


def quality_metrics_csv(sid, probe):
    return f"{product_root(sid)}/ephys/{probe}/{sid}_{probe}_quality_metrics.csv"


def quality_inputs(wildcards):
    """The session's sorted recording (raw or phase-shifted copy), the day's sorter output, changepoints."""
    sid = _session_check(wildcards)
    key = GROUP_OF[(sid, wildcards.probe)]
    out = {
        k: v for k, v in sorter_inputs(wildcards).items() if k not in ("counts", "onsets", "meta")
    }
    pr = LAYOUTS[sid].probes[wildcards.probe]
    if PHASE_SHIFT:
        out["bin"], out["meta"] = shifted_bin(sid, key[2]), shifted_bin(sid, key[2], "meta")
    else:
        out["bin"], out["meta"] = raw(wildcards, pr.bin), raw(wildcards, pr.meta)
    return out


def raw_probe_bin(wildcards):
    sid = _session_check(wildcards)
    return raw(wildcards, LAYOUTS[sid].probes[wildcards.probe].bin)


def split_quality_input(wildcards):
    """The quality metrics the split adds to the cluster manifest (none when they are off)."""
    if not QUALITY["run"]:
        return []
    return quality_metrics_csv(_session_check(wildcards), wildcards.probe)


def kilosort_results_dir(wildcards):
    return f"{wildcards.eroot}/{wildcards.day}_{wildcards.probe}/{KS_DIRNAME}"


def sorter_ready(key):
    ks = sorter_dir(key)
    return config["ephys"]["sorting"]["run"] or all(Path(ks, f).is_file() for f in KS_FILES)


def ephys_targets(sid):
    lay, root = LAYOUTS[sid], product_root(sid)
    if lay.kind != "experiment":
        return []
    out = []
    for p in lay.probes:
        if lay.cameras:
            out += [f"{root}/ephys/{p}/{sid}_{p}_sync_ch_data.npy", ev_json(sid, p)]
        if PHASE_SHIFT:
            out.append(shifted_bin(sid, p))
        key = GROUP_OF[(sid, p)]
        out += [
            changepoints_path(key),
            concatenated_path(key, "bin"),
            concatenated_path(key, "meta"),
        ]
        if lay.cameras and sorter_ready(key):
            out.append(f"{root}/ephys/{p}/{p}_cluster_data_manifest.json")
            if QUALITY["run"]:
                out.append(quality_metrics_csv(sid, p))
        elif lay.cameras and sid == EPHYS_GROUPS[key][0]:
            print(
                f"usvflow: no sorter output in {sorter_dir(key)} yet: spikes are not split "
                "(run Kilosort and Phy, or set ephys.sorting.run: true)",
                file=sys.stderr,
            )
    return out


STAGE_TARGETS["ephys"] = ephys_targets
