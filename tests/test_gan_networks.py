"""The conditional StyleGAN2 networks and the ADA pipeline (tiny sizes, CPU)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from syndface.gan.augment import SYM6, AdaController, AugmentPipe, _rotate, _scale, _warp, _warp_2x
from syndface.gan.networks import (
    N_DISEASES,
    Discriminator,
    GanArch,
    Generator,
    fir_filter,
    label_vectors,
    modulated_conv2d,
    normalize_2nd_moment,
    upfirdn2d,
)
from syndface.seeding import seed_everything

TINY = GanArch(resolution=16, channel_base=128, channel_max=16, z_dim=8, w_dim=8, mapping_layers=2, mbstd_group=2)


def tiny_generator(seed: int = 0) -> Generator:
    seed_everything(seed)
    return Generator(TINY).eval()


def test_shapes_and_determinism_per_seed():
    G, D = tiny_generator(3), Discriminator(TINY)
    z = torch.randn(4, TINY.z_dim)
    labels = label_vectors(["WS", "22q", "control", "unaffected"], ["infant", "child", "adolescent", "older_adult"])
    img = G(z, labels, noise_mode="const")
    assert img.shape == (4, 3, 16, 16)
    assert G.num_ws == 2 * int(math.log2(16)) - 2
    assert D(img, labels).shape == (4,)
    assert torch.equal(tiny_generator(3)(z, labels, noise_mode="const"), img)
    assert not torch.equal(tiny_generator(4)(z, labels, noise_mode="const"), img)


def test_paper_size_matches_the_reference_parameter_counts():
    # Counts derived from the official layer list with the split label embedding (stylegan2-ada-facts.md).
    G, D = Generator(GanArch()), Discriminator(GanArch())
    assert round(sum(p.numel() for p in G.parameters()) / 1e6, 2) == 25.03
    assert round(sum(p.numel() for p in D.parameters()) / 1e6, 2) == 24.27
    assert G.num_ws == 14


def test_disease_change_moves_only_the_disease_half_of_the_mapping_input():
    G = tiny_generator()
    z = torch.randn(1, TINY.z_dim)
    a = label_vectors(["WS"], ["child"])
    b = label_vectors(["22q"], ["child"])
    half = TINY.w_dim // 2
    ea, eb = G.mapping.embed(a), G.mapping.embed(b)
    assert not torch.allclose(ea[:, :half], eb[:, :half])
    assert torch.equal(ea[:, half:], eb[:, half:])
    xa, xb = G.mapping.mapping_input(z, a), G.mapping.mapping_input(z, b)
    assert torch.equal(xa[:, : TINY.z_dim], xb[:, : TINY.z_dim])
    # After the joint normalisation the age half is only rescaled: same direction.
    age_a, age_b = xa[:, TINY.z_dim + half :], xb[:, TINY.z_dim + half :]
    assert torch.allclose(F.normalize(age_a), F.normalize(age_b), atol=1e-6)
    c = label_vectors(["WS"], ["older_adult"])
    assert torch.equal(G.mapping.embed(c)[:, :half], ea[:, :half])


def test_blended_and_interpolated_labels_give_weighted_embeddings():
    G = tiny_generator()
    ws_, q22, infant, old = (
        label_vectors([d], [a]) for d, a in (("WS", "child"), ("22q", "child"), ("WS", "infant"), ("WS", "older_adult"))
    )
    embed = G.mapping.embed
    for c in (0.55, 0.75):
        assert torch.allclose(embed(c * ws_ + (1 - c) * q22), c * embed(ws_) + (1 - c) * embed(q22), atol=1e-6)
    for t in (0.25, 0.5):
        assert torch.allclose(embed((1 - t) * infant + t * old), (1 - t) * embed(infant) + t * embed(old), atol=1e-6)
    # The disease part is exactly W_d @ label / sqrt(4) + bias: a hand-computable linear map.
    blend = 0.75 * ws_ + 0.25 * q22
    expected = (embed.disease @ blend[0, :N_DISEASES]) / 2 + embed.bias[: TINY.w_dim // 2]
    assert torch.allclose(embed(blend)[0, : TINY.w_dim // 2], expected, atol=1e-6)


def test_labels_must_have_nine_columns():
    with pytest.raises(ValueError, match="9 columns"):
        tiny_generator().mapping.embed(torch.zeros(1, 4))


@pytest.mark.parametrize("up", [False, True])
def test_modulated_conv_equals_per_sample_modulated_weights(up):
    torch.manual_seed(0)
    x, weight, styles = torch.randn(3, 4, 6, 6), torch.randn(5, 4, 3, 3), torch.randn(3, 4)
    out = modulated_conv2d(x, weight, styles, demodulate=True, up=up)
    for i in range(3):
        w = weight * styles[i][None, :, None, None]
        w = w / w.square().sum(dim=[1, 2, 3], keepdim=True).add(1e-8).sqrt()
        if up:
            ref = F.conv_transpose2d(x[i : i + 1], w.transpose(0, 1), stride=2)
            ref = upfirdn2d(ref, fir_filter(), pad=(1, 1), gain=4)
        else:
            ref = F.conv2d(x[i : i + 1], w, padding=1)
        assert torch.allclose(out[i : i + 1], ref, atol=1e-5)
    assert out.shape[-1] == (12 if up else 6)


def test_fir_upsampling_keeps_a_constant_image_constant():
    x = torch.full((1, 2, 4, 4), 3.0)
    up = upfirdn2d(x, fir_filter(), up=2, pad=(2, 1), gain=4)
    assert up.shape == (1, 2, 8, 8)
    assert torch.allclose(up[:, :, 2:-2, 2:-2], torch.full((1, 2, 4, 4), 3.0))


def test_normalize_2nd_moment_gives_unit_mean_square():
    x = normalize_2nd_moment(torch.randn(5, 7) * 10)
    assert torch.allclose(x.square().mean(1), torch.ones(5), atol=1e-5)


def only(op: str) -> AugmentPipe:
    pipe = AugmentPipe(**{name: 0.0 for name in AugmentPipe.OPS if name != op})
    pipe.p.fill_(1.0)
    return pipe


def smooth_images(n: int, size: int = 16, seed: int = 0) -> torch.Tensor:
    """Band-limited test images (random 4x4 colours upsampled): what a flip should reproduce closely."""
    gen = torch.Generator().manual_seed(seed)
    return F.interpolate(torch.rand(n, 3, 4, 4, generator=gen), size=size, mode="bicubic", align_corners=False)


@pytest.mark.parametrize("antialias", [False, True])
def test_integer_translations_are_exact_and_flips_exact_or_close(antialias):
    """1x path: flips and integer shifts land on pixel centres, exact. 2x sym6 path: integer shifts
    (and the identity) are exact, as sym6 up/down is a perfect-reconstruction pair; a flip mirrors
    the filter too, and sym6 is only nearly symmetric, so flips are close on band-limited images."""
    torch.manual_seed(0)
    x = torch.randn(32, 3, 16, 16)
    pipe = only("xint")
    pipe.antialias = antialias
    y = pipe(x)
    shifts = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)]  # 0.125 * 16 px
    for i in range(32):
        assert any(
            torch.allclose(y[i, :, 2:-2, 2:-2], torch.roll(x[i], s, (1, 2))[:, 2:-2, 2:-2], atol=1e-5) for s in shifts
        )
    x = smooth_images(32)
    pipe = only("xflip")
    pipe.antialias = antialias
    torch.manual_seed(1)
    y = pipe(x)
    tolerance = 0.03 if antialias else 1e-5
    flipped = [float((y[i] - x[i].flip(-1)).abs().max()) < tolerance for i in range(32)]
    kept = [torch.allclose(y[i], x[i], atol=1e-5) for i in range(32)]
    assert all(f or k for f, k in zip(flipped, kept)) and any(flipped) and any(kept)


def test_sym6_is_an_orthonormal_wavelet_low_pass():
    h = torch.tensor(SYM6, dtype=torch.float64)
    assert float(h.sum()) == pytest.approx(math.sqrt(2), abs=1e-12)
    assert float(h.square().sum()) == pytest.approx(1.0, abs=1e-11)
    for shift in range(1, 6):  # orthogonal to its even shifts
        assert float(h[2 * shift :] @ h[: -2 * shift]) == pytest.approx(0.0, abs=1e-11)
    g = torch.tensor([(-1) ** k for k in range(12)], dtype=torch.float64) * h.flip(0)  # the high-pass
    k = torch.arange(12, dtype=torch.float64)
    assert all(abs(float((g * k**m).sum())) < 1e-6 for m in range(6))  # six vanishing moments


def test_the_2x_warp_suppresses_aliasing_that_the_1x_warp_lets_through():
    """Shrinking by 2 stripes at 0.45 cycles/px puts them beyond Nyquist: the band-limited answer is
    flat grey. Measured: interior std 0.052 at 1x, 0.0037 through the 2x sym6 path. On a smooth
    image rotated 30 deg and shrunk to 0.7, the two paths differ by 0.037 mean |difference| (range [0, 1])."""
    stripes = (0.5 + 0.5 * torch.cos(2 * math.pi * 0.45 * torch.arange(32.0)))[None, None, None].expand(1, 3, 32, 32)
    shrink = _scale(torch.tensor([2.0]), torch.tensor([2.0]))
    one_x = _warp(stripes, shrink)[..., 8:-8, 8:-8].std()
    two_x = _warp_2x(stripes, shrink)[..., 8:-8, 8:-8].std()
    assert two_x < 0.01 < 0.04 < one_x
    smooth = smooth_images(1, 32, seed=0).clamp(0, 1)
    g = _rotate(torch.tensor([math.pi / 6])) @ _scale(torch.tensor([1 / 0.7]), torch.tensor([1 / 0.7]))
    difference = float((_warp(smooth, g) - _warp_2x(smooth, g)).abs().mean())
    assert 0.01 < difference < 0.08


def test_colour_ops_keep_grey_pixels_grey_and_p0_is_identity():
    grey = torch.full((8, 3, 4, 4), 0.3)
    pipe = AugmentPipe(
        **{name: 0.0 for name in ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac", "brightness")}
    )
    pipe.p.fill_(1.0)
    out = pipe(grey)
    assert torch.allclose(out[:, 0], out[:, 1], atol=1e-6) and torch.allclose(out[:, 1], out[:, 2], atol=1e-6)
    x = torch.randn(2, 3, 8, 8)
    assert AugmentPipe()(x) is x
    with pytest.raises(ValueError, match="unknown augmentation"):
        AugmentPipe(cutout=1)


def test_r1_penalty_backpropagates_through_the_full_pipe():
    torch.manual_seed(0)
    D = Discriminator(TINY)
    pipe = AugmentPipe()
    pipe.p.fill_(1.0)
    x = torch.randn(4, 3, 16, 16, requires_grad=True)
    labels = label_vectors(["WS"] * 4, ["child"] * 4)
    (grad,) = torch.autograd.grad(D(pipe(x), labels).sum(), x, create_graph=True)
    grad.square().sum().backward()
    grads = [p.grad for p in D.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


def test_ada_controller_moves_p_towards_the_target_and_stays_in_range():
    pipe = AugmentPipe()
    ada = AdaController(pipe, target=0.6, batch=16, interval=2, ada_kimg=0.1)
    step = 16 * 2 / 100
    ada.accumulate(torch.ones(16))  # D is sure every real is real: r_t = 1 > 0.6
    assert ada.step() is None
    assert ada.step() == 1.0
    assert float(pipe.p) == pytest.approx(step)
    for _ in range(2):
        ada.accumulate(-torch.ones(16))
        ada.step()
    assert float(pipe.p) == pytest.approx(0.0)
    for _ in range(20):
        ada.accumulate(torch.ones(16))
        ada.step()
    assert float(pipe.p) == 1.0
