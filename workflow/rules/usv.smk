# USV detection on every filtered channel (usv-playpen-spec.md step 12). The built-in detector needs
# no model or GPU; DAS (usv_detection.method: das) is the cluster alternative.


rule detect_usvs:
    input:
        "{sroot}/audio/hpss_filtered/{name}_cropped_to_video_hpss_filtered.wav",
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
