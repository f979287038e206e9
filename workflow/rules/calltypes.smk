# USV call types: spectrogram export, CNN training and classification.
# Per session: the curated summary audio/<session>_usv_summary.csv -> one fixed-length spectrogram
# per USV from its best channel of the hpss_filtered memmap
# (audio/spectrograms/<session>_usv_spectrograms.npz) -> audio/<session>_usv_summary_call_types.csv
# (the summary + call_type, call_type_prob). The model is call_types.model_dir; with
# call_types.train.data_dir set, rule calltype_train builds it first.
rule calltype_spectrograms:
    input:
        summary="{sroot}/audio/{session}_usv_summary.csv",
        mmap=calltype_memmap,
    output:
        "{sroot}/audio/spectrograms/{session}_usv_spectrograms.npz",
    log:
        "{sroot}/logs/calltype_spectrograms_{session}.log",
    benchmark:
        "{sroot}/benchmarks/calltype_spectrograms_{session}.tsv"
    wildcard_constraints:
        session=CALLTYPE_SESSIONS,
    conda:
        "../envs/usvflow.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        spectrogram=CALLTYPES["spectrogram"],
    script:
        "../scripts/calltypes_spectrograms.py"


if CALLTYPES["train"]["data_dir"]:

    rule calltype_train:
        input:
            data=str(Path(CALLTYPES["train"]["data_dir"]).expanduser().resolve()),
        output:
            model=calltype_model_files(),
            report=str(calltype_model_dir() / "report.json"),
            confusion=report(
                str(calltype_model_dir() / "confusion_matrix.svg"),
                caption="../report/confusion_matrix.rst",
                category="2. USVs",
                labels=report_labels("call-type confusion matrix"),
            ),
            history=str(calltype_model_dir() / "history.csv"),
        log:
            str(calltype_model_dir() / "logs" / "calltype_train.log"),
        benchmark:
            str(calltype_model_dir() / "logs" / "calltype_train_benchmark.tsv")
        conda:
            "../envs/calltypes.yaml"
        threads: 1
        resources:
            gpu=1,
            mem_mb=16000,
            runtime=240,
        params:
            train=CALLTYPES["train"],
            out_dir=str(calltype_model_dir()),
        script:
            "../scripts/calltypes_train.py"


rule calltype_classify:
    input:
        summary="{sroot}/audio/{session}_usv_summary.csv",
        spectrograms="{sroot}/audio/spectrograms/{session}_usv_spectrograms.npz",
        model=calltype_model_files,
    output:
        report(
            "{sroot}/audio/{session}_usv_summary_call_types.csv",
            caption="../report/call_types.rst",
            category="2. USVs",
            subcategory="{session}",
            labels=report_labels("call types"),
        ),
    log:
        "{sroot}/logs/calltype_classify_{session}.log",
    benchmark:
        "{sroot}/benchmarks/calltype_classify_{session}.tsv"
    wildcard_constraints:
        session=CALLTYPE_SESSIONS,
    conda:
        "../envs/calltypes.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=60,
    params:
        device=CALLTYPES["device"],
        expected_classes=CALLTYPES["expected_classes"],
        min_probability=CALLTYPES["min_probability"],
    script:
        "../scripts/calltypes_classify.py"
