# Who vocalized (docs/original-pipeline.md step 14): each USV of the summary is attributed to an
# animal. builtin: SRP-PHAT source estimate from the 24 channels, compared with the animals' noses
# (pose). vocalocator / vocalocator-ssl: trained networks in their own conda envs, on GPUs.
# Products, per session: audio/<session>_usv_summary_assigned.csv (the summary with `emitter`), and
# in audio/sound_localization/ the method's own files.
if ASSIGN["method"] == "builtin":

    rule localize_usvs:
        input:
            unpack(assignment_inputs),
        output:
            estimates="{sroot}/audio/sound_localization/{session}_source_estimates.csv",
            assigned=report(
                "{sroot}/audio/{session}_usv_summary_assigned.csv",
                caption="../report/assigned.rst",
                category="2. USVs",
                subcategory="{session}",
                labels=report_labels("assigned USVs"),
            ),
            plot=report(
                "{sroot}/audio/sound_localization/{session}_sound_sources.svg",
                caption="../report/sound_sources.rst",
                category="2. USVs",
                subcategory="{session}",
                labels=report_labels("sound sources"),
            ),
        log:
            "{sroot}/logs/localize_usvs_{session}.log",
        benchmark:
            "{sroot}/benchmarks/localize_usvs_{session}.tsv"
        conda:
            "../envs/usvflow.yaml"
        threads: 4
        resources:
            mem_mb=4000,
            runtime=240,
        params:
            settings=ASSIGN["builtin"],
        script:
            "../scripts/assign_builtin.py"

else:

    rule prepare_vocalocator:
        input:
            unpack(assignment_inputs),
        output:
            "{sroot}/audio/sound_localization/dset.h5",
        log:
            "{sroot}/logs/prepare_vocalocator.log",
        benchmark:
            "{sroot}/benchmarks/prepare_vocalocator.tsv"
        conda:
            "../envs/usvflow.yaml"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=60,
        script:
            "../scripts/assign_dset.py"

    rule vocalocator_predict:
        input:
            dset="{sroot}/audio/sound_localization/dset.h5",
            model=vocalocator_model_files(),
        output:
            "{sroot}/audio/sound_localization/"
            + ("assessment.h5" if ASSIGN["method"] == "vocalocator" else "model_predictions.npz"),
        log:
            "{sroot}/logs/vocalocator_predict.log",
        benchmark:
            "{sroot}/benchmarks/vocalocator_predict.tsv"
        conda:
            "../envs/"
            + ("vocalocator.yaml" if ASSIGN["method"] == "vocalocator" else "vocalocator-ssl.yaml")
        threads: 2
        resources:
            gpu=1,
            mem_mb=16000,
            runtime=60,
        params:
            python=VCL["python"],
            model_dir=lambda wc, input: str(Path(input.model[0]).parent),
            thr=VCL["conf_threshold"],
            legacy=ASSIGN["method"] == "vocalocator",
            tmp=lambda wc, output: output[0]
            + (".tmp.h5" if ASSIGN["method"] == "vocalocator" else ".tmp.npz"),
            calib=lambda wc, input: input.model[0],
            resolved=lambda wc, output: output[0] + ".config.json",
            guard=MODELCHECK,
        shell:
            # The model-version guard first (legacy vocalocator: it also writes the model's config with
            # WEIGHTS_PATH resolved from the model folder). vocalocator-ssl: predict on dset.h5 itself
            # (given a folder it reads every *.h5 there), then vocalocatorssl.assign adds
            # <dataset>-assignments to the npz (in place, so on a temporary name). Legacy: assess --inference.
            "if [ {params.legacy} = True ]; then"
            " {params.guard} vocalocator {params.calib:q} --python {params.python:q}"
            " --write-config {params.resolved:q} > {log:q} || exit 2;"
            " {params.python:q} -m vocalocator.assess --inference --config {params.resolved:q}"
            " --data {input.dset:q} -o {params.tmp:q} >> {log:q} 2>&1 && rm {params.resolved:q} &&"
            " mv {params.tmp:q} {output:q};"
            " else"
            " {params.guard} vocalocator-ssl {params.model_dir:q} --python {params.python:q} > {log:q} || exit 2;"
            " {params.python:q} -m vocalocatorssl --data {input.dset:q} --save-path {params.model_dir:q}"
            " --predict -o {params.tmp:q} >> {log:q} 2>&1 &&"
            " {params.python:q} -m vocalocatorssl.assign {params.tmp:q}"
            " --calibration-results {params.calib:q} --conf-threshold {params.thr} >> {log:q} 2>&1 &&"
            " mv {params.tmp:q} {output:q}; fi"

    rule vocalocator_assign:
        input:
            unpack(assignment_inputs),
            predictions=rules.vocalocator_predict.output[0],
        output:
            report(
                "{sroot}/audio/{session}_usv_summary_assigned.csv",
                caption="../report/assigned.rst",
                category="2. USVs",
                subcategory="{session}",
                labels=report_labels("assigned USVs"),
            ),
        log:
            "{sroot}/logs/vocalocator_assign_{session}.log",
        benchmark:
            "{sroot}/benchmarks/vocalocator_assign_{session}.tsv"
        conda:
            "../envs/usvflow.yaml"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=30,
        params:
            method=ASSIGN["method"],
            settings=ASSIGN["builtin"],
        script:
            "../scripts/assign_vocalocator.py"
