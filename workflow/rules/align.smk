# Alignment (FFHQ-style crop, in shards), the merged report, packed caches, leakage check.


rule align_shard:
    input:
        manifest="results/cohort/manifest.tsv",
        landmarks=get_manual_landmarks(),
    output:
        directory("results/aligned/shards/shard{shard}"),
    log:
        "logs/align_shard/shard{shard}.log",
    benchmark:
        "benchmarks/align_shard/shard{shard}.tsv"
    wildcard_constraints:
        shard=r"\d+",
    conda:
        "../../envs/cpu.yaml"
    resources:
        **cpu_resources(runtime=120, mem_mb=4000, cpus_per_task=1),
    params:
        align=config["align"],
        landmarks=get_manual_landmarks_arg(),
    shell:
        "syndface align-shard --manifest {input.manifest} --shard {wildcards.shard}"
        " --shard-size {params.align[shard_size]} --size {params.align[size]} --zoom {params.align[zoom]}"
        " --background {params.align[background]} --prefer {params.align[prefer]}"
        " --upsample {params.align[upsample]} {params.landmarks} --out-dir {output} > {log} 2>&1"


rule merge_aligned:
    input:
        manifest="results/cohort/manifest.tsv",
        shards=get_align_shards,
    output:
        report=report(
            "results/aligned/report.tsv",
            caption="../report/aligned.rst",
            category="1. Cohort",
            subcategory="Alignment",
        ),
        failed="results/aligned/failed.tsv",
    log:
        "logs/merge_aligned.log",
    conda:
        "../../envs/cpu.yaml"
    params:
        fail=get_flag(config["align"]["fail_on_error"], "--fail-on-error"),
    shell:
        "syndface merge-aligned --shard-dirs {input.shards} --manifest {input.manifest}"
        " --report {output.report} --failed {output.failed} {params.fail} > {log} 2>&1"


rule build_cache:
    input:
        report="results/aligned/report.tsv",
        manifest="results/cohort/manifest.tsv",
    output:
        directory("results/cache/{size}px"),
    log:
        "logs/build_cache/{size}px.log",
    conda:
        "../../envs/cpu.yaml"
    resources:
        **cpu_resources(runtime=120, mem_mb=16000, cpus_per_task=1),
    shell:
        "syndface build-cache --report {input.report} --manifest {input.manifest}"
        " --size {wildcards.size} --out-dir {output} > {log} 2>&1"


rule check_leakage:
    input:
        report="results/aligned/report.tsv",
        manifest="results/cohort/manifest.tsv",
        folds="results/folds/folds.tsv",
    output:
        report(
            "results/folds/leakage.tsv",
            caption="../report/leakage.rst",
            category="1. Cohort",
            subcategory="Leakage check",
        ),
    log:
        "logs/check_leakage.log",
    benchmark:
        "benchmarks/check_leakage.tsv"
    conda:
        "../../envs/cpu.yaml"
    threads: 2
    resources:
        **cpu_resources(runtime=240, mem_mb=16000, cpus_per_task=2),
    params:
        threshold=config["leakage"]["threshold"],
        zoom=config["align"]["zoom"],
        upsample=config["align"]["upsample"],
        fail=get_flag(config["leakage"]["fail"], "--fail"),
        max_pairs=config["leakage"]["max_pairs"],
    shell:
        "syndface check-leakage --report {input.report} --manifest {input.manifest} --folds {input.folds}"
        " --threshold {params.threshold} --zoom {params.zoom} --upsample {params.upsample}"
        " --max-pairs {params.max_pairs} --workers {threads} --out {output} {params.fail} > {log} 2>&1"


rule plot_cohort_overview:
    input:
        report="results/aligned/report.tsv",
        manifest="results/cohort/manifest.tsv",
    output:
        report_faces(
            "results/cohort/overview.png",
            caption="../report/overview.rst",
            category="1. Cohort",
            subcategory="Figure 1: aligned faces",
        ),
    log:
        "logs/plot_cohort_overview.log",
    conda:
        "../../envs/cpu.yaml"
    params:
        seed=SEED,
    shell:
        "syndface plot-cohort-overview --report {input.report} --manifest {input.manifest}"
        " --seed {params.seed} --out {output} > {log} 2>&1"
