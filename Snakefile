# usvflow: rodent social-experiment recordings -> synchronized, analysis-ready products.
# Run from the repository root: snakemake --cores N [--configfile COHORT.yaml] (see README.md).
from snakemake.utils import min_version

min_version("9.0")


configfile: workflow.source_path("config/config.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


# Every stage is two files, included here without being named (docs/new-stage.md): its input
# functions and targets in workflow/rules/common/<stage>.smk, its rules in workflow/rules/<stage>.smk.
for _stage_file in sorted(Path(workflow.basedir, "workflow", "rules", "common").glob("*.smk")):

    include: _stage_file


for _stage_file in sorted(Path(workflow.basedir, "workflow", "rules").glob("*.smk")):
    if _stage_file.name != "common.smk":

        include: _stage_file


if workflow.is_main_process:
    print_stage_plan()  # one table at start-up (workflow/rules/common/plan.smk)


rule all:
    default_target: True
    input:
        all_targets,


onstart:
    check_audio_disk_space()
