"""The classifier's training augmentations: the paper's composition, each op's effect, seeding and resuming."""

from __future__ import annotations

import colorsys
import math

import numpy as np
import pytest
import torch

from syndface.classify import augment as A

PAPER_PIPELINE = """\
Sequential(
  (0): RandomTranspose(p=0.5, p_batch=1.0, same_on_batch=False)
  (1): RandomVerticalFlip(p=0.5, p_batch=1.0, same_on_batch=False)
  (2): RandomHorizontalFlip(p=0.5, p_batch=1.0, same_on_batch=False)
  (3): RandomBrightness(brightness_factor=tensor([0.8000, 1.2000]), p=0.75, p_batch=1.0, same_on_batch=False)
  (4): RandomContrast(contrast_factor=tensor([0.8000, 1.2000]), p=0.75, p_batch=1.0, same_on_batch=False)
  (5): OneOf(
    p=0.7
    (ops): ModuleList(
      (0): OneOf(
        p=1.0
        (ops): ModuleList(
          (0): RandomMotionBlur(kernel_size=3, angle=90.0, direction=0.0, p=1.0, p_batch=1.0, same_on_batch=False, \
border_type=reflect, resample=nearest)
          (1): RandomMotionBlur(kernel_size=5, angle=90.0, direction=0.0, p=1.0, p_batch=1.0, same_on_batch=False, \
border_type=reflect, resample=nearest)
        )
      )
      (1): OneOf(
        p=1.0
        (ops): ModuleList(
          (0): RandomMedianBlur(p=1.0, p_batch=1.0, same_on_batch=False, kernel_size=(3, 3))
          (1): RandomMedianBlur(p=1.0, p_batch=1.0, same_on_batch=False, kernel_size=(5, 5))
        )
      )
      (2): OneOf(
        p=1.0
        (ops): ModuleList(
          (0): RandomGaussianBlur(sigma=(0.8, 0.8), p=1.0, p_batch=1.0, same_on_batch=False, kernel_size=(3, 3), \
separable=True, border_type=reflect)
          (1): RandomGaussianBlur(sigma=(1.1, 1.1), p=1.0, p_batch=1.0, same_on_batch=False, kernel_size=(5, 5), \
separable=True, border_type=reflect)
        )
      )
      (3): RandomGaussNoise(p=1.0, p_batch=1.0, same_on_batch=False, var_limit=(5.0, 30.0))
    )
  )
  (6): OneOf(
    p=0.7
    (ops): ModuleList(
      (0): RandomOpticalDistortion(p=1.0, p_batch=1.0, same_on_batch=False, distort_limit=1.0)
      (1): RandomGridDistortion(p=1.0, p_batch=1.0, same_on_batch=False, num_steps=5, distort_limit=1.0)
      (2): RandomElasticAffine(p=1.0, p_batch=1.0, same_on_batch=False, alpha_affine_fraction=0.11160714285714286)
    )
  )
  (7): RandomLabClahe(p=0.7, p_batch=1.0, same_on_batch=False, clip_limit=4.0, tiles=8)
  (8): RandomHueSaturationValue(p=0.5, p_batch=1.0, same_on_batch=False, hue=0.05555555555555555, \
saturation=0.0784313725490196, value=0.0392156862745098)
  (9): RandomAffine(degrees=15.0, translate=(0.1, 0.1), scale=(0.9, 1.1), shear=None, p=0.85, p_batch=1.0, \
same_on_batch=False, resample=bilinear, padding_mode=zeros, align_corners=False, fill_value=None)
  (10): RandomErasing(scale=(0.140625, 0.140625), resize_to=(1.0, 1.0), value=0.0, p=0.7, p_batch=1.0, \
same_on_batch=False)
)"""


def test_the_paper_pipeline_is_albumentations_0_4_6s_in_order_with_its_parameters_and_probabilities():
    # C:dataset.py:L60-85 (notes/paper-code-facts.md section 2): OpenCV's sigma for 3 and 5 px
    # Gaussian kernels, hue 10/180, saturation 20/255, value 10/255, cutout side 0.375 (area 0.140625).
    assert str(A.paper_pipeline()) == PAPER_PIPELINE
    assert [A.opencv_gaussian_sigma(s) for s in A.BLUR_SIZES] == pytest.approx([0.8, 1.1])
    light = [type(op).__name__ for op in A.light_pipeline()]
    assert light == ["RandomHorizontalFlip", "RandomBrightness", "RandomContrast", "RandomHueSaturationValue"]
    assert [str(op) for op in A.light_pipeline()] == [
        str(op) for op in A.paper_pipeline() if type(op).__name__ in light
    ]


@pytest.fixture(scope="module")
def batch():
    return torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(3))


def _always(op_index: int) -> torch.nn.Module:
    """The paper pipeline's op at `op_index`, made to fire on every image."""
    op = A.paper_pipeline()[op_index]
    op.p = 1.0
    return op


@pytest.mark.parametrize(
    "index, expected", [(0, lambda x: x.transpose(-1, -2)), (1, lambda x: x.flip(-2)), (2, lambda x: x.flip(-1))]
)
def test_dihedral_ops_transpose_and_flip_exactly(batch, index, expected):
    assert torch.equal(_always(index)(batch), expected(batch))


def test_brightness_adds_and_contrast_multiplies_by_one_draw_per_image_within_the_limits():
    grey = torch.full((400, 3, 4, 4), 0.5)
    torch.manual_seed(0)
    shift = _always(3)(grey) - grey
    scale = _always(4)(grey) / grey
    for change, centre in ((shift, 0.0), (scale, 1.0)):
        per_image = change.flatten(1)
        assert torch.allclose(per_image, per_image[:, :1].expand_as(per_image), atol=1e-6)
        assert per_image.min() >= centre - 0.2 - 1e-6 and per_image.max() <= centre + 0.2 + 1e-6
        assert per_image.min() < centre - 0.18 and per_image.max() > centre + 0.18  # the whole range is drawn


def test_blurs_keep_a_flat_image_and_the_median_removes_an_isolated_speck():
    flat = torch.full((2, 3, 16, 16), 0.3)
    blur_or_noise = A.paper_pipeline()[5]
    for kind in blur_or_noise.ops[:3]:
        for blur in kind.ops:
            assert torch.allclose(blur(flat), flat, atol=1e-6), blur
    speck = flat.clone()
    speck[:, :, 8, 8] = 1.0
    for median in blur_or_noise.ops[1].ops:
        assert torch.allclose(median(speck), flat)


def test_gauss_noise_has_one_variance_per_image_between_5_and_30_in_8_bit_units():
    grey = torch.full((64, 3, 48, 48), 0.5)
    torch.manual_seed(1)
    noise = A.RandomGaussNoise()(grey) - grey
    std_8bit = noise.flatten(1).std(1) * 255
    assert std_8bit.min() > math.sqrt(5) * 0.95 and std_8bit.max() < math.sqrt(30) * 1.05
    assert std_8bit.max() - std_8bit.min() > 1.5  # drawn per image, not one for the batch
    assert noise.flatten(1).mean(1).abs().max() < 0.002


def _ramp(h: int, w: int) -> torch.Tensor:
    """Channel 0 = x / (w - 1), channel 1 = y / (h - 1): bilinear sampling of it returns the sampled position."""
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    return torch.stack([xs / (w - 1), ys / (h - 1), torch.zeros_like(xs)])[None].float()


def _sampled(out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    h, w = out.shape[-2:]
    return out[0, 0] * (w - 1), out[0, 1] * (h - 1)


def test_optical_distortion_samples_where_opencvs_radial_model_says():
    h = w = 32
    op = A.RandomOpticalDistortion()
    assert torch.allclose(op.apply_transform(_ramp(h, w), {"k": torch.zeros(1)}, op.flags), _ramp(h, w), atol=1e-5)
    k = 0.2
    sx, sy = _sampled(op.apply_transform(_ramp(h, w), {"k": torch.tensor([k])}, op.flags))
    # cv2.initUndistortRectifyMap with focal w, centre (w/2, h/2), dist (k, k, 0, 0, 0), worked by hand.
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    xn, yn = (xs - w / 2) / w, (ys - h / 2) / w
    r2 = xn**2 + yn**2
    factor = 1 + k * r2 + k * r2**2
    ex, ey = xn * factor * w + w / 2, yn * factor * w + h / 2
    inside = (ex >= 0) & (ex <= w - 1) & (ey >= 0) & (ey <= h - 1)
    assert inside.float().mean() > 0.7
    assert torch.allclose(sx[inside], ex[inside], atol=1e-3) and torch.allclose(sy[inside], ey[inside], atol=1e-3)


def _albumentations_grid_axis(steps: list[float], length: int, num_steps: int) -> np.ndarray:
    """albumentations 0.4.6 functional.grid_distortion, one axis, as written there."""
    step = length // num_steps
    out = np.zeros(length, np.float32)
    prev = 0.0
    for idx, start in enumerate(range(0, length, step)):
        end = start + step
        if end > length:
            end, cur = length, length
        else:
            cur = prev + step * steps[idx]
        out[start:end] = np.linspace(prev, cur, end - start)
        prev = cur
    return out


@pytest.mark.parametrize("length", [12, 32, 33])
def test_grid_distortion_maps_bands_as_albumentations_0_4_6(length):
    steps = torch.tensor([[0.5, 1.7, 1.0, 0.2, 1.9, 1.3]])
    ours = A.grid_distortion_axis(steps, length, 5)[0].numpy()
    assert np.allclose(ours, _albumentations_grid_axis(steps[0].tolist(), length, 5), atol=1e-5)
    op = A.RandomGridDistortion()
    sx, sy = _sampled(
        op.apply_transform(_ramp(length, length), {"steps_x": steps, "steps_y": torch.ones(1, 6)}, op.flags)
    )
    inside = torch.from_numpy(ours <= length - 1)
    assert torch.allclose(sx[:, inside], torch.from_numpy(ours)[inside].expand_as(sx[:, inside]), atol=1e-4)
    rows = torch.from_numpy(_albumentations_grid_axis([1.0] * 6, length, 5))
    assert torch.allclose(sy[rows <= length - 1, 0], rows[rows <= length - 1], atol=1e-4)


def test_elastic_affine_is_the_identity_without_jitter_and_shifts_with_a_common_one():
    op = A.RandomElasticAffine()
    x = _ramp(32, 32)

    def warp(jitter: torch.Tensor) -> torch.Tensor:
        params = {"jitter": jitter}
        return op.apply_transform(x, params, op.flags, op.compute_transformation(x, params, op.flags))

    assert torch.allclose(warp(torch.zeros(1, 3, 2)), x, atol=1e-5)
    # All three points moved 2 px right and 1 px down: a translation, the output samples (x - 2, y - 1).
    sx, sy = _sampled(warp(torch.tensor([[[2.0, 1.0]] * 3])))
    assert torch.allclose(sx[1:, 2:], torch.arange(30.0).expand(31, 30), atol=1e-4)
    assert torch.allclose(sy[1:, 2:], torch.arange(31.0)[:, None].expand(31, 30), atol=1e-4)


def test_clahe_equalises_lightness_and_keeps_greys_grey():
    low_contrast = 0.45 + 0.1 * torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    grey = low_contrast.expand(1, 3, 32, 32)
    out = A.RandomLabClahe()(grey)
    assert out.std() > 2 * grey.std()
    assert (out[:, 0] - out[:, 1]).abs().max() < 0.01 and (out[:, 1] - out[:, 2]).abs().max() < 0.01


def test_hue_saturation_value_shifts_as_colorsys_says(batch):
    op = A.RandomHueSaturationValue()
    shifts = {"hue": torch.full((6,), 0.05), "saturation": torch.full((6,), -0.07), "value": torch.full((6,), 0.03)}
    out = op.apply_transform(batch, shifts, op.flags)
    for n, y, x in [(0, 0, 0), (3, 5, 17), (5, 31, 2)]:
        h, s, v = colorsys.rgb_to_hsv(*batch[n, :, y, x].tolist())
        expected = colorsys.hsv_to_rgb((h + 0.05) % 1, min(max(s - 0.07, 0), 1), min(max(v + 0.03, 0), 1))
        assert out[n, :, y, x].tolist() == pytest.approx(expected, abs=1e-4)
    zero = {name: torch.zeros(6) for name in shifts}
    assert torch.allclose(op.apply_transform(batch, zero, op.flags), batch, atol=1e-5)


def test_shift_scale_rotate_blackens_outside_the_source_only():
    white = torch.ones(200, 3, 32, 32)
    torch.manual_seed(2)
    out = _always(9)(white)
    black = (out < 0.5).flatten(1).float().mean(1)
    assert black.max() > 0.05  # shifts and rotations uncover the corners ...
    assert black.max() < 0.45  # ... but never more than a 15 degree turn, 0.9 scale and 10% shift can


def test_cutout_blackens_one_square_of_0_375_of_the_side_inside_the_image():
    white = torch.ones(50, 3, 64, 64)
    torch.manual_seed(3)
    out = _always(10)(white)
    side = round(0.375 * 64)
    for image in out:
        rows, cols = torch.nonzero(image[0] == 0, as_tuple=True)
        assert len(rows) == side * side
        assert int(rows.max() - rows.min()) + 1 == side == int(cols.max() - cols.min()) + 1


def test_one_of_gives_each_op_its_share_per_image():
    class Mark(torch.nn.Module):
        def __init__(self, value):
            super().__init__()
            self.value = value

        def forward(self, x):
            return torch.full_like(x, self.value)

    torch.manual_seed(4)
    out = A.OneOf(Mark(1.0), Mark(2.0), Mark(3.0), p=0.6)(torch.zeros(3000, 1, 1, 1)).flatten()
    shares = torch.stack([(out == v).float().mean() for v in (0.0, 1.0, 2.0, 3.0)])
    # Binomial standard error at n = 3000 is under 0.01; 4 of them is a bound a correct OneOf meets.
    assert torch.allclose(shares, torch.tensor([0.4, 0.2, 0.2, 0.2]), atol=0.04)


@pytest.mark.parametrize("mode", A.AUGMENT_MODES)
def test_augmentations_keep_shape_dtype_range_and_are_deterministic_per_seed(batch, mode):
    first = A.BatchAugment(mode, torch.Generator().manual_seed(5))(batch)
    again = A.BatchAugment(mode, torch.Generator().manual_seed(5))(batch)
    other = A.BatchAugment(mode, torch.Generator().manual_seed(6))(batch)
    assert first.shape == batch.shape and first.dtype == batch.dtype
    assert float(first.min()) >= 0.0 and float(first.max()) <= 1.0
    assert torch.equal(first, again)
    if mode == "none":
        assert torch.equal(first, batch)
    else:
        assert not torch.equal(first, other)
        assert not torch.equal(first, batch)


def test_augmentation_stream_resumes_from_the_generator_state_and_leaves_torchs_global_stream_alone(batch):
    gen = torch.Generator().manual_seed(11)
    augment = A.BatchAugment("paper", gen)
    torch.manual_seed(99)
    global_state = torch.get_rng_state()
    augment(batch)
    assert torch.equal(torch.get_rng_state(), global_state)
    state = gen.get_state()
    expected = augment(batch)
    assert not torch.equal(gen.get_state(), state)  # every call advances the stream
    restored = A.BatchAugment("paper", torch.Generator())
    restored.generator.set_state(state)
    torch.manual_seed(123)  # whatever else drew from the global stream in between
    assert torch.equal(restored(batch), expected)


def test_augment_refuses_unknown_modes_and_non_square_batches():
    with pytest.raises(ValueError, match="allowed: paper, light, none"):
        A.BatchAugment("heavy", torch.Generator())
    with pytest.raises(ValueError, match="N x 3 x S x S"):
        A.BatchAugment("light", torch.Generator())(torch.rand(2, 3, 8, 9))
