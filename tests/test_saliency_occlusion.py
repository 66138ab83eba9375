"""Batched occlusion equals captum's Occlusion (and a brute-force loop); fold averaging and clipping."""

from __future__ import annotations

import math

import numpy as np
import pytest
import timm
import torch
from captum.attr import Occlusion

from syndface.saliency.occlusion import fold_mean, occlusion_maps, positive_part, prepare_model, window_bands


@pytest.fixture(scope="module")
def tiny_net():
    torch.manual_seed(0)
    return timm.create_model("test_efficientnet", num_classes=4).double().eval()


def captum_map(model, images, window, stride, targets):
    attr = Occlusion(model).attribute(
        images,
        sliding_window_shapes=(3, window, window),
        strides=(3, stride, stride),
        baselines=0,
        target=torch.as_tensor(targets),
        perturbations_per_eval=64,
    )
    assert torch.equal(attr[:, 0], attr[:, 2]), "captum gives every channel of a pixel the same value"
    return attr[:, 0].double()


def brute_force_map(model, image, window, stride, target):
    """The textbook definition: one forward per window, drops averaged over covering windows."""
    _, height, width = image.shape
    total = torch.zeros(height, width, dtype=torch.float64)
    count = torch.zeros(height, width, dtype=torch.float64)
    with torch.no_grad():
        clean = model(image[None])[0, target]
        for top in range(0, stride * math.ceil((height - window) / stride) + 1, stride):
            for left in range(0, stride * math.ceil((width - window) / stride) + 1, stride):
                occluded = image.clone()
                occluded[:, top : top + window, left : left + window] = 0
                total[top : top + window, left : left + window] += clean - model(occluded[None])[0, target]
                count[top : top + window, left : left + window] += 1
    return total / count


# 24 x 21 images: every combination clips the last window on at least one axis; (3,2) tiles the columns exactly.
@pytest.mark.parametrize("window,stride", [(3, 2), (5, 3), (4, 4), (7, 5)])
def test_maps_equal_captum(tiny_net, window, stride):
    torch.manual_seed(window * 10 + stride)
    images = torch.randn(2, 3, 24, 21, dtype=torch.float64)
    targets = [1, 3]
    ours = occlusion_maps([tiny_net], images, targets, window, stride, batch=37)[0]
    reference = captum_map(tiny_net, images, window, stride, targets)
    value_range = (reference.max() - reference.min()).item()
    assert value_range > 0
    assert (ours - reference).abs().max().item() <= 1e-4 * value_range


def test_maps_equal_brute_force_in_float64(tiny_net):
    torch.manual_seed(1)
    image = torch.randn(3, 20, 17, dtype=torch.float64)
    ours = occlusion_maps([tiny_net], image[None], [2], 6, 4, batch=16)[0, 0]
    torch.testing.assert_close(ours, brute_force_map(tiny_net, image, 6, 4, 2), rtol=0, atol=1e-12)


def test_fp32_channels_last_and_fixed_shapes_match_captum():
    torch.manual_seed(2)
    model = timm.create_model("test_efficientnet", num_classes=4).eval()
    images = torch.randn(3, 3, 24, 24)
    reference = captum_map(model, images, 5, 2, [0, 1, 2])
    fast = prepare_model(model, "cpu", channels_last=True)
    # 3 x 122 forwards in 8 equal chunks of 46 leave 2 padding slots: they must not leak into the map.
    ours = occlusion_maps([fast], images, [0, 1, 2], 5, 2, batch=50, channels_last=True, fixed_shape=True)[0]
    assert (ours - reference).abs().max().item() <= 1e-4 * (reference.max() - reference.min()).item()


def test_several_models_in_one_pass_equal_separate_runs(tiny_net):
    torch.manual_seed(3)
    other = timm.create_model("test_efficientnet", num_classes=4).double().eval()
    images = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    both = occlusion_maps([tiny_net, other], images, [0, 3], 4, 2, batch=50)
    torch.testing.assert_close(both[0], occlusion_maps([tiny_net], images, [0, 3], 4, 2)[0], rtol=0, atol=1e-14)
    torch.testing.assert_close(both[1], occlusion_maps([other], images, [0, 3], 4, 2)[0], rtol=0, atol=1e-14)


def test_window_bands_follow_captum_count_and_clip_the_last_window():
    bands = window_bands(448, 20, 10)
    assert bands.shape == (44, 448)  # ceil((448 - 20) / 10) + 1, not 43
    assert bands[-1].nonzero().flatten().tolist() == list(range(430, 448))  # clipped to 18 px
    assert bands.sum(0).min() >= 1  # every pixel is occluded at least once
    assert window_bands(10, 10, 50).shape == (1, 10)  # a full-size window needs no stride rule


@pytest.mark.parametrize("window,stride", [(0, 1), (11, 1), (3, 4), (3, 0)])
def test_window_bands_reject_bad_settings(window, stride):
    with pytest.raises(ValueError):
        window_bands(10, window, stride)


def test_target_count_must_match_images(tiny_net):
    with pytest.raises(ValueError, match="one target per image"):
        occlusion_maps([tiny_net], torch.zeros(2, 3, 8, 8, dtype=torch.float64), [0], 4, 2)


def test_fold_mean_keeps_sign_and_positive_part_clips_after_averaging():
    folds = torch.tensor([[[1.0, -3.0]], [[-1.0, 1.0]]])  # 2 folds x 1 image x 2 pixels
    mean = fold_mean(folds)
    assert mean.tolist() == [[0.0, -1.0]]
    assert positive_part(mean).tolist() == [[0.0, 0.0]]
    # Clipping each fold first would differ: the order matters, and the stages clip after averaging as the paper's code does.
    assert fold_mean(positive_part(folds)).tolist() == [[0.5, 0.5]]
    assert positive_part(np.array([-0.5, 2.0])).tolist() == [0.0, 2.0]
