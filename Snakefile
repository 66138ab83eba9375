# syndface: facial diagnosis of genetic syndromes across the lifespan (after Duong et al. 2022).
#   snakemake --cores all                    # whole study on the embedded demo cohort
#   snakemake --configfile config/paper.yaml --profile slurm all
#   snakemake results/table2.tsv             # one artifact and only what it needs
from snakemake.utils import min_version

min_version("9.19")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/resources.smk"
include: "workflow/rules/cohort.smk"
include: "workflow/rules/align.smk"
include: "workflow/rules/classify.smk"
include: "workflow/rules/gan.smk"
include: "workflow/rules/saliency.smk"
include: "workflow/rules/clinicians.smk"
include: "workflow/rules/evaluation.smk"


rule all:
    default_target: True
    input:
        get_final_outputs(),


# Only the GPU rules (and, with cluster.cpu_rules: submit, the heavy CPU rules) go to a cluster.
workflow.localrules(*get_local_rules(rule.name for rule in workflow.rules))
