# Beyond the paper (syndface.evaluation): calibration, subgroups, top-k/macro and per-subject
# readouts, test-time augmentation, the embedding gallery and a disease held out of training.


rule predict_out_of_fold:
    input:
        models=get_fold_models,
        cache=get_classifier_cache(),
        folds="results/folds/folds.tsv",
    output:
        "results/evaluation/{variant}/out_of_fold.tsv",
    log:
        "logs/predict_out_of_fold/{variant}.log",
    conda:
        get_gpu_env()
    threads: 1
    resources:
        **gpu_resources(runtime=60, mem_mb=32000, cpus_per_task=4),
    params:
        options=get_options("predict-out-of-fold"),
    shell:
        "syndface predict-out-of-fold --models {input.models} --cache {input.cache} --folds {input.folds}"
        " --options {params.options:q} --num-threads {threads} --out {output} > {log} 2>&1"


rule calibrate_classifier:
    input:
        predictions="results/predictions/{variant}/test.tsv",
        out_of_fold=get_out_of_fold,
    output:
        table=report(
            "results/evaluation/{variant}/calibration.tsv",
            caption="../report/calibration.rst",
            category="6. Beyond the paper",
            subcategory="Calibration",
            labels={"variant": "{variant}", "result": "table"},
        ),
        bins="results/evaluation/{variant}/reliability.tsv",
        figure=report(
            "results/evaluation/{variant}/reliability.png",
            caption="../report/calibration.rst",
            category="6. Beyond the paper",
            subcategory="Calibration",
            labels={"variant": "{variant}", "result": "reliability diagram"},
        ),
    log:
        "logs/calibrate_classifier/{variant}.log",
    conda:
        "../../envs/cpu.yaml"
    params:
        out_dir=subpath(output.table, parent=True),
        out_of_fold=get_out_of_fold_flag,
        options=get_options("calibrate-classifier"),
    shell:
        "syndface calibrate-classifier --predictions {input.predictions} {params.out_of_fold}"
        " --options {params.options:q} --out-dir {params.out_dir} > {log} 2>&1"


rule evaluate_subgroups:
    input:
        predictions="results/predictions/{variant}/test.tsv",
        manifest="results/cohort/manifest.tsv",
    output:
        table=report(
            "results/evaluation/{variant}/subgroups.tsv",
            caption="../report/subgroups.rst",
            category="6. Beyond the paper",
            subcategory="Subgroups: age, sex, ancestry",
            labels={"variant": "{variant}", "result": "table"},
        ),
        figure=report(
            "results/evaluation/{variant}/recall_by_age.png",
            caption="../report/subgroups.rst",
            category="6. Beyond the paper",
            subcategory="Subgroups: age, sex, ancestry",
            labels={"variant": "{variant}", "result": "recall by age group"},
        ),
    log:
        "logs/evaluate_subgroups/{variant}.log",
    conda:
        "../../envs/cpu.yaml"
    params:
        out_dir=subpath(output.table, parent=True),
        options=get_options("evaluate-subgroups"),
    shell:
        "syndface evaluate-subgroups --predictions {input.predictions} --manifest {input.manifest}"
        " --options {params.options:q} --out-dir {params.out_dir} > {log} 2>&1"


rule evaluate_readouts:
    input:
        predictions="results/predictions/{variant}/test.tsv",
        manifest="results/cohort/manifest.tsv",
    output:
        readouts=report(
            "results/evaluation/{variant}/readouts.tsv",
            caption="../report/readouts.rst",
            category="6. Beyond the paper",
            subcategory="Top-k, macro F1, per subject",
            labels={"variant": "{variant}", "result": "summary metrics"},
        ),
        subjects=report(
            "results/evaluation/{variant}/subjects.tsv",
            caption="../report/readouts.rst",
            category="6. Beyond the paper",
            subcategory="Top-k, macro F1, per subject",
            labels={"variant": "{variant}", "result": "per image vs per subject"},
        ),
    log:
        "logs/evaluate_readouts/{variant}.log",
    conda:
        "../../envs/cpu.yaml"
    params:
        out_dir=subpath(output.readouts, parent=True),
        options=get_options("evaluate-readouts"),
    shell:
        "syndface evaluate-readouts --predictions {input.predictions} --manifest {input.manifest}"
        " --options {params.options:q} --out-dir {params.out_dir} > {log} 2>&1"


rule predict_tta:
    input:
        models=get_fold_models,
        cache=get_classifier_cache(),
    output:
        "results/evaluation/{variant}/tta/predictions.tsv",
    log:
        "logs/predict_tta/{variant}.log",
    conda:
        get_gpu_env()
    threads: 1
    resources:
        **gpu_resources(runtime=120, mem_mb=32000, cpus_per_task=4),
    params:
        options=get_options("predict-tta"),
    shell:
        "syndface predict-tta --models {input.models} --cache {input.cache} --options {params.options:q}"
        " --num-threads {threads} --out {output} > {log} 2>&1"


# The TTA predictions evaluated as every variant's are (Table 2 reads metrics.tsv).
rule evaluate_tta:
    input:
        predictions="results/evaluation/{variant}/tta/predictions.tsv",
        manifest="results/cohort/manifest.tsv",
        failed="results/aligned/failed.tsv",
    output:
        metrics="results/evaluation/{variant}/tta/metrics.tsv",
    log:
        "logs/evaluate_tta/{variant}.log",
    conda:
        "../../envs/cpu.yaml"
    params:
        out_dir=subpath(output.metrics, parent=True),
        options=get_options("evaluate-classifier"),
    shell:
        "syndface evaluate-classifier --predictions {input.predictions} --manifest {input.manifest}"
        " --failed {input.failed} --options {params.options:q} --title '{wildcards.variant} (TTA)'"
        " --out-dir {params.out_dir} > {log} 2>&1"


rule export_features:
    input:
        models=get_fold_models,
        cache=get_classifier_cache(),
    output:
        "results/evaluation/{variant}/features.npz",
    log:
        "logs/export_features/{variant}.log",
    conda:
        get_gpu_env()
    threads: 1
    resources:
        **gpu_resources(runtime=120, mem_mb=32000, cpus_per_task=4),
    params:
        options=get_options("export-features"),
    shell:
        "syndface export-features --models {input.models} --cache {input.cache} --options {params.options:q}"
        " --num-threads {threads} --out {output} > {log} 2>&1"


rule match_gallery:
    input:
        features="results/evaluation/{variant}/features.npz",
        folds="results/folds/folds.tsv",
        predictions="results/predictions/{variant}/test.tsv",
    output:
        table=report(
            "results/evaluation/{variant}/knn.tsv",
            caption="../report/gallery.rst",
            category="6. Beyond the paper",
            subcategory="Embedding gallery (kNN)",
            labels={"variant": "{variant}"},
        ),
        predictions="results/evaluation/{variant}/knn_predictions.tsv",
    log:
        "logs/match_gallery/{variant}.log",
    conda:
        "../../envs/cpu.yaml"
    params:
        out_dir=subpath(output.table, parent=True),
        options=get_options("match-gallery"),
    shell:
        "syndface match-gallery --features {input.features} --folds {input.folds} --predictions {input.predictions}"
        " --options {params.options:q} --out-dir {params.out_dir} > {log} 2>&1"


rule make_held_out_folds:
    input:
        "results/folds/folds.tsv",
    output:
        "results/evaluation/held_out/{disease}/folds.tsv",
    log:
        "logs/make_held_out_folds/{disease}.log",
    conda:
        "../../envs/cpu.yaml"
    shell:
        "syndface make-held-out-folds --folds {input} --disease {wildcards.disease} --out {output} > {log} 2>&1"


# The real-only classifiers again, blind to one disease: a target of its own, so the main
# variants are never retrained for it.
rule train_held_out_classifier:
    input:
        cache=get_classifier_cache(),
        folds="results/evaluation/held_out/{disease}/folds.tsv",
        pretrained=get_pretrained(),
    output:
        model="results/evaluation/held_out/{disease}/fold{fold}/model.pt",
        history="results/evaluation/held_out/{disease}/fold{fold}/history.tsv",
    log:
        "logs/train_held_out_classifier/{disease}/fold{fold}.log",
    benchmark:
        "benchmarks/train_held_out_classifier/{disease}/fold{fold}.tsv"
    conda:
        get_gpu_env()
    threads: 1
    resources:
        **gpu_resources(runtime=720, mem_mb=64000, cpus_per_task=8, training=True),
    params:
        out_dir=subpath(output.model, parent=True),
        options=train_options("real"),  # real images only: the real family's loss normalisation
        launch=get_launcher(),
        pretrained=get_path_flags("--pretrained", get_pretrained()),
    shell:
        "{params.launch} syndface train-classifier --cache {input.cache} --folds {input.folds} --fold {wildcards.fold}"
        " --variant real {params.pretrained} --options {params.options:q}"
        " --num-threads {threads} --out-dir {params.out_dir} > {log} 2>&1"


rule export_held_out_features:
    input:
        models=get_held_out_models,
        cache=get_classifier_cache(),
    output:
        "results/evaluation/held_out/{disease}/features.npz",
    log:
        "logs/export_held_out_features/{disease}.log",
    conda:
        get_gpu_env()
    threads: 1
    resources:
        **gpu_resources(runtime=120, mem_mb=32000, cpus_per_task=4),
    params:
        options=get_options("export-features"),
    shell:
        "syndface export-features --models {input.models} --cache {input.cache} --options {params.options:q}"
        " --num-threads {threads} --out {output} > {log} 2>&1"


rule place_held_out:
    input:
        features="results/evaluation/held_out/{disease}/features.npz",
        folds="results/evaluation/held_out/{disease}/folds.tsv",
    output:
        placement=report(
            "results/evaluation/held_out/{disease}/placement.tsv",
            caption="../report/held_out.rst",
            category="6. Beyond the paper",
            subcategory="Held-out label (open set)",
            labels={"held out": "{disease}", "result": "where it lands"},
        ),
        distances=report(
            "results/evaluation/held_out/{disease}/distances.tsv",
            caption="../report/held_out.rst",
            category="6. Beyond the paper",
            subcategory="Held-out label (open set)",
            labels={"held out": "{disease}", "result": "distances"},
        ),
        figure=report(
            "results/evaluation/held_out/{disease}/distances.png",
            caption="../report/held_out.rst",
            category="6. Beyond the paper",
            subcategory="Held-out label (open set)",
            labels={"held out": "{disease}", "result": "distance figure"},
        ),
        predictions="results/evaluation/held_out/{disease}/knn_predictions.tsv",
    log:
        "logs/place_held_out/{disease}.log",
    conda:
        "../../envs/cpu.yaml"
    params:
        out_dir=subpath(output.placement, parent=True),
        options=get_options("place-held-out"),
    shell:
        "syndface place-held-out --features {input.features} --folds {input.folds} --disease {wildcards.disease}"
        " --options {params.options:q} --out-dir {params.out_dir} > {log} 2>&1"


rule summarise_evaluation:
    input:
        readouts=expand("results/evaluation/{variant}/readouts.tsv", variant=get_variants()),
        calibration=expand("results/evaluation/{variant}/calibration.tsv", variant=get_variants()),
        knn=expand("results/evaluation/{variant}/knn.tsv", variant=get_summary_knn_variants()),
    output:
        report(
            "results/evaluation/summary.tsv",
            caption="../report/evaluation_summary.rst",
            category="6. Beyond the paper",
            subcategory="Summary: beside the paper's Average",
        ),
    log:
        "logs/summarise_evaluation.log",
    conda:
        "../../envs/cpu.yaml"
    params:
        readouts=get_evaluation_args("--readouts", "readouts.tsv", get_variants()),
        calibration=get_evaluation_args("--calibration", "calibration.tsv", get_variants()),
        knn=get_evaluation_args("--knn", "knn.tsv", get_summary_knn_variants()),
    shell:
        "syndface summarise-evaluation {params.readouts} {params.calibration} {params.knn}"
        " --out {output} > {log} 2>&1"
