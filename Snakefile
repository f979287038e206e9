# usvflow: rodent social-experiment recordings -> synchronized, analysis-ready products.
# Run from the repository root: snakemake --cores N [--configfile COHORT.yaml] (see README.md).
from snakemake.utils import min_version

min_version("9.0")


configfile: workflow.source_path("config/config.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/common/sync.smk"
include: "workflow/rules/common/ephys.smk"
include: "workflow/rules/common/pose.smk"
include: "workflow/rules/common/assignment.smk"
include: "workflow/rules/common/calltypes.smk"
include: "workflow/rules/common/nwb.smk"
include: "workflow/rules/video.smk"
include: "workflow/rules/audio.smk"
include: "workflow/rules/usv.smk"
include: "workflow/rules/sync.smk"
include: "workflow/rules/ephys.smk"
include: "workflow/rules/pose.smk"
include: "workflow/rules/assignment.smk"
include: "workflow/rules/calltypes.smk"
include: "workflow/rules/nwb.smk"


rule all:
    default_target: True
    input:
        all_targets,


onstart:
    check_audio_disk_space()
