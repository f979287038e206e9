# Pose: SLEAP inference, SLP -> H5, calibration, triangulation, metric arena frame (steps 5-7).
#
# Per session folder video/<date_joint>/:
#   <serial>/<serial>-<dj>.predictions.slp   SLEAP inference (rule sleap_predict, GPU) or external
#   <serial>/<serial>-<dj>.slp               proofread in the SLEAP GUI (external; the arena labelling
#                                            of a calibration session is such a file)
#   <serial>/<serial>-<dj>.analysis.h5       rule slp_to_h5
#   <dj>_calibration.toml (+ .metadata.h5, _reprojection_histogram.svg)   calibration sessions
#   <dj>_points3d.h5                         rule triangulate (arena mode in calibration sessions)
#   <dj>_pose_qc.json                        rule triangulate: per camera reprojection error / missing
#                                            points, per animal pose coverage, cameras that stand out
#   <dj>_points3d_translated_rotated_metric.h5   rule recoordinate
# Without the proofread files a session's pose products are not requested: the run goes on with
# the other stages and lists the sessions awaiting proofreading.
# ---------------------------------------------------------------- rules
if POSE["sleap"]["run"]:

    rule sleap_predict:
        input:
            video="{sroot}/video/{date_joint}/{serial}/{serial}-{date_joint}.mp4",
            centroid=sleap_model_files("centroid_model"),
            centered_instance=sleap_model_files("centered_instance_model"),
        output:
            "{sroot}/video/{date_joint}/{serial}/{serial}-{date_joint}.predictions.slp",
        log:
            "{sroot}/logs/sleap_predict_{serial}_{date_joint}.log",
        benchmark:
            "{sroot}/benchmarks/sleap_predict_{serial}_{date_joint}.tsv"
        conda:
            "../envs/sleap.yaml"
        threads: 2
        resources:
            gpu=1,
            mem_mb=16000,
            runtime=360,
        params:
            exe=POSE["sleap"]["executable"],
            centroid=sleap_model_dir("centroid_model"),
            centered_instance=sleap_model_dir("centered_instance_model"),
            s=POSE["sleap"],
            tmp=lambda wc, output: output[0] + ".tmp.slp",
            guard=MODELCHECK,
        shell:
            # the original's cluster call (usv-playpen sleap_inference_global.sh), top-down models
            "{params.guard} sleap {params.centroid:q} --exe {params.exe:q} > {log:q} || exit 2; "
            "{params.guard} sleap {params.centered_instance:q} --exe {params.exe:q} >> {log:q} || exit 2; "
            "{params.exe:q} track -i {input.video:q} -m {params.centroid:q}"
            " -m {params.centered_instance:q} -o {params.tmp:q}"
            " --batch_size {params.s[batch_size]} --max_instances {params.s[max_instances]}"
            " --peak_threshold {params.s[peak_threshold]}"
            " --filter_min_instance_score {params.s[filter_min_instance_score]}"
            " --filter_min_mean_node_score {params.s[filter_min_mean_node_score]}"
            " --filter_min_visible_nodes {params.s[filter_min_visible_nodes]}"
            " --filter_overlapping --filter_overlapping_method oks"
            " --filter_overlapping_threshold {params.s[filter_overlapping_threshold]}"
            " --tracking --tracking_window_size {params.s[tracking_window_size]} >> {log:q} 2>&1; "
            "if [ ! -s {params.tmp:q} ]; then"
            " echo 'sleap-nn exited 0 but wrote no predictions' >> {log:q}; exit 1; fi; "
            "mv {params.tmp:q} {output:q}"


rule slp_to_h5:
    input:
        slp=slp_input,
        counts=slp_frame_count,
    output:
        "{sroot}/video/{date_joint}/{serial}/{serial}-{date_joint}.analysis.h5",
    log:
        "{sroot}/logs/slp_to_h5_{serial}_{date_joint}.log",
    benchmark:
        "{sroot}/benchmarks/slp_to_h5_{serial}_{date_joint}.tsv"
    conda:
        "../envs/anipose.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    script:
        "../scripts/pose_slp_to_h5.py"


rule calibrate_cameras:
    input:
        calibration_videos,
    output:
        toml="{sroot}/video/{date_joint}/{date_joint}_calibration.toml",
        metadata="{sroot}/video/{date_joint}/{date_joint}_calibration.metadata.h5",
        histogram=report(
            "{sroot}/video/{date_joint}/{date_joint}_reprojection_histogram.svg",
            caption="../report/reprojection_histogram.rst",
            category="4. Pose",
            labels=report_labels("calibration reprojection errors"),
        ),
    log:
        "{sroot}/logs/calibrate_cameras_{date_joint}.log",
    benchmark:
        "{sroot}/benchmarks/calibrate_cameras_{date_joint}.tsv"
    conda:
        "../envs/anipose.yaml"
    threads: 4
    resources:
        mem_mb=8000,
        runtime=120,
    params:
        board=POSE["calibration"],
        serials=lambda wc: pose_serials(pose_session(wc)),
    script:
        "../scripts/pose_calibrate.py"


rule triangulate:
    input:
        unpack(triangulation_inputs),
    output:
        points=maybe_temp_points3d("{sroot}/video/{date_joint}/{date_joint}_points3d.h5"),
        qc=report(
            "{sroot}/video/{date_joint}/{date_joint}_pose_qc.json",
            caption="../report/pose_qc.rst",
            category="4. Pose",
            labels=report_labels("pose QC"),
        ),
    log:
        "{sroot}/logs/triangulate_{date_joint}.log",
    benchmark:
        "{sroot}/benchmarks/triangulate_{date_joint}.tsv"
    conda:
        "../envs/anipose.yaml"
    threads: 8
    resources:
        # ~170 MB + ~210 MB per worker at chunk_frames 500: under 2 GB on 8 threads
        mem_mb=2500,
        runtime=240,
    params:
        tri=POSE["triangulation"],
        session=pose_session_params,
        sid=pose_session,
        serials=lambda wc: pose_serials(pose_session(wc)),
    script:
        "../scripts/pose_triangulate.py"


rule recoordinate:
    input:
        unpack(recoordinate_inputs),
    output:
        "{sroot}/video/{date_joint}/{date_joint}_points3d_translated_rotated_metric.h5",
    log:
        "{sroot}/logs/recoordinate_{date_joint}.log",
    benchmark:
        "{sroot}/benchmarks/recoordinate_{date_joint}.tsv"
    conda:
        "../envs/usvflow.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        arena=POSE["arena"],
        session=pose_session_params,
    script:
        "../scripts/pose_recoordinate.py"
