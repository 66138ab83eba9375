"""`syndface predict-tta`: the fold models' softmax averaged over test-time transforms, and the ensemble.

The paper's code could average its predictions over up to 8 flips and transposes (`--n-test`, its
`get_trans`: transposed for i >= 4, then none / vertical / horizontal / both flips by i mod 4)
but the paper used none. Here each fold model's softmax is averaged over the transforms of
`classifier.tta` (`flip`: the image and its mirror image; `dihedral8`: all eight), then the fold
ensemble is formed exactly as `syndface predict` does. The output has predict's columns, so
`syndface evaluate-classifier` reads it; Table 2 shows it as "<variant> (TTA)" beside the
variant's own column.
"""

from __future__ import annotations

import torch
from torch import nn

from syndface.classify.predict import ensemble_note, fold_models_command, predict_test_split
from syndface.evaluation.options import TTAOptions
from syndface.io import write_tsv
from syndface.log import get_logger

log = get_logger("syndface.evaluation")

# Indices into the paper code's eight transforms (identity first; 2 = the horizontal flip).
TTA_TRANSFORMS = {"none": (0,), "flip": (0, 2), "dihedral8": tuple(range(8))}


def dihedral(x: torch.Tensor, index: int) -> torch.Tensor:
    """Transform `index` (0-7) of an NCHW batch, as the paper's code: transposed for index >= 4,
    then flipped by index mod 4 (0 none, 1 vertical, 2 horizontal, 3 both)."""
    if not 0 <= index < 8:
        raise ValueError(f"dihedral transform index must be 0-7, got {index}")
    if index >= 4:
        x = x.transpose(2, 3)
    dims = {0: (), 1: (2,), 2: (3,), 3: (2, 3)}[index % 4]
    return x.flip(dims) if dims else x


class TestTimeAugmented(nn.Module):
    """A classifier whose output is the log of its softmax averaged over the transforms: a softmax
    of it gives back that mean probability exactly, so every caller that applies a softmax to a
    model's output gets the augmented prediction."""

    def __init__(self, model: nn.Module, mode: str):
        super().__init__()
        if mode not in TTA_TRANSFORMS:
            raise ValueError(f"unknown test-time augmentation {mode!r}; allowed: {', '.join(TTA_TRANSFORMS)}")
        self.model, self.transforms = model, TTA_TRANSFORMS[mode]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels_last = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
        total = None
        for index in self.transforms:
            view = dihedral(x, index)
            view = view.contiguous(memory_format=torch.channels_last) if channels_last else view.contiguous()
            p = torch.softmax(self.model(view).float(), 1)
            total = p if total is None else total + p
        return torch.log(total / len(self.transforms))


def main(argv: list[str], prog: str = "syndface predict-tta") -> int:
    out_help = "results/evaluation/<variant>/tta/predictions.tsv"
    args, device = fold_models_command(argv, prog, __doc__, TTAOptions, out_help)
    opts = args.options
    table, folds = predict_test_split(
        args.models,
        args.cache,
        opts.batch_size,
        device,
        opts.precision,
        opts.ensemble_threshold,
        wrap=lambda model: TestTimeAugmented(model, opts.tta),
    )
    header = [
        f"test-time augmentation {opts.tta}: each fold model's softmax averaged over {len(TTA_TRANSFORMS[opts.tta])} "
        "transform(s) of the paper code's eight (flips and transposes)",
        ensemble_note(folds, opts.ensemble_threshold),
    ]
    write_tsv(table, args.out, header_lines=header)
    log.info(
        "TTA %s: %d test images, accuracy %.3f -> %s",
        opts.tta,
        len(table),
        float((table["pred"] == table["disease"]).mean()),
        args.out,
    )
    return 0
