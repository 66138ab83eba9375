"""Occlusion maps run in fp32 by default (exact, captum's maps); fp16 and bf16 are opt-in fast modes
through the same Precision object as training."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from syndface.runtime import Precision
from syndface.saliency.occlusion import occlusion_maps


def region_net() -> nn.Module:
    """A small CNN whose logits move by O(1) when a window covers its input: half-precision rounding
    is then small against the map, as on a trained classifier (not on a random-init one)."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 4),
    ).eval()


@pytest.mark.parametrize("precision", ["fp16", "bf16", Precision("bf16", "cpu")])
def test_half_precision_maps_follow_the_fp32_map(precision):
    model = region_net()
    images = torch.rand(2, 3, 16, 16) * 4
    exact = occlusion_maps([model], images, [0, 2], 4, 2)
    fast = occlusion_maps([model], images, [0, 2], 4, 2, precision=precision)
    assert fast.dtype == torch.float32 and not torch.equal(fast, exact)  # it did run in half precision
    correlation = torch.corrcoef(torch.stack([fast.flatten(), exact.flatten()]))[0, 1]
    assert correlation > 0.99


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="precision must be one of auto, fp32, fp16, bf16"):
        occlusion_maps([region_net()], torch.rand(1, 3, 8, 8), [0], 4, 2, precision="half")
