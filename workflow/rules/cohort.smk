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
        seed=SEED,
        demo=config["demo"],
    shell:
        "syndface make-demo-cohort --out-dir {params.out_dir} --seed {params.seed}"
        " --n-subjects {params.demo[n_subjects]} --n-auxiliary {params.demo[n_auxiliary]}"
        " --test-per-group {params.demo[test_per_group]} --image-size {params.demo[image_size]}"
        " --render-scale {params.demo[render_scale]} --grey-share {params.demo[grey_share]}"
        " --signal-strength {params.demo[signal_strength]}"
        " > {log} 2>&1"


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
        inputs=json.dumps(get_cohort_specs()),
        schema=MANIFEST_SCHEMA,
        age_map=json.dumps(config["cohort"]["fairface_age_map"]),
        seed=SEED,
    shell:
        "syndface build-manifest --inputs {params.inputs:q} --fairface-age-map {params.age_map:q}"
        " --seed {params.seed} --schema {params.schema} --out {output.manifest}"
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
        n_folds=config["folds"]["n_folds"],
        group_by=config["folds"]["group_by"],
        seed=SEED,
    shell:
        "syndface make-folds --manifest {input.manifest} --n-folds {params.n_folds}"
        " --group-by {params.group_by} --seed {params.seed} --out {output.folds}"
        " --summary {output.summary} > {log} 2>&1"
