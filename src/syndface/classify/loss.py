"""Class-weighted cross-entropy for hard and soft labels, one formula for both.

The paper's code uses two forms (C:train.py:L321-322; C:SoftLabelLoss.py):
- real images only: torch `CrossEntropyLoss(weight=w)`, a weighted *mean*
  sum_i w[y_i] CE_i / sum_i w[y_i];
- GAN soft labels: sum_i sum_y t_iy w_y CE_iy / N, a plain batch mean not normalised by the
  weights (torch's `cross_entropy(weight=w)` with probability targets computes the same).

Both are sum_i sum_y t_iy w_y CE_iy / Z and differ only in Z. With Z = sum_i sum_y t_iy w_y
(`normalisation="weights"`, the default) the soft-label loss on one-hot targets *is*
`CrossEntropyLoss(weight=w)`, so the real-only and the GAN-augmented models train on one loss
scale and Table 2 compares like with like. `normalisation="batch"` (Z = N) reproduces the
paper code's soft form, whose scale moves with each batch's class mix (N / sum_i w[y_i]).
Which one a variant trains with is `syndface.classify.options.loss_normalisation_for`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from syndface.classify.options import LOSS_NORMALISATIONS


def loss_denominator(targets: torch.Tensor, weights: torch.Tensor, normalisation: str = "weights") -> torch.Tensor:
    """Z of a batch: the sum of its target weights ("weights") or its size ("batch")."""
    if normalisation not in LOSS_NORMALISATIONS:
        raise ValueError(f"unknown loss normalisation {normalisation!r}; allowed: {', '.join(LOSS_NORMALISATIONS)}")
    if normalisation == "batch":
        return torch.tensor(float(targets.shape[0]), device=targets.device)
    return (targets.float() * weights.to(targets.device, torch.float32)[None, :]).sum()


def weighted_cross_entropy(
    logits: torch.Tensor,
    targets: torch.Tensor,
    weights: torch.Tensor,
    normalisation: str = "weights",
    denominator: torch.Tensor | None = None,
) -> torch.Tensor:
    """Loss of N x C `logits` against N x C target probabilities (one-hot rows for hard labels).

    `denominator`: Z of the whole batch when these rows are only part of it (a micro-batch, or
    one rank's share), so the parts' losses add up to the batch's loss exactly."""
    if denominator is None:
        denominator = loss_denominator(targets, weights, normalisation)
    weighted = targets.float() * weights.to(targets.device, torch.float32)[None, :]
    return -(weighted * F.log_softmax(logits.float(), dim=1)).sum() / denominator
