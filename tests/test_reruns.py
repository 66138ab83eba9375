"""Precise reruns: after a finished run, changing one config key reruns exactly the jobs that read it.

Every changeable leaf key of the config schema is perturbed in turn, and Snakemake is asked (a dry
run against the finished tiny demo) which rules it would run. The expected map below is kept by
hand: a key's own rules plus what consumes their outputs. A key missing from the map, or a rule
that reruns when it should not (e.g. a classifier retrained because an evaluation setting moved),
fails the test. The run is also shown to be relocatable: copied elsewhere with its workflow, it
has nothing to do.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import DATA, REPO, TINY_CONFIGS, run_snakemake

from syndface.options import config_schema, lookup, schema_of

# Building blocks (rule sets) of the expected map, for the tiny config: variants real,
# real+age_progression and real+blended_55, saliency on real only, a simulated survey.
# Table 1's best fake variant is chosen on the validation histories (the default), not on Table 2:
# what changes only the evaluation leaves compare_clinicians alone.
EVALUATION = {"evaluate_classifier", "make_table2", "all"}
# Evaluation beyond the paper (tiny config: the real variant's gallery and TTA column, control held out):
# what reads every variant's test predictions, the real model's TTA readout, the held-out-label models.
BEYOND = {"calibrate_classifier", "evaluate_subgroups", "evaluate_readouts", "summarise_evaluation"}
TTA = {"predict_tta", "evaluate_tta"}
GALLERY = {"export_features", "match_gallery"}
HELD_OUT = {"train_held_out_classifier", "export_held_out_features", "place_held_out", "all"}
PREDICTION = {"predict_classifier", "compare_clinicians"} | EVALUATION | BEYOND | TTA | {"match_gallery"}
SALIENCY = {"occlusion_maps", "saliency_composites", "permutation_test", "saliency_truth_check", "all"}
# New fakes retrain only the fake variants' classifiers: the real model, its maps, gallery and TTA
# stay; the label-fidelity tables judge the new fakes.
FAKES = {"generate_fakes", "privacy_audit", "fake_fidelity", "train_classifier", "predict_classifier"}
FAKES |= {"predict_out_of_fold", "compare_clinicians"} | EVALUATION | BEYOND
GANS = {"train_gan", "gan_figures"} | FAKES
# Every classifier retrains, the real-only one too, so its saliency maps follow, the held-out-label
# ones, and the GANs: their snapshots are measured (and chosen) in the real-only classifier's features.
CLASSIFIERS = {"train_classifier", "predict_out_of_fold"} | PREDICTION | SALIENCY | GALLERY | HELD_OUT | GANS
ALIGNED = {"merge_aligned", "build_cache", "check_leakage", "plot_cohort_overview"} | CLASSIFIERS | GANS
FOLDS = {"make_folds", "check_leakage", "make_held_out_folds"} | CLASSIFIERS | GANS
# The manifest is a checkpoint: its alignment shards are planned only once it has rerun.
MANIFEST = {"build_manifest", "make_folds", "make_held_out_folds", "simulate_survey"} | ALIGNED
DEMO = {"make_demo_cohort"} | MANIFEST


def each(section: str, names: str, rules: set[str]) -> dict[str, set[str]]:
    """{section + name: rules} for every space-separated name."""
    return {f"{section}{name}": rules for name in names.split()}


EXPECTED: dict[str, set[str]] = {
    "seed": DEMO,
    "device": CLASSIFIERS | GANS,
    "gpus": CLASSIFIERS | GANS,  # the torchrun launch of the training jobs
    "deterministic": CLASSIFIERS | GANS,
    **each(
        "demo.",
        "n_subjects n_auxiliary test_per_group image_size render_scale grey_share signal_strength repeat_test_share",
        DEMO,
    ),  # fmt: skip
    "cohort.inputs": MANIFEST,
    "cohort.fairface_age_map": MANIFEST,
    **each("folds.", "n_folds group_by", FOLDS),
    # align.zoom is also read by check_leakage and saliency_truth_check, both downstream anyway
    **each(
        "align.",
        "size zoom background prefer manual_landmarks upsample max_upsample shard_size",
        {"align_shard"} | ALIGNED,
    ),  # fmt: skip
    **each("align.", "fail_on_error fail_on_test_error", ALIGNED),
    **each("leakage.", "threshold fail max_pairs", {"check_leakage", "all"}),
    **each(
        "classifier.",
        "model pretrained dropout msd_samples batch_size epochs lr warmup_factor early_stop early_stop_rule "
        "augment precision micro_batch grad_checkpointing",
        CLASSIFIERS,
    ),  # fmt: skip
    # Resolved per variant: {real: weights, fakes: batch} from `weights` retrains the fake variants only.
    # The real-only and held-out-label models, their TTA and gallery stay.
    "classifier.loss_normalisation": {
        "train_classifier",
        "predict_classifier",
        "predict_out_of_fold",
        "compare_clinicians",
    }
    | EVALUATION
    | BEYOND,
    **each("classifier.class_weights.", "WS 22q control unaffected", CLASSIFIERS),
    "classifier.image_size": {"build_cache"} | CLASSIFIERS,
    "classifier.ensemble_threshold": PREDICTION,
    "classifier.class_mean_interval": EVALUATION | {"evaluate_tta"},
    "classifier.bootstrap": EVALUATION | {"evaluate_tta", "evaluate_readouts", "summarise_evaluation"},
    # Dropping a variant leaves its models alone: only the tables and the fakes' audit change.
    "classifier.variants": {"make_table2", "compare_clinicians", "privacy_audit", "summarise_evaluation", "all"},
    "classifier.tta": TTA | EVALUATION - {"evaluate_classifier"},
    **each(
        "gan.",
        "channel_base channel_max z_dim w_dim mapping_layers mbstd_group kimg batch lr r1_gamma pl_weight "
        "style_mixing ema_kimg ada_target ada_kimg oversample unaffected_per_age snapshot_kimg precision "
        "micro_batch num_fp16_res ffhq_weights snapshots_kept select metric_extractor metric_fakes balance",
        GANS,
    ),  # fmt: skip
    "gan.resolution": {"build_cache"} | GANS,
    # The Inception file is an input only with gan.metric_extractor inception (the tiny run uses classifier).
    "gan.inception_weights": set(),
    **each("fakes.", "psi noise", FAKES | {"gan_figures"}),
    **each("fakes.privacy.", "embedding pixel_size sample_per_set", {"privacy_audit", "all"}),
    "clinicians.surveys": {"compare_clinicians", "all"},
    "clinicians.qualtrics": {"import_survey", "compare_clinicians", "all"},
    **each("clinicians.", "raters images_per_rater image_spread", {"simulate_survey", "compare_clinicians", "all"}),
    **each("clinicians.", "alternative q_family best_fake_selection", {"compare_clinicians", "all"}),
    **each("saliency.", "variants diseases window stride reference_size batch precision", SALIENCY),
    "saliency.outlier_perc": {"saliency_composites", "all"},
    **each(
        "saliency.",
        "permutations max_exact alpha embedding imagenet_model imagenet_weights",
        {"permutation_test", "all"},
    ),  # fmt: skip
    **each("saliency.size_check.", "replicates permutations", {"permutation_test", "all"}),
    "evaluation.ece_bins": {"calibrate_classifier", "summarise_evaluation", "all"},
    "evaluation.temperature_scaling": {"calibrate_classifier", "summarise_evaluation", "all"},
    "evaluation.min_cell_size": {"evaluate_subgroups", "place_held_out", "all"},
    "evaluation.top_k": {"evaluate_readouts", "summarise_evaluation", "all"},
    "evaluation.tta_variant": TTA | EVALUATION - {"evaluate_classifier"},
    "evaluation.gallery_variants": GALLERY | {"summarise_evaluation", "all"},
    "evaluation.knn_k": {"match_gallery", "place_held_out", "summarise_evaluation", "all"},
    # Another disease held out is another target: its own folds, models and placement.
    "evaluation.held_out_disease": {"make_held_out_folds"} | HELD_OUT,
    # Where jobs run and what the report shows change no result: nothing reruns.
    **each("cluster.", "gpu_partition gpu_type account cpu_rules cpu_partition", set()),
    "report.show_faces": set(),
}

# Values for keys a generic rule cannot perturb meaningfully (files are made in the run folder).
SPECIAL = {
    "classifier.model": "test_efficientnet_gn",
    "classifier.loss_normalisation": {"real": "weights", "fakes": "batch"},
    "clinicians.q_family": ["variant", "survey"],
    "gan.resolution": 64,  # 32 px is the classifier's cache already
    "cluster.gpu_partition": "gpu2",
    "cluster.gpu_type": "v100",
    "cluster.account": "lab",
    "cluster.cpu_partition": "quick",
    "saliency.imagenet_model": "tf_efficientnet_b0",
    "cohort.inputs": [{"format": "demo"}, {"format": "syndface", "path": "extra/cohort.tsv"}],
    "cohort.fairface_age_map": {"0-2": "child"},
    "classifier.variants": ["real", "real+age_progression"],
    "saliency.variants": ["real", "real+age_progression"],
    "saliency.diseases": ["WS", "22q"],
    "clinicians.surveys": ["extra/survey.tsv"],
    "evaluation.tta_variant": "real+age_progression",
    "evaluation.gallery_variants": ["real", "real+age_progression"],
    "clinicians.qualtrics": [
        {"export": "extra/export.csv", "mapping": "extra/map.tsv", "survey": "WS", "rater_column": "RecipientEmail"}
    ],
}
EXTRA_FILES = ("cohort.tsv", "survey.tsv", "export.csv", "map.tsv", "landmarks.tsv", "weights.bin")


def leaf_keys(schema: dict | None = None, prefix: str = "") -> list[str]:
    """Dotted keys of the schema's leaves (objects with named properties are walked into)."""
    node = schema or config_schema()
    keys = []
    for name in node.get("properties", {}):
        path = prefix + name
        sub = schema_of(path)
        if sub.get("type") == "object" and sub.get("properties"):
            keys += leaf_keys(sub, path + ".")
        else:
            keys.append(path)
    return keys


def perturbed(path: str, value):
    """Another valid value of key `path`."""
    if path in SPECIAL:
        return SPECIAL[path]
    schema = schema_of(path)
    if "enum" in schema:
        allowed = schema["enum"]
        return allowed[(allowed.index(value) + 1) % len(allowed)]
    if isinstance(value, bool):
        return not value
    if value is None:  # a nullable path
        return "extra/landmarks.tsv" if path == "align.manual_landmarks" else "extra/weights.bin"
    if isinstance(value, int) and schema.get("type") == "integer":
        step = schema.get("multipleOf", 1)
        return value + step if value + step <= schema.get("maximum", float("inf")) else value - step
    if isinstance(value, (int, float)):
        return value / 2 if value > 0 else 0.5
    raise AssertionError(f"no perturbation for {path} = {value!r}: add it to SPECIAL")


def nested(path: str, value) -> dict:
    *parents, leaf = path.split(".")
    tree = out = {}
    for part in parents:
        tree = tree.setdefault(part, {})
    tree[leaf] = value
    return out


# One clean process imports Snakemake and the workflow's modules once, then forks a fresh child per
# dry run (two at a time: the machine has two cores): ~100 dry runs without paying Python's and
# Snakemake's start-up each time, and without forking pytest's own process.
DRY_RUNS = """
import json, multiprocessing, os, sys
import snakemake.cli
import syndface.cli, syndface.options

snakefile, workdir, configs, jobs = json.loads(sys.argv[1])

def dry_run(job):
    overlay, log = job
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    argv = ["-s", snakefile, "--directory", workdir, "-n", "--configfile", *configs, overlay]
    try:
        snakemake.cli.main(argv)
    except SystemExit as stop:
        return stop.code or 0
    return 0

with multiprocessing.get_context("fork").Pool(2, maxtasksperchild=1) as pool:
    print(json.dumps(pool.map(dry_run, jobs)))
"""


def planned_rules(workdir: Path, overlays: list[Path]) -> list[tuple[set[str], str]]:
    """For each overlay config: the rules a dry run against `workdir` would run, and its output."""
    logs = [overlay.with_suffix(".log") for overlay in overlays]
    jobs = [[str(overlay), str(log)] for overlay, log in zip(overlays, logs)]
    configs = TINY_CONFIGS[1:]  # TINY_CONFIGS is ["--configfile", *files]
    payload = json.dumps([str(REPO / "Snakefile"), str(workdir), configs, jobs])
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run([sys.executable, "-c", DRY_RUNS, payload], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    codes = json.loads(done.stdout.strip().splitlines()[-1])
    out = []
    for code, log in zip(codes, logs):
        output = log.read_text()
        if code != 0:
            out.append(({"<error>"}, output))
        elif "Nothing to be done" in output:
            out.append((set(), output))
        else:
            table = output.split("Job stats:")[-1].split("\n\n")[0]
            out.append(({m.group(1) for m in re.finditer(r"^(\w+)\s+\d+$", table, re.M)} - {"total"}, output))
    return out


def test_the_expected_map_covers_every_changeable_key():
    assert sorted(EXPECTED) == sorted(leaf_keys())


@pytest.mark.slow
def test_changing_a_key_reruns_exactly_the_jobs_that_read_it(tiny_run, tmp_path):
    extra = tiny_run / "extra"
    extra.mkdir(exist_ok=True)
    for name in EXTRA_FILES:
        (extra / name).touch()
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    tiny = yaml.safe_load((DATA / "tiny.yaml").read_text())

    overlays = []
    for path in sorted(EXPECTED):
        try:
            current = lookup(tiny, path)
        except KeyError:
            current = lookup(config, path)
        overlays.append(tmp_path / f"{path}.yaml")
        overlays[-1].write_text(yaml.safe_dump(nested(path, perturbed(path, current))))
    problems = []
    for path, (rules, output) in zip(sorted(EXPECTED), planned_rules(tiny_run, overlays)):
        if rules != EXPECTED[path]:
            wrong = sorted(rules - EXPECTED[path]) + [f"-{r}" for r in sorted(EXPECTED[path] - rules)]
            problems.append(f"{path}: {', '.join(wrong)}" + (f"\n{output[-2000:]}" if "<error>" in rules else ""))
    shutil.rmtree(extra)
    assert not problems, "keys that rerun the wrong rules (+unexpected, -missing):\n" + "\n".join(problems)


@pytest.mark.slow
def test_a_finished_run_moved_elsewhere_with_its_workflow_has_nothing_to_do(tiny_run, tmp_path):
    """No param, input or shell command holds an absolute path: move the project folder (workflow and
    results) and Snakemake sees nothing to redo."""
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    project = tmp_path / "moved" / "project"
    for name in tracked.splitlines():
        source, target = REPO / name, project / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(source.readlink())
        elif source.is_file():
            shutil.copy2(source, target)
    run = tmp_path / "moved" / "run"
    shutil.copytree(tiny_run, run, symlinks=True)
    configs = ["--configfile", str(project / "config.yaml"), str(project / "tests/data/tiny.yaml")]
    result = run_snakemake(["-n", *configs], run, snakefile=project / "Snakefile")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Nothing to be done" in result.stdout + result.stderr, (result.stdout + result.stderr)[-3000:]
