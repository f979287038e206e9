# Video stage: Loopbio chunks -> one re-encoded mp4 per camera at the empirical frame rate,
# calibration footage, and the camera frame-count JSON (docs/original-pipeline.md step 4).


rule camera_frame_count:
    input:
        camera_frame_metadata,
    output:
        "{sroot}/video/{date_joint}_camera_frame_count_dict.json",
    log:
        "{sroot}/logs/camera_frame_count_{date_joint}.log",
    benchmark:
        "{sroot}/benchmarks/camera_frame_count_{date_joint}.tsv"
    conda:
        "../envs/usvflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        cameras=camera_folders,
    script:
        "../scripts/video_frame_counts.py"


rule concatenate_video:
    input:
        camera_chunks,
    output:
        maybe_temp("{sroot}/video/concatenated_temp_{serial}.mp4"),
    log:
        "{sroot}/logs/concatenate_video_{serial}.log",
    benchmark:
        "{sroot}/benchmarks/concatenate_video_{serial}.tsv"
    conda:
        "../envs/usvflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=60,
    script:
        "../scripts/video_concat.py"


rule reencode_video:
    input:
        video="{sroot}/video/concatenated_temp_{serial}.mp4",
        # The raw chunks too: the concatenation is temp(), and Snakemake does not look upstream of a
        # removed temp file, so without them a re-exported chunk would not trigger re-encoding.
        chunks=camera_chunks,
        counts="{sroot}/video/{date_joint}_camera_frame_count_dict.json",
    output:
        "{sroot}/video/{date_joint}/{serial}/{serial}-{date_joint}.mp4",
    log:
        "{sroot}/logs/reencode_video_{serial}_{date_joint}.log",
    benchmark:
        "{sroot}/benchmarks/reencode_video_{serial}_{date_joint}.tsv"
    conda:
        "../envs/usvflow.yaml"
    threads: 2
    resources:
        mem_mb=2000,
        runtime=360,
    params:
        crf=config["video"]["constant_rate_factor"],
        preset=config["video"]["encoding_preset"],
    script:
        "../scripts/video_reencode.py"


rule reencode_calibration_video:
    input:
        chunks=calibration_chunks,
        frames=calibration_frame_metadata,
    output:
        "{sroot}/video/{date_joint}/{serial}/calibration_images/{serial}-{date_joint}-calibration.mp4",
    log:
        "{sroot}/logs/reencode_calibration_video_{serial}_{date_joint}.log",
    benchmark:
        "{sroot}/benchmarks/reencode_calibration_video_{serial}_{date_joint}.tsv"
    conda:
        "../envs/usvflow.yaml"
    threads: 2
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        crf=config["video"]["constant_rate_factor"],
        preset=config["video"]["encoding_preset"],
    script:
        "../scripts/video_reencode_calibration.py"
