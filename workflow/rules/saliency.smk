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
        cfg=config["saliency"],
        device=config["device"],
    shell:
        "syndface occlusion-maps --models {input.models} --cache {input.cache} --split test"
        " --diseases {params.cfg[diseases]} --window {params.cfg[window]} --stride {params.cfg[stride]}"
        " --reference-size {params.cfg[reference_size]} --batch {params.cfg[batch]}"
        " --device {params.device} --num-threads {threads} --out-dir {params.out_dir} > {log} 2>&1"


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
        cfg=config["saliency"],
    shell:
        "syndface saliency-composites --maps-dir {params.maps_dir} --cache {input.cache}"
        " --diseases {params.cfg[diseases]} --outlier-perc {params.cfg[outlier_perc]}"
        " --out-dir {params.out_dir} > {log} 2>&1"


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
        cfg=config["saliency"],
        weights=get_imagenet_weights_arg(),
        seed=SEED,
        device=config["device"],
    shell:
        "syndface permutation-test --maps-dir {params.maps_dir} --diseases {params.cfg[diseases]}"
        " --embedding {params.cfg[embedding]} --models {input.models}"
        " --imagenet-model {params.cfg[imagenet_model]} {params.weights}"
        " --permutations {params.cfg[permutations]} --alpha {params.cfg[alpha]} --seed {params.seed}"
        " --device {params.device} --num-threads {threads} --out-dir {params.out_dir} > {log} 2>&1"


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
        zoom=config["align"]["zoom"],
    shell:
        "syndface saliency-truth-check --maps-dir {params.maps_dir} --regions {input.regions}"
        " --zoom {params.zoom} --out {output} > {log} 2>&1"
