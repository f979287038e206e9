# The report (`snakemake --report report.html`): per-session overview figures, the cohort overview
# table (stage `report`), and report() on the stages' own figures and key tables. Products:
#   <session>/report/<sid>_usv_timeline.svg    USVs by time, emitter and call type; tracking window
#   <session>/report/<sid>_call_gallery.png    example spectrograms per call type
#   <session>/report/<sid>_pose_overview.svg   pose QC per camera and animal
#   <session>/report/<sid>_sync_units.svg      A/V and E/V verdicts, units per probe
#   <session>/report/<sid>_explorer.html       the session explorer (self-contained page)
#   <session>/report/<sid>_overview.json       the session's row of the cohort table
#   report/cohort_overview.csv                 one row per session
#   report/stage_plan.csv                      the start-up table: stages per session, why skipped
# Captions: workflow/report/*.rst.


rule overview_row:
    input:
        unpack(overview_session_inputs),
    output:
        "{sroot}/report/{session}_overview.json",
    log:
        "{sroot}/logs/overview_row_{session}.log",
    benchmark:
        "{sroot}/benchmarks/overview_row_{session}.tsv"
    conda:
        "../envs/usvflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/report_overview.py"


rule overview_timeline:
    input:
        unpack(overview_session_inputs),
    output:
        report(
            "{sroot}/report/{session}_usv_timeline.svg",
            caption="../report/usv_timeline.rst",
            category="1. Session overview",
            subcategory="{session}",
            labels=report_labels("USV timeline"),
        ),
    log:
        "{sroot}/logs/overview_timeline_{session}.log",
    benchmark:
        "{sroot}/benchmarks/overview_timeline_{session}.tsv"
    conda:
        "../envs/usvflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/report_overview.py"


rule overview_gallery:
    input:
        unpack(overview_session_inputs),
    output:
        report(
            "{sroot}/report/{session}_call_gallery.png",
            caption="../report/call_gallery.rst",
            category="1. Session overview",
            subcategory="{session}",
            labels=report_labels("call gallery"),
        ),
    log:
        "{sroot}/logs/overview_gallery_{session}.log",
    benchmark:
        "{sroot}/benchmarks/overview_gallery_{session}.tsv"
    conda:
        "../envs/usvflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        per_type=4,
    script:
        "../scripts/report_overview.py"


rule overview_pose:
    input:
        unpack(overview_session_inputs),
    output:
        report(
            "{sroot}/report/{session}_pose_overview.svg",
            caption="../report/pose_overview.rst",
            category="1. Session overview",
            subcategory="{session}",
            labels=report_labels("pose QC"),
        ),
    log:
        "{sroot}/logs/overview_pose_{session}.log",
    benchmark:
        "{sroot}/benchmarks/overview_pose_{session}.tsv"
    conda:
        "../envs/usvflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/report_overview.py"


rule overview_sync_units:
    input:
        unpack(overview_session_inputs),
    output:
        report(
            "{sroot}/report/{session}_sync_units.svg",
            caption="../report/sync_units.rst",
            category="1. Session overview",
            subcategory="{session}",
            labels=report_labels("sync and units"),
        ),
    log:
        "{sroot}/logs/overview_sync_units_{session}.log",
    benchmark:
        "{sroot}/benchmarks/overview_sync_units_{session}.tsv"
    conda:
        "../envs/usvflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/report_overview.py"


rule session_explorer:
    input:
        unpack(explorer_session_inputs),
    output:
        report(
            "{sroot}/report/{session}_explorer.html",
            caption="../report/explorer.rst",
            category="1. Session overview",
            subcategory="{session}",
            labels=report_labels("session explorer"),
        ),
    log:
        "{sroot}/logs/session_explorer_{session}.log",
    benchmark:
        "{sroot}/benchmarks/session_explorer_{session}.tsv"
    conda:
        "../envs/usvflow.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        frame_width=320,
    script:
        "../scripts/report_overview.py"


rule cohort_overview:
    input:
        overview_rows,
    output:
        report(
            f"{REPORT_DIR}/cohort_overview.csv",
            caption="../report/cohort_overview.rst",
            category="0. Cohort",
            labels={"figure": "cohort overview"},
        ),
    log:
        f"{REPORT_DIR}/logs/cohort_overview.log",
    benchmark:
        f"{REPORT_DIR}/benchmarks/cohort_overview.tsv"
    conda:
        "../envs/usvflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/report_overview.py"


rule stage_plan:
    output:
        report(
            f"{REPORT_DIR}/stage_plan.csv",
            caption="../report/stage_plan.rst",
            category="0. Cohort",
            labels={"figure": "stage plan"},
        ),
    log:
        f"{REPORT_DIR}/logs/stage_plan.log",
    benchmark:
        f"{REPORT_DIR}/benchmarks/stage_plan.tsv"
    conda:
        "../envs/usvflow.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        rows=stage_plan_rows(),
    script:
        "../scripts/report_stage_plan.py"
