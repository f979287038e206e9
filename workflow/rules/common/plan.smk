# The start-up table (printed by the Snakefile once every stage file is included): per session,
# the stages that run and why the others are skipped.


def stage_plan(sid):
    """[(stage, reason it is skipped, or "" if it runs)] of a session, for the start-up table."""
    lay = LAYOUTS[sid]
    exp = lay.kind == "experiment"
    audio = (
        ""
        if lay.audio and lay.cameras
        else (
            "no video/ camera folders (audio is cropped to the video)"
            if lay.audio
            else "no audio/original_mc/ WAVs"
        )
    )
    cal = calibration_session_of(sid)
    pose = "" if pose_serials(sid) else "no camera folders of video.camera_serials"
    if not pose and lay.kind != "calibration":
        waiting = pose_waiting(sid) or (pose_waiting(cal) if cal and cal != sid else None)
        pose = waiting or ("" if cal else "no calibration session with calibration footage")
    why = {
        "video": "" if lay.cameras or lay.calibration_cameras else "no video/ camera folders",
        "audio": audio,
        "usv": audio,
        "calltypes": audio,
        "sync": (
            "not an experiment session"
            if not exp
            else audio
            or ("" if av_sync_serials(sid) else "no folder of sync.av.sync_camera_serials")
            or ("" if lay.coolterm else "no CoolTerm log in sync/")
        ),
        "ephys": (
            "not an experiment session"
            if not exp
            else ("" if lay.probes else "no ephys/imec<N>/ recording")
        ),
        "pose": pose,
        "assignment": ("not an experiment session" if not exp else audio or pose),
        "nwb": "" if exp else "not an experiment session",
    }
    return [(st, why.get(st, "")) for st in config["stages"]]


def stage_plan_rows():
    """The start-up table as rows [session, kind, stage, runs (yes/no), why skipped] (report/stage_plan.csv)."""
    return [
        [sid, LAYOUTS[sid].kind, st, "no" if why else "yes", why]
        for sid in LAYOUTS
        for st, why in stage_plan(sid)
    ]


def print_stage_plan():
    lines = ["usvflow: stages per session (run / skipped: why)"]
    for sid in LAYOUTS:
        plan = stage_plan(sid)
        runs = [st for st, why in plan if not why]
        lines.append(f"  {sid} ({LAYOUTS[sid].kind}): run {', '.join(runs) or 'nothing'}")
        lines += [f"      skip {st}: {why}" for st, why in plan if why]
    print("\n".join(lines), file=sys.stderr)
