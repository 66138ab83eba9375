# Classifier: one model per (variant, fold), the thresholded fold ensemble, evaluation, Table 2.


rule train_classifier:
    input:
        cache=get_classifier_cache(),
        folds="results/folds/folds.tsv",
        fakes=get_fakes_for_variant,
        pretrained=get_pretrained(),
    output:
        model="results/classifier/{variant}/fold{fold}/model.pt",
        history="results/classifier/{variant}/fold{fold}/history.tsv",
    log:
        "logs/train_classifier/{variant}/fold{fold}.log",
    benchmark:
        "benchmarks/train_classifier/{variant}/fold{fold}.tsv"
    conda:
        get_gpu_env()
    threads: 1
    resources:
        **gpu_resources(runtime=720, mem_mb=64000, cpus_per_task=8, training=True),
    params:
        out_dir=subpath(output.model, parent=True),
        options=get_train_options,
        launch=get_launcher(),
        fakes=get_fakes_flag,
        pretrained=get_path_flags("--pretrained", get_pretrained()),
    shell:
        "{params.launch} syndface train-classifier --cache {input.cache} --folds {input.folds} --fold {wildcards.fold}"
        " --variant {wildcards.variant} {params.fakes} {params.pretrained} --options {params.options:q}"
        " --num-threads {threads} --out-dir {params.out_dir} > {log} 2>&1"


rule predict_classifier:
    input:
        models=get_fold_models,
        cache=get_classifier_cache(),
    output:
        "results/predictions/{variant}/test.tsv",
    log:
        "logs/predict_classifier/{variant}.log",
    conda:
        get_gpu_env()
    threads: 1
    resources:
        **gpu_resources(runtime=60, mem_mb=32000, cpus_per_task=4),
    params:
        options=get_options("predict"),
    shell:
        "syndface predict --models {input.models} --cache {input.cache} --options {params.options:q}"
        " --num-threads {threads} --out {output} > {log} 2>&1"


rule evaluate_classifier:
    input:
        predictions="results/predictions/{variant}/test.tsv",
        manifest="results/cohort/manifest.tsv",
        failed="results/aligned/failed.tsv",
    output:
        metrics="results/evaluation/{variant}/metrics.tsv",
        per_group="results/evaluation/{variant}/per_group.tsv",
        two_way="results/evaluation/{variant}/two_way.tsv",
        confusion="results/evaluation/{variant}/confusion.tsv",
        excluded="results/evaluation/{variant}/excluded.tsv",
        figure=report(
            "results/evaluation/{variant}/confusion.png",
            caption="../report/confusion.rst",
            category="2. Classifier",
            subcategory="Figure 3: confusion matrices",
            labels={"variant": "{variant}"},
        ),
    log:
        "logs/evaluate_classifier/{variant}.log",
    conda:
        "../../envs/cpu.yaml"
    params:
        out_dir=subpath(output.metrics, parent=True),
        options=get_options("evaluate-classifier"),
    shell:
        "syndface evaluate-classifier --predictions {input.predictions} --manifest {input.manifest}"
        " --failed {input.failed} --options {params.options:q}"
        " --out-dir {params.out_dir} > {log} 2>&1"


rule make_table2:
    input:
        metrics=get_variant_metrics(),
        tta=get_tta_metrics(),
    output:
        report(
            "results/table2.tsv",
            caption="../report/table2.rst",
            category="2. Classifier",
            subcategory="Table 2: accuracy per class",
        ),
    log:
        "logs/make_table2.log",
    conda:
        "../../envs/cpu.yaml"
    params:
        metrics=get_variant_metrics_args(),
        tta=get_tta_metrics_args(),
        options=get_options("make-table2"),
    shell:
        "syndface make-table2 --metrics {params.metrics} {params.tta} --options {params.options:q} --out {output} > {log} 2>&1"
