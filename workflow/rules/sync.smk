# A/V sync check (docs/original-pipeline.md step 15): LED intensities of the sync camera(s), IPIs of
# the LED train in video, audio LSB (every device) and optional NIDQ, aligned with the Arduino log
# -> sync/<session>_av_sync.json (every IPI's discrepancy, statistics, verdict) and
# sync/<session>_summary.svg. No file is deleted. With sync.fail_on_mismatch the rule av_sync_gate
# (sync/<session>_av_sync.passed) fails on a failed verdict.
rule sync_led_pixels:
    input:
        video="{sroot}/video/{date_joint}/{serial}/{serial}-{date_joint}.mp4",
        counts="{sroot}/video/{date_joint}_camera_frame_count_dict.json",
    output:
        px="{sroot}/sync/sync_px_{serial}-{date_joint}",
        info="{sroot}/sync/sync_px_{serial}-{date_joint}.json",
    log:
        "{sroot}/logs/sync_led_pixels_{serial}_{date_joint}.log",
    benchmark:
        "{sroot}/benchmarks/sync_led_pixels_{serial}_{date_joint}.tsv"
    conda:
        "../envs/usvflow.yaml"
    threads: 2
    resources:
        mem_mb=1000,
        runtime=120,
    params:
        led_pixels=AV["led_pixels"],
        version=AV["led_px_version"],
        dev=AV["led_px_dev"],
        search_s=AV["led_search_s"],
    script:
        "../scripts/sync_led_pixels.py"


rule sync_nidq_ipis:
    input:
        bin=av_nidq_bin,
        meta=av_nidq_meta,
        counts=frame_count_json,
    output:
        "{sroot}/sync/nidq_ipi_data.npy",
    log:
        "{sroot}/logs/sync_nidq_ipis.log",
    benchmark:
        "{sroot}/benchmarks/sync_nidq_ipis.tsv"
    conda:
        "../envs/usvflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=60,
    params:
        nidq=AV["nidq"],
    script:
        "../scripts/sync_nidq_ipis.py"


rule av_sync_check:
    input:
        unpack(av_led_files),
        unpack(av_optional_inputs),
        counts=frame_count_json,
        audio=av_audio_channels,
        coolterm=av_coolterm,
        frames=expand(
            "{{sroot}}/sync/{dev}_video_frames_in_audio_samples.txt",
            dev=config["audio"]["devices"],
        ),
    output:
        report(
            "{sroot}/sync/{session}_av_sync.json",
            caption="../report/av_sync.rst",
            category="3. Sync",
            subcategory="{session}",
            labels=report_labels("A/V verdict"),
        ),
    log:
        "{sroot}/logs/av_sync_check_{session}.log",
    benchmark:
        "{sroot}/benchmarks/av_sync_check_{session}.tsv"
    conda:
        "../envs/usvflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        session=_av_sid,
        serials=lambda w: av_sync_serials(_av_sid(w)),
        devices=config["audio"]["devices"],
        cameras=av_camera_folders,
        av=AV,
    script:
        "../scripts/sync_av_check.py"


rule av_sync_summary:
    input:
        "{sroot}/sync/{session}_av_sync.json",
    output:
        report(
            "{sroot}/sync/{session}_summary.svg",
            caption="../report/av_summary.rst",
            category="3. Sync",
            subcategory="{session}",
            labels=report_labels("A/V discrepancies"),
        ),
    log:
        "{sroot}/logs/av_sync_summary_{session}.log",
    benchmark:
        "{sroot}/benchmarks/av_sync_summary_{session}.tsv"
    conda:
        "../envs/usvflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/sync_summary.py"


rule av_sync_gate:
    input:
        "{sroot}/sync/{session}_av_sync.json",
    output:
        "{sroot}/sync/{session}_av_sync.passed",
    log:
        "{sroot}/logs/av_sync_gate_{session}.log",
    benchmark:
        "{sroot}/benchmarks/av_sync_gate_{session}.tsv"
    conda:
        "../envs/usvflow.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    script:
        "../scripts/sync_gate.py"
