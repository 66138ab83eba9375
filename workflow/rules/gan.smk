# GAN: one conditional StyleGAN2-ADA per fold, the fake types, the privacy audit.


rule train_gan:
    input:
        cache=get_gan_cache(),
        folds="results/folds/folds.tsv",
        ffhq=get_ffhq_weights(),
    output:
        network="results/gan/fold{fold}/network.pt",
        training_set="results/gan/fold{fold}/training_set.tsv",
    log:
        "logs/train_gan/fold{fold}.log",
    benchmark:
        "benchmarks/train_gan/fold{fold}.tsv"
    conda:
        get_gpu_env()
    threads: 1
    resources:
        **gpu_resources(runtime=2880, mem_mb=32000, cpus_per_task=8),
    params:
        out_dir=subpath(output.network, parent=True),
        gan=config["gan"],
        resume=get_ffhq_arg(),
        seed=SEED,
        device=config["device"],
    shell:
        "syndface train-gan --cache {input.cache} --folds {input.folds} --fold {wildcards.fold}"
        " --out-dir {params.out_dir} --resolution {params.gan[resolution]}"
        " --channel-base {params.gan[channel_base]} --channel-max {params.gan[channel_max]}"
        " --z-dim {params.gan[z_dim]} --w-dim {params.gan[w_dim]} --mapping-layers {params.gan[mapping_layers]}"
        " --mbstd-group {params.gan[mbstd_group]} --kimg {params.gan[kimg]} --batch {params.gan[batch]}"
        " --lr {params.gan[lr]} --r1-gamma {params.gan[r1_gamma]} --pl-weight {params.gan[pl_weight]}"
        " --style-mixing {params.gan[style_mixing]} --ema-kimg {params.gan[ema_kimg]}"
        " --ada-target {params.gan[ada_target]} --ada-kimg {params.gan[ada_kimg]}"
        " --oversample {params.gan[oversample]} --unaffected-per-age {params.gan[unaffected_per_age]}"
        " --snapshot-kimg {params.gan[snapshot_kimg]} --resume-ffhq {params.resume}"
        " --precision {params.gan[precision]} --seed {params.seed} --device {params.device}"
        " --num-threads {threads} > {log} 2>&1"


rule generate_fakes:
    input:
        network="results/gan/fold{fold}/network.pt",
        folds="results/folds/folds.tsv",
    output:
        manifests=get_fake_outputs("manifest.tsv"),
        grids=report(
            get_fake_outputs("sample_grid.png"),
            caption="../report/fakes.rst",
            category="3. GAN fakes",
            subcategory="Figure 2: fake images",
        ),
    log:
        "logs/generate_fakes/fold{fold}.log",
    conda:
        get_gpu_env()
    threads: 1
    resources:
        **gpu_resources(runtime=60, mem_mb=16000, cpus_per_task=2),
    params:
        out_dir=get_fakes_dir,
        fake_types=get_fake_types(),
        psi=config["fakes"]["psi"],
        seed=SEED,
        device=config["device"],
    shell:
        "syndface generate-fakes --network {input.network} --folds {input.folds} --fold {wildcards.fold}"
        " --fake-types {params.fake_types} --psi {params.psi} --seed {params.seed}"
        " --device {params.device} --num-threads {threads} --out-dir {params.out_dir} > {log} 2>&1"


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
        cfg=config["fakes"]["privacy"],
        seed=SEED,
    shell:
        "syndface privacy-audit --fakes {input.fakes} --training-sets {input.training_sets}"
        " --cache {input.cache} --embedding {params.cfg[embedding]} --fallback-size {params.cfg[pixel_size]}"
        " --sample-per-set {params.cfg[sample_per_set]} --seed {params.seed} --workers {threads}"
        " --out {output.audit} --summary {output.summary} > {log} 2>&1"
