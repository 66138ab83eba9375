# GAN: one conditional StyleGAN2-ADA per fold (snapshots measured with FID/KID), figures of the
# chosen snapshot, the fake types, their label fidelity, the privacy audit.


rule train_gan:
    input:
        cache=get_gan_cache(),
        folds="results/folds/folds.tsv",
        ffhq=get_ffhq_weights(),
        metric_features=get_gan_metric_features,
    output:
        network="results/gan/fold{fold}/network.pt",
        training_set="results/gan/fold{fold}/training_set.tsv",
        metrics="results/gan/fold{fold}/metrics.tsv",
        curves=report(
            "results/gan/fold{fold}/metrics.png",
            caption="../report/gan_metrics.rst",
            category="3. GAN fakes",
            subcategory="FID and KID per snapshot",
            labels={"fold": "{fold}"},
        ),
    log:
        "logs/train_gan/fold{fold}.log",
    benchmark:
        "benchmarks/train_gan/fold{fold}.tsv"
    conda:
        get_gpu_env()
    threads: 1
    resources:
        **gpu_resources(runtime=2880, mem_mb=32000, cpus_per_task=8, training=True),
    params:
        out_dir=subpath(output.network, parent=True),
        options=get_options("train-gan"),
        launch=get_launcher(),
        ffhq=get_path_flags("--resume-ffhq", get_ffhq_weights()),
        metric_features=get_gan_metric_flags,
    shell:
        "{params.launch} syndface train-gan --cache {input.cache} --folds {input.folds} --fold {wildcards.fold} {params.ffhq}"
        " {params.metric_features}"
        " --options {params.options:q} --num-threads {threads} --out-dir {params.out_dir} > {log} 2>&1"


rule gan_figures:
    input:
        network="results/gan/fold{fold}/network.pt",
    output:
        grid=report(
            "results/gan/fold{fold}/grid.png",
            caption="../report/gan_grid.rst",
            category="3. GAN fakes",
            subcategory="Chosen snapshot: disease x age",
            labels={"fold": "{fold}", "figure": "disease x age grid"},
        ),
        progression=report(
            "results/gan/fold{fold}/progression.png",
            caption="../report/gan_grid.rst",
            category="3. GAN fakes",
            subcategory="Chosen snapshot: disease x age",
            labels={"fold": "{fold}", "figure": "age progression"},
        ),
    log:
        "logs/gan_figures/fold{fold}.log",
    conda:
        get_gpu_env()
    threads: 1
    resources:
        **gpu_resources(runtime=30, mem_mb=16000, cpus_per_task=2),
    params:
        options=get_options("gan-figures"),
    shell:
        "syndface gan-figures --network {input.network} --fold {wildcards.fold} --options {params.options:q}"
        " --num-threads {threads} --grid {output.grid} --progression {output.progression} > {log} 2>&1"


rule generate_fakes:
    input:
        network="results/gan/fold{fold}/network.pt",
        folds="results/folds/folds.tsv",
    output:
        manifest="results/fakes/fold{fold}/{fake_type}/manifest.tsv",
        grid=report(
            "results/fakes/fold{fold}/{fake_type}/sample_grid.png",
            caption="../report/fakes.rst",
            category="3. GAN fakes",
            subcategory="Figure 2: fake images",
            labels={"fold": "{fold}", "fake type": "{fake_type}"},
        ),
    log:
        "logs/generate_fakes/fold{fold}/{fake_type}.log",
    conda:
        get_gpu_env()
    threads: 1
    resources:
        **gpu_resources(runtime=60, mem_mb=16000, cpus_per_task=2),
    params:
        out_dir=get_fakes_dir,
        options=get_options("generate-fakes"),
    shell:
        "syndface generate-fakes --network {input.network} --folds {input.folds} --fold {wildcards.fold}"
        " --fake-types {wildcards.fake_type} --options {params.options:q} --num-threads {threads}"
        " --out-dir {params.out_dir} > {log} 2>&1"


rule fake_fidelity:
    input:
        fakes=get_fake_manifests_of_type,
        classifiers=get_real_classifiers(),
        cache=get_gan_cache(),
        folds="results/folds/folds.tsv",
    output:
        table=report(
            "results/fakes/fidelity_{fake_type}.tsv",
            caption="../report/fidelity.rst",
            category="3. GAN fakes",
            subcategory="Label fidelity of the fakes",
            labels={"fake type": "{fake_type}", "figure": "table"},
        ),
        figure=report(
            "results/fakes/fidelity_{fake_type}.png",
            caption="../report/fidelity.rst",
            category="3. GAN fakes",
            subcategory="Label fidelity of the fakes",
            labels={"fake type": "{fake_type}", "figure": "heat map"},
        ),
    log:
        "logs/fake_fidelity/{fake_type}.log",
    conda:
        get_gpu_env()
    threads: 1
    resources:
        **gpu_resources(runtime=60, mem_mb=16000, cpus_per_task=2),
    params:
        options=get_options("fake-fidelity"),
    shell:
        "syndface fake-fidelity --fakes {input.fakes} --classifiers {input.classifiers} --cache {input.cache}"
        " --folds {input.folds} --options {params.options:q} --num-threads {threads}"
        " --out {output.table} --figure {output.figure} > {log} 2>&1"


rule privacy_audit:
    input:
        fakes=get_all_fake_manifests(),
        training_sets=get_gan_training_sets(),
        cache=get_gan_cache(),
    output:
        audit="results/fakes/privacy.tsv",
        summary=report(
            "results/fakes/privacy_summary.tsv",
            caption="../report/privacy.rst",
            category="3. GAN fakes",
            subcategory="Privacy audit",
        ),
    log:
        "logs/privacy_audit.log",
    benchmark:
        "benchmarks/privacy_audit.tsv"
    conda:
        "../../envs/cpu.yaml"
    threads: 2
    resources:
        **cpu_resources(runtime=240, mem_mb=16000, cpus_per_task=2),
    params:
        options=get_options("privacy-audit"),
    shell:
        "syndface privacy-audit --fakes {input.fakes} --training-sets {input.training_sets} --cache {input.cache}"
        " --options {params.options:q} --workers {threads} --out {output.audit} --summary {output.summary}"
        " > {log} 2>&1"
