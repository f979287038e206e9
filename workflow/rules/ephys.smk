# E-phys: E/V sync (step 1), concatenation (step 2), Kilosort4, split to sessions (step 3).
#
# Per session and probe: the sync word -> E/V verdict. Per e-phys group (sessions sheet, in sheet
# order) and probe, in <ephys_root>/<YYYYMMDD>_imec<N>/ (YYYYMMDD of the group's first session): the
# changepoints JSON (one rule gathers the group's sessions: one writer), the concatenated recording
# and, optionally, Kilosort4. Per session again: the unit quality metrics (SpikeInterface) and the
# sorted clusters split into cluster_data/ (their manifest carries the metrics).
rule ev_sync_word:
    input:
        unpack(probe_bin_meta),
    output:
        "{sroot}/ephys/{probe}/{session}_{probe}_sync_ch_data.npy",
    log:
        "{sroot}/logs/ev_sync_word_{session}_{probe}.log",
    benchmark:
        "{sroot}/benchmarks/ev_sync_word_{session}_{probe}.tsv"
    wildcard_constraints:
        probe=r"imec\d+",
        session=r"\d{8}_\d{6}",
    conda:
        "../envs/usvflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=120,
    script:
        "../scripts/ephys_sync_word.py"


rule ev_sync_check:
    input:
        unpack(probe_bin_meta),
        sync="{sroot}/ephys/{probe}/{session}_{probe}_sync_ch_data.npy",
        counts=frame_count_json,
    output:
        json=report(
            "{sroot}/ephys/{probe}/{session}_{probe}_ev_sync.json",
            caption="../report/ev_sync.rst",
            category="3. Sync",
            subcategory="{session}",
            labels=report_labels("E/V verdict"),
        ),
        onsets="{sroot}/ephys/{probe}/{session}_{probe}_frame_onsets.npy",
    log:
        "{sroot}/logs/ev_sync_check_{session}_{probe}.log",
    benchmark:
        "{sroot}/benchmarks/ev_sync_check_{session}_{probe}.tsv"
    wildcard_constraints:
        probe=r"imec\d+",
        session=r"\d{8}_\d{6}",
    conda:
        "../envs/usvflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        ev=config["sync"]["ev"],
        calibrated_rates=config["ephys"]["calibrated_sample_rates"],
        fail_on_mismatch=config["sync"]["fail_on_mismatch"],
    script:
        "../scripts/ephys_ev_check.py"


rule ev_phase_shift:
    input:
        unpack(probe_bin_meta),
    output:
        bin="{sroot}/ephys/{probe}/{session}.{probe}.ap_phase_shifted.bin",
        meta="{sroot}/ephys/{probe}/{session}.{probe}.ap_phase_shifted.meta",
    log:
        "{sroot}/logs/ev_phase_shift_{session}_{probe}.log",
    benchmark:
        "{sroot}/benchmarks/ev_phase_shift_{session}_{probe}.tsv"
    wildcard_constraints:
        probe=r"imec\d+",
        session=r"\d{8}_\d{6}",
    conda:
        "../envs/usvflow.yaml"
    # chunks shifted on the rule's threads: ~1.6x real time per core on 385 channels
    threads: 4
    resources:
        mem_mb=2000,
        runtime=240,
    script:
        "../scripts/ephys_phase_shift.py"


rule ephys_changepoints:
    input:
        unpack(group_recordings),
        ev=group_ev_results,
    output:
        "{eroot}/{day}_{probe}/changepoints_info_{day}_{probe}.json",
    log:
        "{eroot}/{day}_{probe}/logs/ephys_changepoints_{day}_{probe}.log",
    benchmark:
        "{eroot}/{day}_{probe}/benchmarks/ephys_changepoints_{day}_{probe}.tsv"
    wildcard_constraints:
        eroot=EROOT_RE,
        day=r"\d{8}",
        probe=r"imec\d+",
    conda:
        "../envs/usvflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        sessions=group_sessions,
        calibrated_rates=config["ephys"]["calibrated_sample_rates"],
    script:
        "../scripts/ephys_changepoints.py"


rule ephys_concatenate:
    input:
        unpack(concat_inputs),
    output:
        bin=f"{{eroot}}/{{day}}_{{probe}}/concatenated_{{day}}_{{probe}}.{EPHYS_FT}.bin",
        meta=f"{{eroot}}/{{day}}_{{probe}}/concatenated_{{day}}_{{probe}}.{EPHYS_FT}.meta",
    log:
        "{eroot}/{day}_{probe}/logs/ephys_concatenate_{day}_{probe}.log",
    benchmark:
        "{eroot}/{day}_{probe}/benchmarks/ephys_concatenate_{day}_{probe}.tsv"
    wildcard_constraints:
        eroot=EROOT_RE,
        day=r"\d{8}",
        probe=r"imec\d+",
    conda:
        "../envs/usvflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=240,
    script:
        "../scripts/ephys_concatenate.py"


if config["ephys"]["sorting"]["run"]:

    rule kilosort4:
        input:
            bin=f"{{eroot}}/{{day}}_{{probe}}/concatenated_{{day}}_{{probe}}.{EPHYS_FT}.bin",
            meta=f"{{eroot}}/{{day}}_{{probe}}/concatenated_{{day}}_{{probe}}.{EPHYS_FT}.meta",
        output:
            [f"{{eroot}}/{{day}}_{{probe}}/{KS_DIRNAME}/{f}" for f in KS_FILES],
            f"{{eroot}}/{{day}}_{{probe}}/{KS_DIRNAME}/cluster_group.tsv",
            f"{{eroot}}/{{day}}_{{probe}}/{KS_DIRNAME}/cluster_KSLabel.tsv",
            f"{{eroot}}/{{day}}_{{probe}}/{KS_DIRNAME}/params.py",
        log:
            "{eroot}/{day}_{probe}/logs/kilosort4_{day}_{probe}.log",
        benchmark:
            "{eroot}/{day}_{probe}/benchmarks/kilosort4_{day}_{probe}.tsv"
        wildcard_constraints:
            eroot=EROOT_RE,
            day=r"\d{8}",
            probe=r"imec\d+",
        conda:
            "../envs/kilosort.yaml"
        threads: 8
        resources:
            gpu=1,
            mem_mb=64000,
            runtime=720,
        params:
            results_dir=kilosort_results_dir,
            calibrated_rates=config["ephys"]["calibrated_sample_rates"],
            conda_env=config["ephys"]["sorting"]["conda_env"],
            python=config["ephys"]["sorting"]["python"],
        script:
            "../scripts/ephys_kilosort4.py"


rule ephys_quality_metrics:
    input:
        unpack(quality_inputs),
    output:
        report(
            "{sroot}/ephys/{probe}/{session}_{probe}_quality_metrics.csv",
            caption="../report/quality_metrics.rst",
            category="5. E-phys",
            subcategory="{session}",
            labels=report_labels("unit quality metrics"),
        ),
    log:
        "{sroot}/logs/ephys_quality_metrics_{session}_{probe}.log",
    benchmark:
        "{sroot}/benchmarks/ephys_quality_metrics_{session}_{probe}.tsv"
    wildcard_constraints:
        probe=r"imec\d+",
        session=r"\d{8}_\d{6}",
    conda:
        "../envs/usvflow.yaml"
    # threads: the passes over the whole recording (filtering 385 channels) run on this many threads;
    # ~550 MB plus ~150 MB per thread
    threads: 4
    resources:
        mem_mb=2000,
        runtime=120,
    params:
        spikes=config["ephys"]["spikes"],
        quality=QUALITY,
        raw_bin=raw_probe_bin,
    script:
        "../scripts/ephys_quality_metrics.py"


rule ephys_split_spikes:
    input:
        unpack(sorter_inputs),
        quality=split_quality_input,
    output:
        folder=directory("{sroot}/ephys/{probe}/cluster_data"),
        manifest="{sroot}/ephys/{probe}/{probe}_cluster_data_manifest.json",
    log:
        "{sroot}/logs/ephys_split_spikes_{probe}.log",
    benchmark:
        "{sroot}/benchmarks/ephys_split_spikes_{probe}.tsv"
    wildcard_constraints:
        probe=r"imec\d+",
    conda:
        "../envs/usvflow.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        spikes=config["ephys"]["spikes"],
        thresholds=QUALITY["thresholds"],
    script:
        "../scripts/ephys_split.py"
