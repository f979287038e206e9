# Audio chain: split -> crop to video (drift-corrected) -> HPSS -> high-pass -> memmap
# (docs/original-pipeline.md steps 8-11), streamed, one job per channel for HPSS and the filter.


rule split_audio_channels:
    input:
        device_files,
    output:
        audio_temp(
            "split",
            expand(
                "{{sroot}}/audio/original/{{dev}}_{{stamp}}_ch{ch}.wav",
                ch=[f"{c:02d}" for c in range(1, config["audio"]["channels_per_device"] + 1)],
            ),
        ),
    log:
        "{sroot}/logs/split_audio_channels_{dev}_{stamp}.log",
    benchmark:
        "{sroot}/benchmarks/split_audio_channels_{dev}_{stamp}.tsv"
    conda:
        "../envs/usvflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=120,
    params:
        channels=config["audio"]["channels_per_device"],
    script:
        "../scripts/audio_split.py"


rule audio_sync_info:
    input:
        trigger=trigger_channels,
        counts=frame_count_json,
    output:
        info="{sroot}/audio/audio_triggerbox_sync_info.json",
        frames=expand(
            "{{sroot}}/sync/{dev}_video_frames_in_audio_samples.txt",
            dev=config["audio"]["devices"],
        ),
    log:
        "{sroot}/logs/audio_sync_info.log",
    benchmark:
        "{sroot}/benchmarks/audio_sync_info.tsv"
    conda:
        "../envs/usvflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=60,
    params:
        devices=config["audio"]["devices"],
        trigger_device=config["audio"]["crop"]["trigger_device"],
    script:
        "../scripts/audio_sync_info.py"


rule crop_audio_to_video:
    input:
        wav="{sroot}/audio/original/{dev}_{stamp}_ch{ch}.wav",
        info="{sroot}/audio/audio_triggerbox_sync_info.json",
        frames=expand(
            "{{sroot}}/sync/{dev}_video_frames_in_audio_samples.txt",
            dev=config["audio"]["devices"],
        ),
    output:
        audio_temp(
            "cropped", "{sroot}/audio/cropped_to_video/{dev}_{stamp}_ch{ch}_cropped_to_video.wav"
        ),
    log:
        "{sroot}/logs/crop_audio_to_video_{dev}_{stamp}_ch{ch}.log",
    benchmark:
        "{sroot}/benchmarks/crop_audio_to_video_{dev}_{stamp}_ch{ch}.tsv"
    conda:
        "../envs/usvflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=120,
    params:
        devices=config["audio"]["devices"],
        trigger_device=config["audio"]["crop"]["trigger_device"],
    script:
        "../scripts/audio_crop.py"


rule hpss:
    input:
        "{sroot}/audio/cropped_to_video/{name}_cropped_to_video.wav",
    output:
        audio_temp("hpss", "{sroot}/audio/hpss/{name}_cropped_to_video_hpss.wav"),
    log:
        "{sroot}/logs/hpss_{name}.log",
    benchmark:
        "{sroot}/benchmarks/hpss_{name}.tsv"
    conda:
        "../envs/usvflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=120,
    params:
        **config["audio"]["hpss"],
    script:
        "../scripts/audio_hpss.py"


rule highpass_filter:
    input:
        "{sroot}/audio/hpss/{name}_cropped_to_video_hpss.wav",
    output:
        "{sroot}/audio/hpss_filtered/{name}_cropped_to_video_hpss_filtered.wav",
    log:
        "{sroot}/logs/highpass_filter_{name}.log",
    benchmark:
        "{sroot}/benchmarks/highpass_filter_{name}.tsv"
    conda:
        "../envs/usvflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=60,
    params:
        **config["audio"]["filter"],
    script:
        "../scripts/audio_highpass.py"


# Fixed names, so that every job of a run is known when it is planned (the sample count is only
# known after cropping); the script links the documented
# <stamp>_concatenated_audio_hpss_filtered_<sr>_<n>_<nch>_int16.mmap/.json names to these files.
rule audio_memmap:
    input:
        filtered_channels,
    output:
        mmap="{sroot}/audio/hpss_filtered/{stamp}_concatenated_audio_hpss_filtered.dat",
        sidecar="{sroot}/audio/hpss_filtered/{stamp}_concatenated_audio_hpss_filtered.json",
    log:
        "{sroot}/logs/audio_memmap_{stamp}.log",
    benchmark:
        "{sroot}/benchmarks/audio_memmap_{stamp}.tsv"
    conda:
        "../envs/usvflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=60,
    script:
        "../scripts/audio_memmap.py"
