# Saliency: fold-averaged occlusion maps, composites per disease x age, the permutation test,
# and (demo) the score against the planted regions.


rule occlusion_maps:
    input:
        models=get_fold_models,
        cache=get_classifier_cache(),
    output:
        maps="results/saliency/{variant}/maps/maps.npy",
        index="results/saliency/{variant}/maps/index.tsv",
    log:
        "logs/occlusion_maps/{variant}.log",
    benchmark:
        "benchmarks/occlusion_maps/{variant}.tsv"
    conda:
        get_gpu_env()
    threads: 1
    resources:
        **gpu_resources(runtime=240, mem_mb=32000, cpus_per_task=4),
    params:
        out_dir=subpath(output.maps, parent=True),
        options=get_options("occlusion-maps"),
    shell:
        "syndface occlusion-maps --models {input.models} --cache {input.cache} --split test"
        " --options {params.options:q} --num-threads {threads} --out-dir {params.out_dir} > {log} 2>&1"


rule saliency_composites:
    input:
        maps="results/saliency/{variant}/maps/maps.npy",
        index="results/saliency/{variant}/maps/index.tsv",
        cache=get_classifier_cache(),
    output:
        report_faces(
            expand(
                "results/saliency/{{variant}}/composites/{disease}.png",
                disease=config["saliency"]["diseases"],
            ),
            caption="../report/composites.rst",
            category="4. Saliency",
            subcategory="Figure 4: composites",
        ),
    log:
        "logs/saliency_composites/{variant}.log",
    conda:
        "../../envs/cpu.yaml"
    params:
        maps_dir=subpath(input.maps, parent=True),
        out_dir=get_composites_dir,
        options=get_options("saliency-composites"),
    shell:
        "syndface saliency-composites --maps-dir {params.maps_dir} --cache {input.cache}"
        " --options {params.options:q} --out-dir {params.out_dir} > {log} 2>&1"


rule permutation_test:
    input:
        maps="results/saliency/{variant}/maps/maps.npy",
        index="results/saliency/{variant}/maps/index.tsv",
        models=get_fold_models,
        weights=get_imagenet_weights(),
    output:
        table=report(
            "results/saliency/{variant}/permutation.tsv",
            caption="../report/permutation.rst",
            category="4. Saliency",
            subcategory="Figure 5: permutation test",
        ),
        size_check=report(
            "results/saliency/{variant}/size_check.tsv",
            caption="../report/permutation.rst",
            category="4. Saliency",
            subcategory="Figure 5: permutation test",
        ),
        figures=report(
            expand(
                "results/saliency/{{variant}}/permutation_{disease}.png",
                disease=config["saliency"]["diseases"],
            ),
            caption="../report/permutation.rst",
            category="4. Saliency",
            subcategory="Figure 5: permutation test",
        ),
    log:
        "logs/permutation_test/{variant}.log",
    conda:
        get_gpu_env()
    threads: 1
    resources:
        **gpu_resources(runtime=120, mem_mb=16000, cpus_per_task=4),
    params:
        maps_dir=subpath(input.maps, parent=True),
        out_dir=subpath(output.table, parent=True),
        options=get_options("permutation-test"),
        weights=get_path_flags("--imagenet-weights", get_imagenet_weights()),
    shell:
        "syndface permutation-test --maps-dir {params.maps_dir} --models {input.models} {params.weights}"
        " --options {params.options:q} --num-threads {threads} --out-dir {params.out_dir} > {log} 2>&1"


rule saliency_truth_check:
    input:
        maps="results/saliency/{variant}/maps/maps.npy",
        index="results/saliency/{variant}/maps/index.tsv",
        regions="results/demo/regions.npz",
    output:
        report(
            "results/saliency/{variant}/truth_check.tsv",
            caption="../report/truth_check.rst",
            category="4. Saliency",
            subcategory="Demo: maps vs planted signs",
        ),
    log:
        "logs/saliency_truth_check/{variant}.log",
    conda:
        "../../envs/cpu.yaml"
    params:
        maps_dir=subpath(input.maps, parent=True),
        options=get_options("saliency-truth-check"),
    shell:
        "syndface saliency-truth-check --maps-dir {params.maps_dir} --regions {input.regions}"
        " --options {params.options:q} --out {output} > {log} 2>&1"
