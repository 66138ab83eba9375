"""Adaptive discriminator augmentation (ADA, Karras et al. 2020, 'bgc' pipeline).

Every image D sees, real or fake, goes through the same random pipeline; each transformation
is applied to a sample with probability p. The geometric ones (x-flip, 90-degree rotation,
integer translation, isotropic scale, arbitrary rotation, anisotropic scale, fractional
translation) are composed into one inverse 3x3 matrix per sample and executed once, as the
official pipeline does: reflect-pad, upsample 2x with the symlet-6 wavelet low-pass, one bilinear
`grid_sample` at 2x, sym6 low-pass and 2x downsampling, crop (`_warp_2x`). Resampling at 2x keeps
rotations and shrinks from aliasing: shrinking near-Nyquist stripes by 2 leaves an interior std of
0.0037 instead of 0.052 with a plain 1x bilinear warp (`antialias=False`, `_warp`); on a smooth
image rotated 30 deg and shrunk to 0.7 the two paths differ by 0.037 mean |difference| on a [0, 1]
scale (tests/test_gan_networks.py). Integer translations are exact in both paths; flips and
90-degree rotations are exact at 1x and within 0.03 on band-limited images at 2x (sym6 is only
nearly symmetric). The colour ones (brightness, contrast, luma flip, hue rotation, saturation)
are one affine colour map per sample. Both are plain differentiable torch ops (pad, depthwise
convolution, grid_sample), so the R1 penalty back-propagates through them (twice differentiable).

`AdaController` tunes p: every few steps it measures r_t = E[sign(D(real))] and moves p up
when D is over-confident on reals (r_t above the target, 0.6 in the paper) and down otherwise.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _eye(n: int, size: int, device: torch.device) -> torch.Tensor:
    return torch.eye(size, device=device).repeat(n, 1, 1)


def _translate(tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    m = _eye(len(tx), 3, tx.device)
    m[:, 0, 2], m[:, 1, 2] = tx, ty
    return m


def _scale(sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    m = _eye(len(sx), 3, sx.device)
    m[:, 0, 0], m[:, 1, 1] = sx, sy
    return m


def _rotate(theta: torch.Tensor) -> torch.Tensor:
    m = _eye(len(theta), 3, theta.device)
    c, s = torch.cos(theta), torch.sin(theta)
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = c, -s, s, c
    return m


def _gate(value: torch.Tensor, neutral: float, prob: float) -> torch.Tensor:
    """Keep each sample's drawn value with probability `prob`, else the identity value."""
    keep = torch.rand(value.shape[0], device=value.device) < prob
    keep = keep.reshape(-1, *([1] * (value.ndim - 1)))
    return torch.where(keep, value, torch.full_like(value, neutral))


LUMA_AXIS = torch.tensor([1.0, 1.0, 1.0]) / math.sqrt(3.0)


# The orthonormal symlet-6 low-pass (Daubechies' least-asymmetric wavelet with 6 vanishing moments,
# the `sym6` decomposition filter of wavelet libraries): sum sqrt(2), unit energy, orthogonal to its
# even shifts (tests check all three). As a 2x up/down-sampling pair it reconstructs exactly.
SYM6 = (
    0.015404109327027373,
    0.0034907120842174702,
    -0.11799011114819057,
    -0.048311742585633,
    0.4910559419267466,
    0.787641141030194,
    0.3379294217276218,
    -0.07263752278646252,
    -0.021060292512300564,
    0.04472490177066578,
    0.0017677118642428036,
    -0.007800708325034148,
)
# 2x-grid offset (in 2x pixels) that centres the sym6-upsampled image on the original: found so
# that flips, 90-degree rotations and integer shifts come out exact (tests).
_SYM6_SHIFT = -0.5


def _sym6_filter(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    f = torch.tensor(SYM6, device=device, dtype=dtype)
    f = f / f.sum()
    return torch.outer(f, f)


def _to_grid(g: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Inverse matrix in pixels about the centre -> affine_grid's theta in [-1, 1] units (align_corners=False)."""
    n, dev = g.shape[0], g.device
    to_unit = _scale(torch.full((n,), 2.0 / w, device=dev), torch.full((n,), 2.0 / h, device=dev))
    from_unit = _scale(torch.full((n,), w / 2.0, device=dev), torch.full((n,), h / 2.0, device=dev))
    return (to_unit @ g @ from_unit)[:, :2, :]


def _warp(images: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """One bilinear resampling at the image's own resolution, reflecting at the borders."""
    theta = _to_grid(g, *images.shape[2:])
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def _warp_2x(images: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """The official pipeline's anti-aliased warp: reflect-pad by what the transforms reach, upsample
    2x with the sym6 low-pass, bilinear resampling at 2x, sym6 low-pass and 2x downsampling, crop.

    At 1x, bilinear resampling of a shrunk or rotated image aliases (it reads 4 pixels however far
    apart the output pixels land) and blurs (each output pixel mixes its 4 neighbours); at 2x both
    shrink and the band-limited down-sampling removes what would fold back."""
    from syndface.gan.networks import upfirdn2d

    n, c, h, w = images.shape
    dev = images.device
    # How far outside the image the transformed output corners reach (pixels), + the filter's support.
    cx, cy = w / 2, h / 2
    corners = torch.tensor([[-cx, -cy, 1.0], [cx, -cy, 1.0], [cx, cy, 1.0], [-cx, cy, 1.0]], device=dev)
    reach = (g.detach() @ corners.t())[:, :2, :].abs()
    over = max(float((reach[:, 0] - cx).max()), float((reach[:, 1] - cy).max()), 0.0)
    margin = min(int(math.ceil(over)) + 3, h - 1, w - 1)
    x = F.pad(images, [margin] * 4, mode="reflect")
    f = _sym6_filter(dev, images.dtype)
    x = upfirdn2d(x, f, up=2, pad=(6, 5), gain=4)
    # Same transform on the 2x grid of the padded image (coordinates about its centre, x2).
    size = x.shape[-1]
    ones = torch.ones(n, device=dev)
    shift = _translate(ones * _SYM6_SHIFT, ones * _SYM6_SHIFT)
    unshift = _translate(-ones * _SYM6_SHIFT, -ones * _SYM6_SHIFT)
    g2 = shift @ _scale(2 * ones, 2 * ones) @ g @ _scale(ones / 2, ones / 2) @ unshift
    grid = F.affine_grid(_to_grid(g2, size, size).to(x.dtype), list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    x = upfirdn2d(x, f.flip([0, 1]), down=2, pad=(5, 6))
    return x[:, :, margin : margin + h, margin : margin + w]


class AugmentPipe(nn.Module):
    """ADA's 'bgc' augmentations at probability `p` (a buffer, so it is saved with the state).

    Keyword multipliers scale p per transformation (all 1 in 'bgc'); 0 switches one off.
    """

    OPS = (
        "xflip",
        "rotate90",
        "xint",
        "scale",
        "rotate",
        "aniso",
        "xfrac",
        "brightness",
        "contrast",
        "lumaflip",
        "hue",
        "saturation",
    )

    def __init__(
        self,
        xint_max: float = 0.125,
        scale_std: float = 0.2,
        rotate_max: float = 1.0,
        aniso_std: float = 0.2,
        xfrac_std: float = 0.125,
        brightness_std: float = 0.2,
        contrast_std: float = 0.5,
        hue_max: float = 1.0,
        saturation_std: float = 1.0,
        antialias: bool = True,
        **multipliers: float,
    ):
        super().__init__()
        unknown = sorted(set(multipliers) - set(self.OPS))
        if unknown:
            raise ValueError(f"unknown augmentation(s) {unknown}; known: {', '.join(self.OPS)}")
        self.register_buffer("p", torch.zeros([]))
        self.multipliers = {op: float(multipliers.get(op, 1.0)) for op in self.OPS}
        self.xint_max, self.scale_std, self.rotate_max, self.aniso_std = xint_max, scale_std, rotate_max, aniso_std
        self.xfrac_std, self.brightness_std, self.contrast_std = xfrac_std, brightness_std, contrast_std
        self.hue_max, self.saturation_std = hue_max, saturation_std
        self.antialias = antialias

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        p = float(self.p)
        if p <= 0:
            return images
        return self._colour(self._geometry(images, p), p)

    def _prob(self, op: str, p: float) -> float:
        return p * self.multipliers[op]

    def _geometry(self, images: torch.Tensor, p: float) -> torch.Tensor:
        n, _, h, w = images.shape
        dev = images.device
        ones = torch.ones(n, device=dev)
        # Inverse transform (output pixel -> input pixel), in pixels about the image centre.
        g = _eye(n, 3, dev)
        flip = _gate(torch.randint(0, 2, (n,), device=dev).float(), 0.0, self._prob("xflip", p))
        g = g @ _scale(1 - 2 * flip, ones)
        quarter = _gate(torch.randint(0, 4, (n,), device=dev).float(), 0.0, self._prob("rotate90", p))
        g = g @ _rotate(-math.pi / 2 * quarter)
        shift = _gate(torch.rand(n, 2, device=dev) * 2 - 1, 0.0, self._prob("xint", p)) * self.xint_max
        g = g @ _translate(torch.round(shift[:, 0] * w), torch.round(shift[:, 1] * h))
        scale = _gate(torch.exp2(torch.randn(n, device=dev) * self.scale_std), 1.0, self._prob("scale", p))
        g = g @ _scale(1 / scale, 1 / scale)
        # Rotation is drawn twice (before and after the anisotropic scale) so that P(any rotation) = p.
        p_rot = 1 - math.sqrt(max(0.0, 1 - self._prob("rotate", p)))
        g = g @ _rotate(-_gate((torch.rand(n, device=dev) * 2 - 1) * math.pi * self.rotate_max, 0.0, p_rot))
        aniso = _gate(torch.exp2(torch.randn(n, device=dev) * self.aniso_std), 1.0, self._prob("aniso", p))
        g = g @ _scale(1 / aniso, aniso)
        g = g @ _rotate(-_gate((torch.rand(n, device=dev) * 2 - 1) * math.pi * self.rotate_max, 0.0, p_rot))
        frac = _gate(torch.randn(n, 2, device=dev) * self.xfrac_std, 0.0, self._prob("xfrac", p))
        g = g @ _translate(-frac[:, 0] * w, -frac[:, 1] * h)
        # Only the samples whose draw moved them are resampled: at the small p of early training
        # most of a batch keeps the identity, which either warp reproduces (the 2x pair exactly,
        # up to rounding), so skipping them saves most of the 2x path's cost.
        moved = (g - torch.eye(3, device=dev)).abs().amax(dim=(1, 2)) > 0
        if not bool(moved.any()):
            return images
        warp = _warp_2x if self.antialias else _warp
        if bool(moved.all()):
            return warp(images, g)
        index = torch.nonzero(moved).flatten()
        return images.index_copy(0, index, warp(images.index_select(0, index), g.index_select(0, index)))

    def _colour(self, images: torch.Tensor, p: float) -> torch.Tensor:
        n = images.shape[0]
        dev = images.device
        v = LUMA_AXIS.to(dev)
        vv = torch.outer(v, v)
        eye = torch.eye(3, device=dev)
        # Affine colour map x -> A x + b per sample, composed in the order the ops apply.
        a = eye.repeat(n, 1, 1)
        b = _gate(torch.randn(n, device=dev) * self.brightness_std, 0.0, self._prob("brightness", p))[:, None].expand(
            n, 3
        )
        contrast = _gate(torch.exp2(torch.randn(n, device=dev) * self.contrast_std), 1.0, self._prob("contrast", p))
        a, b = contrast[:, None, None] * a, contrast[:, None] * b
        lumaflip = _gate(torch.randint(0, 2, (n,), device=dev).float(), 0.0, self._prob("lumaflip", p))
        reflect = eye - 2 * vv * lumaflip[:, None, None]  # Householder reflection through the grey axis
        theta = _gate((torch.rand(n, device=dev) * 2 - 1) * math.pi * self.hue_max, 0.0, self._prob("hue", p))
        x, y, z = LUMA_AXIS.tolist()
        cross = torch.tensor([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]], device=dev)
        cos, sin = torch.cos(theta)[:, None, None], torch.sin(theta)[:, None, None]
        hue = cos * eye + sin * cross + (1 - cos) * vv  # Rodrigues rotation about the grey axis
        saturation = _gate(
            torch.exp2(torch.randn(n, device=dev) * self.saturation_std), 1.0, self._prob("saturation", p)
        )
        saturate = vv + (eye - vv) * saturation[:, None, None]
        for op in (reflect, hue, saturate):
            a, b = op @ a, (op @ b[:, :, None])[:, :, 0]
        flat = images.reshape(n, 3, -1)
        return (a.to(images.dtype) @ flat + b.to(images.dtype)[:, :, None]).reshape(images.shape)


class AdaController:
    """Moves p by sign(r_t - target) * batch * interval / (ada_kimg * 1000) every `interval` steps.

    With ada_kimg = 500 p can go from 0 to 1 in 500k real images; the paper's fine-tuning
    from FFHQ used 100. p stays within [0, 1] (an uncapped p makes augmentations leak).
    """

    def __init__(self, pipe: AugmentPipe, target: float, batch: int, interval: int = 4, ada_kimg: float = 500.0):
        self.pipe, self.target, self.batch, self.interval, self.ada_kimg = pipe, target, batch, interval, ada_kimg
        self.sign_sum = 0.0
        self.count = 0
        self.steps = 0

    def accumulate(self, real_logits: torch.Tensor) -> None:
        self.sign_sum += float(torch.sign(real_logits.detach().float()).sum())
        self.count += real_logits.numel()

    def step(self) -> float | None:
        """Call once per training step; returns r_t when p was adjusted."""
        self.steps += 1
        if self.steps % self.interval or not self.count:
            return None
        r_t = self.sign_sum / self.count
        adjust = math.copysign(1.0, r_t - self.target) if r_t != self.target else 0.0
        new_p = float(self.pipe.p) + adjust * self.batch * self.interval / (self.ada_kimg * 1000)
        self.pipe.p.fill_(min(max(new_p, 0.0), 1.0))
        self.sign_sum, self.count = 0.0, 0
        return r_t

    def state_dict(self) -> dict[str, float]:
        return {"sign_sum": self.sign_sum, "count": self.count, "steps": self.steps}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.sign_sum, self.count, self.steps = float(state["sign_sum"]), int(state["count"]), int(state["steps"])
