# Cohort: the demo cohort (when enabled), the manifest, the folds.


rule make_demo_cohort:
    output:
        cohort=DEMO_COHORT,
        landmarks="results/demo/landmarks.tsv",
        regions="results/demo/regions.npz",
        images=directory("results/demo/images"),
    log:
        "logs/make_demo_cohort.log",
    benchmark:
        "benchmarks/make_demo_cohort.tsv"
    conda:
        "../../envs/cpu.yaml"
    params:
        out_dir=subpath(output.cohort, parent=True),
        options=get_options("make-demo-cohort"),
    shell:
        "syndface make-demo-cohort --options {params.options:q} --out-dir {params.out_dir} > {log} 2>&1"


checkpoint build_manifest:
    input:
        tables=get_cohort_tables(),
    output:
        manifest=report(
            "results/cohort/manifest.tsv",
            caption="../report/manifest.rst",
            category="1. Cohort",
            subcategory="Manifest",
        ),
        rejects="results/cohort/rejects.tsv",
        summary=report(
            "results/cohort/summary.tsv",
            caption="../report/manifest.rst",
            category="1. Cohort",
            subcategory="Manifest",
        ),
    log:
        "logs/build_manifest.log",
    conda:
        "../../envs/cpu.yaml"
    params:
        options=get_options("build-manifest"),
        demo=get_path_flags("--demo-cohort", get_demo_cohort()),
    shell:
        "syndface build-manifest --options {params.options:q} {params.demo} --out {output.manifest}"
        " --rejects {output.rejects} --summary {output.summary} > {log} 2>&1"


rule make_folds:
    input:
        manifest="results/cohort/manifest.tsv",
    output:
        folds="results/folds/folds.tsv",
        summary=report(
            "results/folds/summary.tsv",
            caption="../report/folds.rst",
            category="1. Cohort",
            subcategory="Folds",
        ),
    log:
        "logs/make_folds.log",
    conda:
        "../../envs/cpu.yaml"
    params:
        options=get_options("make-folds"),
    shell:
        "syndface make-folds --manifest {input.manifest} --options {params.options:q} --out {output.folds}"
        " --summary {output.summary} > {log} 2>&1"
