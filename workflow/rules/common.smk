# Helpers shared by the workflow: config validation, input functions (get_*), constants.
import json
import re
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from syndface import config as syndface_config
from syndface.classify.options import loss_normalisation_for
from syndface.cli import options_class
from syndface.launch import launcher
from syndface.options import CONFIG_SCHEMA, options_json
from syndface.weights import catalog_files
from syndface.taxonomy import DISEASES, FAKE_TYPES, VARIANTS, variant_fake_type

# Fail before any job with every problem spelled out (key, bad value, what is allowed);
# then let Snakemake's own validation have its say too (it also fills in the schema's defaults).
try:
    syndface_config.check(config, CONFIG_SCHEMA)
except syndface_config.ConfigError as error:
    raise WorkflowError(str(error))
validate(config, schema="../schemas/config.schema.yaml")


def get_options(command):
    """The --options value of `syndface <command>`: exactly the config keys its options class reads.
    Rules pass it as a param, so a changed key reruns exactly the jobs whose commands read it."""
    return options_json(options_class(command), config)


def train_options(variant):
    """train-classifier's --options for one variant, its loss normalisation resolved to the variant's
    family: a changed `classifier.loss_normalisation.fakes` retrains the fake variants only."""
    options = json.loads(get_options("train-classifier"))
    classifier = options["classifier"]
    classifier["loss_normalisation"] = loss_normalisation_for(variant, classifier["loss_normalisation"])
    return json.dumps(options, sort_keys=True)


def get_train_options(wildcards):
    return train_options(wildcards.variant)


def get_launcher():
    """torchrun over the job's GPUs when `gpus` > 1 (data-parallel training), else nothing."""
    return launcher(config["gpus"])


def check_variant_lists():
    """Saliency variants train their own classifiers: say so before any job if they are not Table 2's."""
    extra = [v for v in config["saliency"]["variants"] if v not in config["classifier"]["variants"]]
    if extra:
        print(
            f"note: saliency.variants {extra} are not in classifier.variants; their classifiers (and fakes) are "
            "trained for the saliency maps but are not columns of Table 2",
            file=sys.stderr,
        )


check_variant_lists()


def check_tta():
    """Say before any job when the TTA column is dropped, or its transforms will mislead the models."""
    variant = config["evaluation"]["tta_variant"]
    if variant is not None and variant not in config["classifier"]["variants"]:
        print(
            f"note: evaluation.tta_variant {variant!r} is not in classifier.variants: Table 2 gets no TTA column",
            file=sys.stderr,
        )
    if config["classifier"]["tta"] == "dihedral8" and config["classifier"]["augment"] != "paper":
        print(
            f"note: classifier.tta dihedral8 averages over transposed and upside-down faces, which augment "
            f"{config['classifier']['augment']!r} never shows the models (only augment paper does); the "
            "'(TTA)' column of Table 2 will suffer (classifier.tta: flip keeps to upright faces)",
            file=sys.stderr,
        )


check_tta()


wildcard_constraints:
    variant="|".join(map(re.escape, VARIANTS)),
    disease="|".join(map(re.escape, DISEASES)),
    fake_type="|".join(FAKE_TYPES),
    fold=r"\d+",


# Cluster routing (used only by a cluster executor such as `--profile slurm`). The workflow sets
# the GPU rules' partition and GRES itself, from config: a profile's or the command line's
# `--set-resources`/`--default-resources` replace whole blocks and would silently drop them.
GPU_RULES = [
    "train_classifier",
    "predict_classifier",
    "train_gan",
    "gan_figures",
    "generate_fakes",
    "fake_fidelity",
    "occlusion_maps",
    "permutation_test",
    "predict_out_of_fold",
    "predict_tta",
    "export_features",
    "train_held_out_classifier",
    "export_held_out_features",
]
# The CPU rules worth a cluster node (with cluster.cpu_rules: submit); every other rule runs on
# the submit host, most of them take seconds.
HEAVY_CPU_RULES = ["align_shard", "build_cache", "check_leakage", "privacy_audit"]


def get_gres(gpus):
    """gpu:<type>:<n>, or gpu:<n> where any GPU type will do."""
    gpu_type = config["cluster"]["gpu_type"]
    return f"gpu:{gpu_type}:{gpus}" if gpu_type else f"gpu:{gpus}"


def get_account():
    account = config["cluster"]["account"]
    return {"slurm_account": account} if account else {}


def gpu_resources(runtime, mem_mb, cpus_per_task, training=False):
    """A GPU rule's cluster resources: partition, GRES and account from config, sizes (minutes,
    MB, CPUs) for the paper's settings. Training jobs get `gpus` GPUs (torchrun); inference one."""
    return dict(
        slurm_partition=config["cluster"]["gpu_partition"],
        gres=get_gres(config["gpus"] if training else 1),
        runtime=runtime,
        mem_mb=mem_mb,
        cpus_per_task=cpus_per_task,
        **get_account(),
    )


def cpu_resources(runtime, mem_mb, cpus_per_task):
    """A heavy CPU rule's cluster resources (used when cluster.cpu_rules is submit)."""
    return dict(
        slurm_partition=config["cluster"]["cpu_partition"],
        runtime=runtime,
        mem_mb=mem_mb,
        cpus_per_task=cpus_per_task,
        **get_account(),
    )


# GPU generations PyPI's torch build (CUDA 13, sm_75+) no longer runs on: their rules use the
# CUDA 12.6 build of envs/gpu-pascal.yaml under `--software-deployment-method conda`.
PASCAL_VOLTA_GPU_TYPES = ("p100", "v100")


def get_gpu_env():
    """The GPU rules' conda env, by cluster.gpu_type (P100/V100 need the CUDA 12.6 build)."""
    gpu_type = (config["cluster"]["gpu_type"] or "").lower()
    if gpu_type.startswith(PASCAL_VOLTA_GPU_TYPES):
        return "../../envs/gpu-pascal.yaml"
    return "../../envs/gpu.yaml"


def get_local_rules(rule_names):
    """Rules that run on the submit host: all but the GPU rules (and the heavy CPU rules when
    cluster.cpu_rules is submit)."""
    submitted = set(GPU_RULES)
    if config["cluster"]["cpu_rules"] == "submit":
        submitted |= set(HEAVY_CPU_RULES)
    return [name for name in rule_names if name not in submitted]


DEMO_COHORT = "results/demo/cohort.tsv"


def is_demo():
    """The demo cohort is in use: ground-truth checks run and the clinicians' survey is simulated."""
    return any(spec["format"] == "demo" for spec in config["cohort"]["inputs"])


def show_faces():
    """Real faces in `snakemake --report` (cohort thumbnails, composites over the mean real face):
    report.show_faces, where auto means only when every cohort input is the synthetic demo."""
    setting = str(config["report"]["show_faces"]).lower()
    if setting == "auto":
        return all(spec["format"] == "demo" for spec in config["cohort"]["inputs"])
    return setting == "true"


def report_faces(path, **kwargs):
    """report() for an output that shows faces; a plain output, kept out of the report, when
    show_faces() is off."""
    return report(path, **kwargs) if show_faces() else path


def get_cohort_tables():
    """The tables cohort.inputs names, the demo entry being the generated table."""
    return [DEMO_COHORT if spec["format"] == "demo" else spec["path"] for spec in config["cohort"]["inputs"]]


DEMO_LANDMARKS = "results/demo/landmarks.tsv"


def get_manual_landmarks():
    """The manual-landmark file: configured, or the demo's ground truth for the demo cohort."""
    path = config["align"]["manual_landmarks"]
    if path is None and is_demo():
        path = DEMO_LANDMARKS
    return [path] if path else []


def get_path_flags(flag, paths):
    """`--flag p1 --flag p2` for an input that may be absent (then the empty string)."""
    return " ".join(f"{flag} {path}" for path in paths)


def get_demo_cohort():
    return [DEMO_COHORT] if is_demo() else []


def count_rows(tsv):
    """Data rows of a TSV (comment lines and the header excluded), without parsing it."""
    with open(tsv) as fh:
        return sum(1 for line in fh if not line.startswith("#")) - 1


def get_align_shards(wildcards):
    """One shard directory per `align.shard_size` manifest rows (known once the manifest exists)."""
    manifest = checkpoints.build_manifest.get().output.manifest
    n_shards = max(1, -(-count_rows(manifest) // config["align"]["shard_size"]))
    return [f"results/aligned/shards/shard{k:03d}" for k in range(n_shards)]


FOLDS = list(range(config["folds"]["n_folds"]))


def get_variants():
    return config["classifier"]["variants"]


def get_trained_variants():
    """Variants whose classifiers are trained: Table 2's and the saliency maps' (in taxonomy order)."""
    wanted = set(get_variants()) | set(config["saliency"]["variants"])
    return [v for v in VARIANTS if v in wanted]


def get_fake_types():
    """Fake types some trained variant uses (only those are generated)."""
    return [variant_fake_type(v) for v in get_trained_variants() if variant_fake_type(v)]


def get_fakes_dir(wildcards):
    return f"results/fakes/fold{wildcards.fold}"


def get_classifier_cache():
    return f"results/cache/{config['classifier']['image_size']}px"


def get_gan_cache():
    return f"results/cache/{config['gan']['resolution']}px"


def get_pretrained():
    path = config["classifier"]["pretrained"]
    return [path] if path else []


def get_ffhq_weights():
    path = config["gan"]["ffhq_weights"]
    return [path] if path else []


def get_real_classifiers():
    """The real-only fold classifiers (they use no fakes, so the GAN may depend on them)."""
    return [f"results/classifier/real/fold{k}/model.pt" for k in FOLDS]


def get_gan_metric_features(wildcards):
    """What train_gan's FID/KID features need: the fold's real-only classifier, or the Inception file."""
    if config["gan"]["metric_extractor"] == "classifier":
        return [f"results/classifier/real/fold{wildcards.fold}/model.pt"]
    path = config["gan"]["inception_weights"]
    return [path] if path else []


def get_gan_metric_flags(wildcards):
    flag = "--classifier" if config["gan"]["metric_extractor"] == "classifier" else "--inception-weights"
    return get_path_flags(flag, get_gan_metric_features(wildcards))


def get_fake_manifests_of_type(wildcards):
    return [f"results/fakes/fold{k}/{wildcards.fake_type}/manifest.tsv" for k in FOLDS]


def get_fakes_for_variant(wildcards):
    """The fold's GAN fakes of the variant's type (none for `real`)."""
    fake_type = variant_fake_type(wildcards.variant)
    return [f"results/fakes/fold{wildcards.fold}/{fake_type}/manifest.tsv"] if fake_type else []


def get_fakes_flag(wildcards):
    return get_path_flags("--fakes", get_fakes_for_variant(wildcards))


def get_fold_models(wildcards):
    return [f"results/classifier/{wildcards.variant}/fold{k}/model.pt" for k in FOLDS]


def get_variant_metrics():
    return [f"results/evaluation/{variant}/metrics.tsv" for variant in get_variants()]


def get_variant_metrics_args():
    return " ".join(f"{v}={path}" for v, path in zip(get_variants(), get_variant_metrics()))


def get_composites_dir(wildcards):
    return f"results/saliency/{wildcards.variant}/composites"


def get_imagenet_weights():
    path = config["saliency"]["imagenet_weights"]
    return [path] if path else []


def get_saliency_outputs():
    outputs = []
    for variant in config["saliency"]["variants"]:
        outputs.append(f"results/saliency/{variant}/permutation.tsv")
        outputs += [f"results/saliency/{variant}/composites/{d}.png" for d in config["saliency"]["diseases"]]
        if is_demo():
            outputs.append(f"results/saliency/{variant}/truth_check.tsv")
    return outputs


def get_all_fake_manifests():
    return [f"results/fakes/fold{k}/{t}/manifest.tsv" for k in FOLDS for t in get_fake_types()]


def get_gan_training_sets():
    return [f"results/gan/fold{k}/training_set.tsv" for k in FOLDS]


def get_predictions():
    return [f"results/predictions/{variant}/test.tsv" for variant in get_variants()]


def get_predictions_args():
    return " ".join(f"--predictions {variant}={path}" for variant, path in zip(get_variants(), get_predictions()))


def get_fake_histories():
    """(variant, history.tsv) of every fold model of every fake variant of Table 2."""
    return [
        (v, f"results/classifier/{v}/fold{k}/history.tsv")
        for v in get_variants()
        if variant_fake_type(v)
        for k in FOLDS
    ]


def get_best_fake_inputs():
    """What Table 1's best fake variant is chosen on: the fake variants' validation histories, or
    (clinicians.best_fake_selection: test, the paper's choice) Table 2."""
    if config["clinicians"]["best_fake_selection"] == "test":
        return ["results/table2.tsv"]
    return [path for _, path in get_fake_histories()]


def get_best_fake_args():
    if config["clinicians"]["best_fake_selection"] == "test":
        return "--table2 results/table2.tsv"
    histories = get_fake_histories()
    return "--histories " + " ".join(f"{v}={path}" for v, path in histories) if histories else ""


def get_qualtrics_field(field):
    """Input function: one file of the `clinicians.qualtrics[index]` entry."""

    def lookup(wildcards):
        return config["clinicians"]["qualtrics"][int(wildcards.index)][field]

    return lookup


def get_surveys():
    """Survey long tables: configured tables, imported Qualtrics exports, or the demo's simulation."""
    cfg = config["clinicians"]
    surveys = list(cfg["surveys"])
    surveys += [f"results/clinicians/imported/{k}.tsv" for k in range(len(cfg["qualtrics"]))]
    if not surveys and is_demo():
        surveys = ["results/clinicians/simulated_survey.tsv"]
    return surveys


# Evaluation beyond the paper (workflow/rules/evaluation.smk).
def get_tta_variant():
    """The variant that also predicts with test-time augmentation (Table 2's "<variant> (TTA)"), or
    None: none asked, classifier.tta none, or a variant that is no column of Table 2."""
    variant = config["evaluation"]["tta_variant"]
    if variant is None or config["classifier"]["tta"] == "none" or variant not in get_variants():
        return None
    return variant


def get_tta_metrics():
    variant = get_tta_variant()
    return [f"results/evaluation/{variant}/tta/metrics.tsv"] if variant else []


def get_tta_metrics_args():
    return " ".join(f"--tta {get_tta_variant()}={path}" for path in get_tta_metrics())


def get_out_of_fold(wildcards):
    """The out-of-fold predictions the temperature is fitted on (none when scaling is off)."""
    if not config["evaluation"]["temperature_scaling"]:
        return []
    return [f"results/evaluation/{wildcards.variant}/out_of_fold.tsv"]


def get_out_of_fold_flag(wildcards):
    return get_path_flags("--out-of-fold", get_out_of_fold(wildcards))


def get_gallery_variants():
    return config["evaluation"]["gallery_variants"]


def get_held_out_disease():
    return config["evaluation"]["held_out_disease"]


def get_held_out_models(wildcards):
    return [f"results/evaluation/held_out/{wildcards.disease}/fold{k}/model.pt" for k in FOLDS]


def get_evaluation_args(flag, name, variants):
    """`--flag v1=results/evaluation/v1/<name> v2=...` for the summary (nothing without variants)."""
    pairs = " ".join(f"{v}=results/evaluation/{v}/{name}" for v in variants)
    return f"{flag} {pairs}" if pairs else ""


def get_summary_knn_variants():
    return [v for v in get_variants() if v in get_gallery_variants()]


def get_evaluation_outputs():
    outputs = ["results/evaluation/summary.tsv"]
    for variant in get_variants():
        outputs += [
            f"results/evaluation/{variant}/{name}"
            for name in ("reliability.png", "recall_by_age.png", "readouts.tsv", "subjects.tsv")
        ]
    outputs += [f"results/evaluation/{variant}/knn.tsv" for variant in get_gallery_variants()]
    disease = get_held_out_disease()
    if disease:
        outputs += [f"results/evaluation/held_out/{disease}/{name}" for name in ("placement.tsv", "distances.png")]
    return outputs


def get_final_outputs():
    return [
        "results/cohort/manifest.tsv",
        "results/folds/folds.tsv",
        "results/folds/leakage.tsv",
        "results/aligned/report.tsv",
        "results/cohort/overview.png",
        "results/table2.tsv",
        *[f"results/evaluation/{variant}/confusion.png" for variant in get_variants()],
        *(["results/fakes/privacy.tsv"] if get_fake_types() else []),
        *[f"results/fakes/fidelity_{t}.tsv" for t in get_fake_types()],
        *[f"results/gan/fold{k}/{name}" for k in FOLDS for name in ("metrics.png", "grid.png", "progression.png")],
        *(["results/table1.tsv"] if get_surveys() else []),
        *get_saliency_outputs(),
        *get_evaluation_outputs(),
    ]
