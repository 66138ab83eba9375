# Clinicians versus the model: survey answers (imported or, for the demo, simulated) and Table 1.


rule import_survey:
    input:
        export=get_qualtrics_field("export"),
        mapping=get_qualtrics_field("mapping"),
    output:
        survey="results/clinicians/imported/{index}.tsv",
        rejects="results/clinicians/imported/{index}.rejects.tsv",
    log:
        "logs/import_survey/{index}.log",
    wildcard_constraints:
        index=r"\d+",
    conda:
        "../../envs/cpu.yaml"
    params:
        options=get_options("import-survey"),
    shell:
        "syndface import-survey --qualtrics {input.export} --mapping {input.mapping} --index {wildcards.index}"
        " --options {params.options:q} --out {output.survey} --rejects {output.rejects} > {log} 2>&1"


rule simulate_survey:
    input:
        manifest="results/cohort/manifest.tsv",
    output:
        "results/clinicians/simulated_survey.tsv",
    log:
        "logs/simulate_survey.log",
    conda:
        "../../envs/cpu.yaml"
    params:
        options=get_options("simulate-survey"),
    shell:
        "syndface simulate-survey --manifest {input.manifest} --options {params.options:q} --out {output} > {log} 2>&1"


rule compare_clinicians:
    input:
        surveys=get_surveys(),
        predictions=get_predictions(),
        selection=get_best_fake_inputs(),
    output:
        table1=report(
            "results/table1.tsv",
            caption="../report/table1.rst",
            category="5. Clinicians",
            subcategory="Table 1: clinicians vs model",
        ),
        clinicians=report(
            "results/clinicians.tsv",
            caption="../report/table1.rst",
            category="5. Clinicians",
            subcategory="Table 1: clinicians vs model",
        ),
        images="results/clinicians/images.tsv",
        figure=report(
            "results/clinicians.png",
            caption="../report/clinicians.rst",
            category="5. Clinicians",
            subcategory="Human vs model by age group",
        ),
    log:
        "logs/compare_clinicians.log",
    conda:
        "../../envs/cpu.yaml"
    params:
        predictions=get_predictions_args(),
        selection=get_best_fake_args(),
        options=get_options("compare-clinicians"),
    shell:
        "syndface compare-clinicians --survey {input.surveys} {params.predictions} {params.selection}"
        " --options {params.options:q} --table1 {output.table1} --clinicians {output.clinicians}"
        " --images {output.images} --figure {output.figure} > {log} 2>&1"
