"""`syndface <command> ...`: one sub-command per workflow step.

Each command lives in its stage's module as `main(argv)`; modules are imported only when
their command runs, so `syndface --help` stays fast and a CPU-only stage never imports torch.
"""

from __future__ import annotations

import importlib
import sys

# command -> (module, one-line help). Rule names in workflow/rules/*.smk are these, snake_cased.
COMMANDS: dict[str, tuple[str, str]] = {
    "build-manifest": ("syndface.cohort.build", "import cohort/auxiliary tables into one validated manifest"),
    "make-demo-cohort": (
        "syndface.demo.cohort",
        "render the synthetic demo cohort with planted signals, landmarks and region masks",
    ),
    "make-folds": ("syndface.folds", "subject-grouped, stratified k-fold split of the train images"),
    "train-gan": ("syndface.gan.train", "train one fold's conditional StyleGAN2-ADA (split disease/age embedding)"),
    "generate-fakes": ("syndface.gan.fakes", "render one fake-image type from a fold's GAN, with soft labels"),
    "privacy-audit": ("syndface.gan.privacy", "nearest GAN training face and distance for every fake image"),
    "import-survey": (
        "syndface.clinicians.qualtrics",
        "Qualtrics survey export -> survey long table + rejected responses",
    ),
    "simulate-survey": (
        "syndface.clinicians.simulate",
        "SIMULATED clinician answers for the demo cohort (paper's Table 1 accuracies)",
    ),
    "compare-clinicians": (
        "syndface.clinicians.compare",
        "clinicians vs model: per image/age group statistics, Table 1, figure",
    ),
    "occlusion-maps": ("syndface.saliency.maps", "fold-averaged occlusion maps of the test images (exact, batched)"),
    "saliency-composites": (
        "syndface.saliency.composites",
        "mean saliency map per disease x age group over the mean face",
    ),
    "permutation-test": (
        "syndface.saliency.permutation",
        "permutation test of saliency differences between age groups",
    ),
    "saliency-truth-check": ("syndface.saliency.truth", "score demo saliency maps against the planted region masks"),
    "align-shard": (
        "syndface.align.shard",
        "FFHQ-style face alignment of one manifest shard (dlib or manual landmarks)",
    ),
    "merge-aligned": ("syndface.align.merge", "join the shard alignment reports; count and list failures"),
    "build-cache": ("syndface.align.cache", "pack the aligned images of one resolution into a uint8 array + index"),
    "check-leakage": (
        "syndface.align.leakage",
        "same-person pairs across folds and test/train (dlib face descriptors)",
    ),
    "plot-cohort-overview": ("syndface.align.overview", "grid of aligned faces by disease x age group"),
    "train-classifier": (
        "syndface.classify.train",
        "train one fold model of one variant (resumable; best epoch by cohort balanced accuracy)",
    ),
    "predict": ("syndface.classify.predict", "fold models' softmax on the test split and their thresholded ensemble"),
    "evaluate-classifier": (
        "syndface.classify.evaluate",
        "per-class, per-group and two-way accuracy with bootstrap intervals; confusion matrix",
    ),
    "make-table2": ("syndface.classify.table2", "Table 2: per-class and average accuracy of every variant"),
    "fetch-weights": ("syndface.weights", "download a pretrained weights file, verified by its pinned SHA-256"),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: syndface <command> [options]", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {text}" for name, (_, text) in sorted(COMMANDS.items())]
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
    if name not in COMMANDS:
        print(f"syndface: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    result = module.main(rest, prog=f"syndface {name}")
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
