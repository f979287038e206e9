# USV detection on every channel (docs/original-pipeline.md step 12). The built-in detector needs no
# model or GPU and reads the cropped channel; DAS (usv_detection.method: das), the cluster
# alternative, reads the HPSS'd, high-passed one its models are trained on. Both write
# audio/das_annotations/<stem>_cropped_to_video_hpss_filtered_annotations.csv in DAS's CSV format.

if config["usv_detection"]["method"] == "builtin":

    # the built-in detector reads the cropped channel itself: it rejects clicks and whitens tones on
    # its own, and HPSS's soft mask leaves real background noise as sparse spikes over digital
    # silence, which no noise floor can be estimated from (docs/detector.md, "Which audio")
    rule detect_usvs:
        input:
            "{sroot}/audio/cropped_to_video/{name}_cropped_to_video.wav",
        output:
            "{sroot}/audio/das_annotations/{name}_cropped_to_video_hpss_filtered_annotations.csv",
        log:
            "{sroot}/logs/detect_usvs_{name}.log",
        benchmark:
            "{sroot}/benchmarks/detect_usvs_{name}.tsv"
        conda:
            "../envs/usvflow.yaml"
        threads: 1
        resources:
            mem_mb=1000,
            runtime=60,
        params:
            **config["usv_detection"]["builtin"],
        script:
            "../scripts/usv_detect.py"

else:

    rule das_predict:
        input:
            wav="{sroot}/audio/hpss_filtered/{name}_cropped_to_video_hpss_filtered.wav",
            model=das_model_files(),
        output:
            "{sroot}/audio/das_annotations/{name}_cropped_to_video_hpss_filtered_annotations.csv",
        log:
            "{sroot}/logs/das_predict_{name}.log",
        benchmark:
            "{sroot}/benchmarks/das_predict_{name}.tsv"
        conda:
            "../envs/das.yaml"
        threads: 2
        resources:
            gpu=1,
            mem_mb=16000,
            runtime=240,
        params:
            das=config["usv_detection"]["das"]["executable"],
            model_base=das_model_prefix,
            thres=config["usv_detection"]["das"]["segment_confidence_threshold"],
            minlen=config["usv_detection"]["das"]["segment_minlen"],
            fillgap=config["usv_detection"]["das"]["segment_fillgap"],
            # DAS writes <wav stem>_annotations.csv beside the WAV; it is moved into das_annotations/.
            das_csv=das_csv_path,
            guard=MODELCHECK,
        shell:
            # DAS logs and swallows per-file errors and may exit 0 without writing its CSV: check it.
            "rm -f {params.das_csv:q}; "
            "{params.guard} das {input.model[1]:q} --exe {params.das:q} > {log:q} || exit 2; "
            "{params.das:q} predict {input.wav:q} {params.model_base:q}"
            " --segment-thres {params.thres} --segment-minlen {params.minlen}"
            " --segment-fillgap {params.fillgap} --save-format csv >> {log:q} 2>&1; "
            "if [ ! -s {params.das_csv:q} ]; then"
            " echo das predict exited 0 but wrote no {params.das_csv:q} >> {log:q}; exit 1; fi; "
            "mv {params.das_csv:q} {output:q}"


# Curation (docs/original-pipeline.md step 13): coverage-watershed merge across channels, amplitude
# channels, acoustic features and noise rejection, read from the memmap one USV at a time.
rule curate_usvs:
    input:
        unpack(session_memmap),
        csvs=annotation_csvs,
    output:
        summary=report(
            "{sroot}/audio/{session}_usv_summary.csv",
            caption="../report/usv_summary.rst",
            category="2. USVs",
            subcategory="{session}",
            labels=report_labels("USV summary"),
        ),
        histogram=report(
            "{sroot}/audio/{session}_usv_signal_correlation_histogram.svg",
            caption="../report/usv_histogram.rst",
            category="2. USVs",
            subcategory="{session}",
            labels=report_labels("curation histogram"),
        ),
    log:
        "{sroot}/logs/curate_usvs_{session}.log",
    benchmark:
        "{sroot}/benchmarks/curate_usvs_{session}.tsv"
    conda:
        "../envs/usvflow.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        settings=config["usv_summary"],
    script:
        "../scripts/usv_curate.py"
