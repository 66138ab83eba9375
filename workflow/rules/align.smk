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
        options=get_options("align-shard"),
        landmarks=get_path_flags("--manual-landmarks", get_manual_landmarks()),
    shell:
        "syndface align-shard --manifest {input.manifest} --shard {wildcards.shard} {params.landmarks}"
        " --options {params.options:q} --out-dir {output} > {log} 2>&1"


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
        options=get_options("merge-aligned"),
    shell:
        "syndface merge-aligned --shard-dirs {input.shards} --manifest {input.manifest} --options {params.options:q}"
        " --report {output.report} --failed {output.failed} > {log} 2>&1"


rule build_cache:
    input:
        report="results/aligned/report.tsv",
        manifest="results/cohort/manifest.tsv",
    output:
        directory("results/cache/{size}px"),
    log:
        "logs/build_cache/{size}px.log",
    wildcard_constraints:
        size=r"\d+",
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
        options=get_options("check-leakage"),
    shell:
        "syndface check-leakage --report {input.report} --manifest {input.manifest} --folds {input.folds}"
        " --options {params.options:q} --workers {threads} --out {output} > {log} 2>&1"


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
        options=get_options("plot-cohort-overview"),
    shell:
        "syndface plot-cohort-overview --report {input.report} --manifest {input.manifest}"
        " --options {params.options:q} --out {output} > {log} 2>&1"
