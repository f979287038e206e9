# Input functions, constants and targets of calltypes.smk (rules in workflow/rules/calltypes.smk).
CALLTYPES = config["call_types"]


def calltype_model_dir():
    if not CALLTYPES["model_dir"]:
        raise WorkflowError(
            "usvflow: stage 'calltypes' needs call_types.model_dir (a folder of "
            "`usvflow train-calltypes`, or where rule calltype_train writes one from "
            "call_types.train.data_dir)"
        )
    return Path(CALLTYPES["model_dir"]).expanduser().resolve()


if "calltypes" in config["stages"]:
    # a missing model (or training set) stops the start-up with one message
    if CALLTYPES["train"]["data_dir"]:
        if not Path(CALLTYPES["train"]["data_dir"]).expanduser().is_dir():
            raise WorkflowError(
                f"usvflow: call_types.train.data_dir {CALLTYPES['train']['data_dir']} does not exist;"
                " write a training set there (usvflow export-spectrograms) or unset the setting"
            )
    else:
        for f in ("model.pt", "model.json"):
            if not (calltype_model_dir() / f).is_file():
                raise WorkflowError(
                    f"usvflow: call_types.model_dir {calltype_model_dir()} holds no {f}; train a model"
                    " there (usvflow train-calltypes) or set call_types.train.data_dir"
                )


def calltype_model_files(wildcards=None):
    d = calltype_model_dir()
    return [str(d / "model.pt"), str(d / "model.json")]


def calltype_memmap(wildcards):
    return memmap_path(SID_BY_ROOT[wildcards.sroot])


def calltypes_targets(sid):
    if not audio_targets(sid):
        return []
    calltype_model_dir()
    return [f"{product_root(sid)}/audio/{session_name(sid)}_usv_summary_call_types.csv"]


STAGE_TARGETS["calltypes"] = calltypes_targets


CALLTYPE_SESSIONS = "|".join(re.escape(session_name(s)) for s in LAYOUTS) or "(?!)"
