"""`syndface <command> ...`: one sub-command per workflow step.

Each command lives in its stage's module as `main(argv)`; modules are imported only when
their command runs, so `syndface --help` stays fast and a CPU-only stage never imports torch.
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import NamedTuple

from syndface.options import Options


class Command(NamedTuple):
    module: str  # its `main(argv, prog)`
    options: str | None  # "module:Class" of its options, or None for a command without settings
    help: str


# Rule names in workflow/rules/*.smk are these, snake_cased. A command's settings are the fields of
# its options class (module:Class, imported without torch), passed as one `--options` value.
COMMANDS: dict[str, Command] = {
    "build-manifest": Command(
        "syndface.cohort.build",
        "syndface.cohort.options:ManifestOptions",
        "import cohort/auxiliary tables into one validated manifest",
    ),
    "make-demo-cohort": Command(
        "syndface.demo.cohort",
        "syndface.demo.options:DemoOptions",
        "render the synthetic demo cohort with planted signals, landmarks and region masks",
    ),
    "make-folds": Command(
        "syndface.folds", "syndface.folds:FoldsOptions", "subject-grouped, stratified k-fold split of the train images"
    ),
    "train-gan": Command(
        "syndface.gan.train",
        "syndface.gan.options:GanOptions",
        "train one fold's conditional StyleGAN2-ADA (split disease/age embedding)",
    ),
    "generate-fakes": Command(
        "syndface.gan.fakes",
        "syndface.gan.options:FakesOptions",
        "render one fake-image type from a fold's GAN, with soft labels",
    ),
    "gan-figures": Command(
        "syndface.gan.figures",
        "syndface.gan.options:FakesOptions",
        "a fold's chosen GAN snapshot: disease x age grid and age-progression strips",
    ),
    "fake-fidelity": Command(
        "syndface.gan.fidelity",
        "syndface.gan.options:FidelityOptions",
        "label fidelity of one fake type: the real-only classifiers' verdict per intended disease x age",
    ),
    "privacy-audit": Command(
        "syndface.gan.privacy",
        "syndface.gan.options:PrivacyOptions",
        "nearest GAN training face and distance for every fake image",
    ),
    "import-survey": Command(
        "syndface.clinicians.qualtrics",
        "syndface.clinicians.options:ImportSurveyOptions",
        "Qualtrics survey export -> survey long table + rejected responses",
    ),
    "simulate-survey": Command(
        "syndface.clinicians.simulate",
        "syndface.clinicians.options:SimulateOptions",
        "SIMULATED clinician answers for the demo cohort (paper's Table 1 accuracies)",
    ),
    "compare-clinicians": Command(
        "syndface.clinicians.compare",
        "syndface.clinicians.options:CompareOptions",
        "clinicians vs model: per image/age group statistics, Table 1, figure",
    ),
    "occlusion-maps": Command(
        "syndface.saliency.maps",
        "syndface.saliency.options:OcclusionOptions",
        "fold-averaged occlusion maps of the test images (exact, batched)",
    ),
    "saliency-composites": Command(
        "syndface.saliency.composites",
        "syndface.saliency.options:CompositesOptions",
        "mean saliency map per disease x age group over the mean face",
    ),
    "permutation-test": Command(
        "syndface.saliency.permutation",
        "syndface.saliency.options:PermutationOptions",
        "permutation test of saliency differences between age groups",
    ),
    "saliency-truth-check": Command(
        "syndface.saliency.truth",
        "syndface.saliency.options:TruthCheckOptions",
        "score demo saliency maps against the planted region masks",
    ),
    "align-shard": Command(
        "syndface.align.shard",
        "syndface.align.options:AlignOptions",
        "FFHQ-style face alignment of one manifest shard (dlib or manual landmarks)",
    ),
    "merge-aligned": Command(
        "syndface.align.merge",
        "syndface.align.options:MergeAlignedOptions",
        "join the shard alignment reports; count and list failures",
    ),
    "build-cache": Command(
        "syndface.align.cache", None, "pack the aligned images of one resolution into a uint8 array + index"
    ),
    "check-leakage": Command(
        "syndface.align.leakage",
        "syndface.align.options:LeakageOptions",
        "same-person pairs across folds and test/train (dlib face descriptors)",
    ),
    "plot-cohort-overview": Command(
        "syndface.align.overview",
        "syndface.align.options:OverviewOptions",
        "grid of aligned faces by disease x age group",
    ),
    "train-classifier": Command(
        "syndface.classify.train",
        "syndface.classify.options:TrainOptions",
        "train one fold model of one variant (resumable; best epoch by cohort balanced accuracy)",
    ),
    "predict": Command(
        "syndface.classify.predict",
        "syndface.classify.options:PredictOptions",
        "fold models' softmax on the test split and their thresholded ensemble",
    ),
    "evaluate-classifier": Command(
        "syndface.classify.evaluate",
        "syndface.classify.options:EvaluateOptions",
        "per-class, per-group and two-way accuracy with exact intervals; confusion matrix",
    ),
    "make-table2": Command(
        "syndface.classify.table2",
        "syndface.classify.options:Table2Options",
        "Table 2: per-class and average accuracy of every variant",
    ),
    "predict-out-of-fold": Command(
        "syndface.evaluation.out_of_fold",
        "syndface.evaluation.options:InferenceOptions",
        "each fold model's softmax on its own validation fold (to calibrate on)",
    ),
    "predict-tta": Command(
        "syndface.evaluation.tta",
        "syndface.evaluation.options:TTAOptions",
        "fold models' softmax averaged over test-time flips/transposes, and their ensemble",
    ),
    "export-features": Command(
        "syndface.evaluation.features",
        "syndface.evaluation.options:InferenceOptions",
        "every fold model's penultimate features of every cached image",
    ),
    "calibrate-classifier": Command(
        "syndface.evaluation.calibration",
        "syndface.evaluation.options:CalibrationOptions",
        "Brier score, expected calibration error, reliability diagram, temperature scaling",
    ),
    "evaluate-subgroups": Command(
        "syndface.evaluation.subgroups",
        "syndface.evaluation.options:SubgroupOptions",
        "recall and specificity by age group, sex and ancestry, with cell sizes",
    ),
    "evaluate-readouts": Command(
        "syndface.evaluation.readouts",
        "syndface.evaluation.options:ReadoutOptions",
        "top-k, macro F1 and accuracy beside the paper's Average, per image and per subject",
    ),
    "match-gallery": Command(
        "syndface.evaluation.gallery",
        "syndface.evaluation.options:GalleryOptions",
        "k-nearest-neighbour readout of the test images against the training gallery",
    ),
    "make-held-out-folds": Command(
        "syndface.evaluation.held_out", None, "the folds table without one disease (held-out-label experiment)"
    ),
    "place-held-out": Command(
        "syndface.evaluation.open_set",
        "syndface.evaluation.options:HeldOutOptions",
        "where a disease held out of training lands in the gallery, and how far from it",
    ),
    "summarise-evaluation": Command(
        "syndface.evaluation.summary", None, "one row per variant: the paper's Average beside the other scores"
    ),
    "fetch-weights": Command(
        "syndface.weights", None, "download a pretrained weights file, verified by its pinned SHA-256"
    ),
}


def options_class(name: str) -> type[Options] | None:
    """The options dataclass of command `name` (None when it takes no settings)."""
    if name not in COMMANDS:
        raise KeyError(f"unknown command {name!r}; known: {', '.join(sorted(COMMANDS))}")
    spec = COMMANDS[name].options
    if spec is None:
        return None
    module, _, cls = spec.partition(":")
    return getattr(importlib.import_module(module), cls)


def print_options(argv: list[str]) -> int:
    """`syndface options COMMAND CONFIG...`: the JSON the workflow passes to COMMAND as --options,
    from config files merged in order (later files win, as with Snakemake's --configfile)."""
    import argparse

    import yaml

    parser = argparse.ArgumentParser(prog="syndface options", description=print_options.__doc__)
    parser.add_argument("command", choices=sorted(COMMANDS))
    parser.add_argument("configs", nargs="*", help="config files, e.g. config.yaml config/paper.yaml")
    args = parser.parse_args(argv)
    config: dict = {}
    for path in args.configs:
        with open(path) as fh:
            _merge(config, yaml.safe_load(fh) or {})
    cls = options_class(args.command)
    print(json.dumps(cls.project(config) if cls else {}, sort_keys=True))
    return 0


def _merge(base: dict, update: dict) -> None:
    """Deep-merge `update` into `base` (mappings merge; anything else replaces)."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: syndface <command> [options]", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {command.help}" for name, command in sorted(COMMANDS.items())]
    lines += [f"  {'options'.ljust(width)}  print the --options value a command gets from config files"]
    lines += ["", "Run `syndface <command> --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(_usage())
        return 0
    if argv[0] == "--version":
        from syndface import __version__

        print(__version__)
        return 0
    name, rest = argv[0], argv[1:]
    if name == "options":
        return print_options(rest)
    if name not in COMMANDS:
        print(f"syndface: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name].module)
    result = module.main(rest, prog=f"syndface {name}")
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
