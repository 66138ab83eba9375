"""Conditional StyleGAN2 (Karras et al. 2020) with the paper's split disease/age label embedding.

The label is a 9-vector: disease weights (4, DISEASES order) then age weights (5, AGE_GROUPS
order). Duong et al. replace StyleGAN2-ADA's single L x 512 label embedding by two smaller
ones, disease 4 x 256 and age 5 x 256, concatenated to 512, so the disease embedding learns
from every age group and the age embedding from every image. The embedding is affine in the
label, so a blended or interpolated label is just a weighted label vector.

Half precision follows the official network: `use_reduced_precision` runs the blocks of the
`num_fp16_res` highest resolutions of G and D in fp16 (or bf16), everything else in fp32, with
activations clamped to +-conv_clamp (256) and the modulated convolutions' weights and styles
pre-normalised in fp16 so no intermediate sum overflows; parameters stay fp32.

Layer names follow the official StyleGAN2-ADA state dict (mapping.fc{i}, synthesis.b{res}.conv0,
torgb, affine, noise_strength, ...), so a pretrained FFHQ network maps onto these modules by
name (syndface.gan.ffhq). Every weight uses the equalised learning rate: stored N(0, 1), scaled
at run time by 1/sqrt(fan_in), so Adam treats all layers alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from syndface.taxonomy import AGE_GROUPS, DISEASES

N_DISEASES = len(DISEASES)
N_AGES = len(AGE_GROUPS)
LABEL_DIM = N_DISEASES + N_AGES
SQRT2 = math.sqrt(2.0)
NOISE_MODES = ("random", "const", "none")


@dataclass(frozen=True)
class GanArch:
    """Everything needed to rebuild the networks; stored in every network.pt.

    channel_base follows the PyTorch convention (channels at resolution r = channel_base / r,
    capped at channel_max): the paper's TF `fmap_base 8192` is channel_base 16384 here.
    """

    resolution: int = 256
    channel_base: int = 16384
    channel_max: int = 512
    z_dim: int = 512
    w_dim: int = 512
    mapping_layers: int = 8
    mbstd_group: int = 4
    conv_clamp: float | None = 256.0

    def __post_init__(self) -> None:
        log2 = math.log2(self.resolution)
        if self.resolution < 8 or log2 != int(log2):
            raise ValueError(f"GAN resolution must be a power of two >= 8, got {self.resolution}")
        if self.w_dim % 2:
            raise ValueError(f"w_dim must be even (the label embedding is split in two halves), got {self.w_dim}")
        if min(self.channel_base // self.resolution, self.channel_max) < 1:
            raise ValueError(
                f"channel_base {self.channel_base} gives no channels at {self.resolution} px; "
                f"use channel_base >= {self.resolution}"
            )

    def channels(self, resolution: int) -> int:
        return min(self.channel_base // resolution, self.channel_max)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale each row to unit mean square, so z and the label embedding weigh alike."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


_FIR_CACHE: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}


def fir_filter(device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The [1, 3, 3, 1] binomial low-pass (outer product, sum 1) used for every resampling."""
    key = (torch.device(device), dtype)
    if key not in _FIR_CACHE:
        f = torch.tensor([1.0, 3.0, 3.0, 1.0])
        _FIR_CACHE[key] = (torch.outer(f, f) / 64).to(device=key[0], dtype=dtype)
    return _FIR_CACHE[key]


def upfirdn2d(
    x: torch.Tensor, f: torch.Tensor, up: int = 1, down: int = 1, pad: tuple[int, int] = (0, 0), gain: float = 1.0
) -> torch.Tensor:
    """Zero-insert upsample by `up`, pad (before, after) on both axes, filter, keep every `down`-th pixel.

    The paddings used by the callers reproduce the official network's sampling grid, which
    pretrained weights depend on.
    """
    n, c, h, w = x.shape
    if up > 1:
        x = F.pad(x.reshape(n, c, h, 1, w, 1), [0, up - 1, 0, 0, 0, up - 1]).reshape(n, c, h * up, w * up)
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    kernel = (f.to(x.dtype) * gain).flip([0, 1])[None, None].expand(c, 1, *f.shape)
    x = F.conv2d(x, kernel, groups=c)
    return x[:, :, ::down, ::down] if down > 1 else x


def bias_act(
    x: torch.Tensor, bias: torch.Tensor | None, lrelu: bool, gain: float = 1.0, clamp: float | None = None
) -> torch.Tensor:
    """Add bias, leaky ReLU(0.2) scaled by sqrt(2) to keep the signal variance, extra gain, clamp to +-clamp*gain."""
    if bias is not None:
        x = x + bias.to(x.dtype).reshape(1, -1, *([1] * (x.ndim - 2)))
    if lrelu:
        x = F.leaky_relu(x, 0.2)
    scale = gain * SQRT2 if lrelu else gain
    if scale != 1:
        x = x * scale
    if clamp is not None:
        x = x.clamp(-clamp * gain, clamp * gain)
    return x


class FullyConnected(nn.Module):
    """Equalised-lr linear layer; `lr_multiplier` slows a layer down (0.01 in the mapping network)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        lrelu: bool = False,
        bias_init: float = 0.0,
        lr_multiplier: float = 1.0,
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init)))
        self.lrelu = lrelu
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, self.weight * self.weight_gain, self.bias * self.bias_gain)
        return bias_act(x, None, self.lrelu)


class SplitLabelEmbedding(nn.Module):
    """The paper's label embedding: [disease (4) x W_d (4 x dim/2) | age (5) x W_a (5 x dim/2)] + one shared bias."""

    def __init__(self, dim: int):
        super().__init__()
        self.disease = nn.Parameter(torch.randn(dim // 2, N_DISEASES))
        self.age = nn.Parameter(torch.randn(dim - dim // 2, N_AGES))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, label: torch.Tensor) -> torch.Tensor:
        if label.shape[-1] != LABEL_DIM:
            raise ValueError(
                f"labels must have {LABEL_DIM} columns (disease {N_DISEASES} + age {N_AGES}), got {label.shape[-1]}"
            )
        disease = F.linear(label[:, :N_DISEASES], self.disease / math.sqrt(N_DISEASES))
        age = F.linear(label[:, N_DISEASES:], self.age / math.sqrt(N_AGES))
        return torch.cat([disease, age], dim=1) + self.bias


class MappingNetwork(nn.Module):
    """z, label -> w: [normalise(z) | normalise(embed(label))] through `num_layers` slow FC layers."""

    def __init__(self, z_dim: int, w_dim: int, num_layers: int, lr_multiplier: float = 0.01, w_avg_beta: float = 0.995):
        super().__init__()
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta
        self.embed = SplitLabelEmbedding(w_dim)
        features = [z_dim + w_dim] + [w_dim] * num_layers
        for i in range(num_layers):
            setattr(
                self, f"fc{i}", FullyConnected(features[i], features[i + 1], lrelu=True, lr_multiplier=lr_multiplier)
            )
        # Running mean of w: the centre that truncation (psi < 1) pulls towards.
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def mapping_input(self, z: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        return torch.cat([normalize_2nd_moment(z), normalize_2nd_moment(self.embed(label))], dim=1)

    def forward(
        self, z: torch.Tensor, label: torch.Tensor, psi: float = 1.0, update_w_avg: bool = False
    ) -> torch.Tensor:
        x = self.mapping_input(z, label)
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        if update_w_avg:
            self.w_avg.copy_(x.detach().float().mean(0).lerp(self.w_avg, self.w_avg_beta))
        if psi != 1:
            x = self.w_avg.to(x.dtype).lerp(x, psi)
        return x


def modulated_conv2d(
    x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool, up: bool = False
) -> torch.Tensor:
    """StyleGAN2's modulated convolution, computed as scale inputs -> shared conv -> scale outputs.

    Equal to convolving each sample with weight * style (then normalising each output filter to
    unit norm when `demodulate`), but runs as one ordinary convolution for the whole batch.
    In fp16 (max 65504) the weights are first scaled per output filter to a largest entry of
    1/sqrt(fan_in) and the styles per sample to a largest entry of 1, as the official network
    does: demodulation divides both scales out again, and without them a 512-channel 3x3 sum of
    styled activations can overflow.
    """
    if demodulate and x.dtype == torch.float16:
        weight = weight * (1 / math.sqrt(weight[0].numel()) / weight.abs().amax(dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.abs().amax(dim=1, keepdim=True)
    x = x * styles.to(x.dtype)[:, :, None, None]
    if up:
        x = F.conv_transpose2d(x, weight.transpose(0, 1).to(x.dtype), stride=2)
        x = upfirdn2d(x, fir_filter(x.device, x.dtype), pad=(1, 1), gain=4)
    else:
        x = F.conv2d(x, weight.to(x.dtype), padding=weight.shape[-1] // 2)
    if demodulate:
        norms = styles.square() @ weight.square().sum(dim=[2, 3]).t()
        x = x * (norms + 1e-8).rsqrt().to(x.dtype)[:, :, None, None]
    return x


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (optionally upsampling 2x), per-pixel noise, bias, leaky ReLU."""

    def __init__(
        self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: bool, conv_clamp: float | None
    ):
        super().__init__()
        self.up = up
        self.conv_clamp = conv_clamp
        self.affine = FullyConnected(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))

    def forward(
        self, x: torch.Tensor, w: torch.Tensor, noise_mode: str, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        x = modulated_conv2d(x, self.weight, self.affine(w), demodulate=True, up=self.up)
        if noise is not None:  # given per image [N, 1, H, W] (seeded noise)
            x = x + noise.to(x.device, x.dtype) * self.noise_strength
        elif noise_mode == "random":
            n, _, h, w_ = x.shape
            x = x + torch.randn(n, 1, h, w_, device=x.device, dtype=x.dtype) * self.noise_strength
        elif noise_mode == "const":
            x = x + (self.noise_const * self.noise_strength).to(x.dtype)
        return bias_act(x, self.bias, lrelu=True, clamp=self.conv_clamp)


class ToRGB(nn.Module):
    """Modulated 1x1 conv to RGB, without demodulation (the output scale must be learnable)."""

    def __init__(self, in_channels: int, w_dim: int, conv_clamp: float | None):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnected(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(3, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(3))
        self.weight_gain = 1.0 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        x = modulated_conv2d(x, self.weight, self.affine(w) * self.weight_gain, demodulate=False)
        return bias_act(x, self.bias, lrelu=False, clamp=self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution: (learned 4x4 constant | upsampling conv0), conv1, toRGB added to the upsampled image (skip)."""

    compute_dtype = torch.float32  # set by use_reduced_precision; the image itself always accumulates in fp32

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, conv_clamp: float | None):
        super().__init__()
        self.is_first = in_channels == 0
        if self.is_first:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=True, conv_clamp=conv_clamp)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution, up=False, conv_clamp=conv_clamp)
        self.torgb = ToRGB(out_channels, w_dim, conv_clamp)
        self.num_conv = 1 if self.is_first else 2

    def forward(
        self,
        x: torch.Tensor | None,
        img: torch.Tensor | None,
        ws: torch.Tensor,
        noise_mode: str,
        noise: list[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        noise = noise or [None, None]
        if self.is_first:
            x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1).to(self.compute_dtype)
            x = self.conv1(x, ws[:, 0], noise_mode, noise[0])
        else:
            x = self.conv0(x.to(self.compute_dtype), ws[:, 0], noise_mode, noise[0])
            x = self.conv1(x, ws[:, 1], noise_mode, noise[1])
        rgb = self.torgb(x, ws[:, self.num_conv]).float()
        if img is not None:
            rgb = rgb + upfirdn2d(img, fir_filter(img.device, img.dtype), up=2, pad=(2, 1), gain=4)
        return x, rgb


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] -> image [N, 3, R, R] in about [-1, 1]."""

    def __init__(self, arch: GanArch):
        super().__init__()
        self.resolutions = [2**i for i in range(2, int(math.log2(arch.resolution)) + 1)]
        self.num_ws = 0
        for res in self.resolutions:
            in_channels = arch.channels(res // 2) if res > 4 else 0
            block = SynthesisBlock(in_channels, arch.channels(res), arch.w_dim, res, arch.conv_clamp)
            setattr(self, f"b{res}", block)
            self.num_ws += block.num_conv
        self.num_ws += 1  # the last block's toRGB

    def noise_shapes(self) -> list[int]:
        """Side of each noise input, in layer order (what `noise` must hold)."""
        return [res for res in self.resolutions for _ in range(getattr(self, f"b{res}").num_conv)]

    def forward(
        self, ws: torch.Tensor, noise_mode: str = "random", noise: list[torch.Tensor] | None = None
    ) -> torch.Tensor:
        """`noise`: one [N, 1, r, r] tensor per layer (`noise_shapes`), overriding `noise_mode`."""
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        if noise is not None and len(noise) != len(self.noise_shapes()):
            raise ValueError(f"noise must hold {len(self.noise_shapes())} tensors (one per layer), got {len(noise)}")
        x = img = None
        w_index = 0
        # Blocks overlap by one w: a block's toRGB uses the same w as the next block's conv0.
        for res in self.resolutions:
            block = getattr(self, f"b{res}")
            layer_noise = noise[w_index : w_index + block.num_conv] if noise is not None else None
            x, img = block(x, img, ws[:, w_index : w_index + block.num_conv + 1], noise_mode, layer_noise)
            w_index += block.num_conv
        return img


class Generator(nn.Module):
    def __init__(self, arch: GanArch):
        super().__init__()
        self.arch = arch
        self.mapping = MappingNetwork(arch.z_dim, arch.w_dim, arch.mapping_layers)
        self.synthesis = SynthesisNetwork(arch)
        self.num_ws = self.synthesis.num_ws

    def map(self, z: torch.Tensor, label: torch.Tensor, psi: float = 1.0, update_w_avg: bool = False) -> torch.Tensor:
        """w broadcast to every synthesis layer: [N, num_ws, w_dim]."""
        w = self.mapping(z, label, psi=psi, update_w_avg=update_w_avg)
        return w.unsqueeze(1).expand(-1, self.num_ws, -1)

    def forward(
        self,
        z: torch.Tensor,
        label: torch.Tensor,
        psi: float = 1.0,
        noise_mode: str = "random",
        noise: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        return self.synthesis(self.map(z, label, psi=psi), noise_mode=noise_mode, noise=noise)


def seeded_noise(G: Generator, seeds: Sequence[int]) -> list[torch.Tensor]:
    """Per-image noise inputs of every synthesis layer, image i's drawn from its own seed.

    The paper's fork rendered each fake with noise drawn from the image's seed (after z), not
    with the network's one constant field, so two fakes never share their fine texture unless
    they share the seed. Layer by layer, each image's noise is N(0, 1) from
    `torch.Generator().manual_seed(seed)`: reproducible whatever the batch it is rendered in."""
    shapes = G.synthesis.noise_shapes()
    per_image = []
    for seed in seeds:
        gen = torch.Generator().manual_seed(int(seed))
        per_image.append([torch.randn(1, 1, r, r, generator=gen) for r in shapes])
    return [torch.cat([image[i] for image in per_image]) for i in range(len(shapes))]


class Conv2dLayer(nn.Module):
    """Equalised-lr conv for D; `down` = 2 low-pass filters then strides, as StyleGAN2 does."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        lrelu: bool = True,
        bias: bool = True,
        down: bool = False,
        gain: float = 1.0,
        conv_clamp: float | None = None,
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.lrelu, self.down, self.gain, self.conv_clamp = lrelu, down, gain, conv_clamp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = (self.weight * self.weight_gain).to(x.dtype)
        k = w.shape[-1]
        if self.down and k == 1:
            x = F.conv2d(upfirdn2d(x, fir_filter(x.device, x.dtype), down=2, pad=(1, 1)), w)
        elif self.down:
            x = F.conv2d(upfirdn2d(x, fir_filter(x.device, x.dtype), pad=(2, 2)), w, stride=2)
        else:
            x = F.conv2d(x, w, padding=k // 2)
        return bias_act(x, self.bias, self.lrelu, gain=self.gain, clamp=self.conv_clamp)


class DiscriminatorBlock(nn.Module):
    """Residual block at one resolution: conv0, downsampling conv1, plus a 1x1 downsampling skip (sum scaled by sqrt(.5))."""

    compute_dtype = torch.float32  # set by use_reduced_precision

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, conv_clamp: float | None):
        super().__init__()
        if in_channels == 0:
            self.fromrgb = Conv2dLayer(3, tmp_channels, 1, conv_clamp=conv_clamp)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, 3, conv_clamp=conv_clamp)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, 3, down=True, gain=math.sqrt(0.5), conv_clamp=conv_clamp)
        self.skip = Conv2dLayer(tmp_channels, out_channels, 1, lrelu=False, bias=False, down=True, gain=math.sqrt(0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.compute_dtype)
        if hasattr(self, "fromrgb"):
            x = self.fromrgb(x)
        return self.skip(x) + self.conv1(self.conv0(x))


def minibatch_std(x: torch.Tensor, group_size: int) -> torch.Tensor:
    """Append one feature map: the std over groups of samples, averaged over channels and pixels."""
    n, c, h, w = x.shape
    g = min(group_size, n)
    if n % g:
        raise ValueError(
            f"batch {n} is not divisible by the minibatch-std group size {g}; use a batch that is a multiple of it"
        )
    y = x.float().reshape(g, n // g, c, h, w)
    y = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=[1, 2, 3])
    y = y.reshape(1, n // g, 1, 1, 1).expand(g, -1, 1, h, w).reshape(n, 1, h, w)
    return torch.cat([x, y.to(x.dtype)], dim=1)


class DiscriminatorEpilogue(nn.Module):
    """4x4 head: minibatch std, conv, FC, then projection onto the label embedding."""

    def __init__(self, channels: int, cmap_dim: int, mbstd_group: int, conv_clamp: float | None):
        super().__init__()
        self.mbstd_group = mbstd_group
        self.conv = Conv2dLayer(channels + 1, channels, 3, conv_clamp=conv_clamp)
        self.fc = FullyConnected(channels * 16, channels, lrelu=True)
        self.out = FullyConnected(channels, cmap_dim)

    def forward(self, x: torch.Tensor, cmap: torch.Tensor) -> torch.Tensor:
        x = self.conv(minibatch_std(x, self.mbstd_group))
        x = self.out(self.fc(x.flatten(1)))
        return (x * cmap.to(x.dtype)).sum(dim=1) / math.sqrt(cmap.shape[1])


class Discriminator(nn.Module):
    """Resnet D; conditioning by projection onto normalise(split embedding(label)), as the paper's D."""

    def __init__(self, arch: GanArch):
        super().__init__()
        self.arch = arch
        self.resolutions = [2**i for i in range(int(math.log2(arch.resolution)), 2, -1)]
        for res in self.resolutions:
            in_channels = arch.channels(res) if res < arch.resolution else 0
            setattr(
                self,
                f"b{res}",
                DiscriminatorBlock(in_channels, arch.channels(res), arch.channels(res // 2), arch.conv_clamp),
            )
        self.embed = SplitLabelEmbedding(arch.w_dim)
        self.b4 = DiscriminatorEpilogue(arch.channels(4), arch.w_dim, arch.mbstd_group, arch.conv_clamp)

    def forward(self, img: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """Logits [N] (real > 0)."""
        x = img
        for res in self.resolutions:
            x = getattr(self, f"b{res}")(x)
        return self.b4(x.float(), normalize_2nd_moment(self.embed(label)))


def use_reduced_precision(net: Generator | Discriminator, dtype: torch.dtype, num_res: int = 4) -> list[int]:
    """Run the blocks of the `num_res` highest resolutions of `net` in `dtype` (fp16 or bf16), the
    others in fp32, as the official `num_fp16_res` (4: 32-256 px at 256); returns those resolutions.

    The mapping network, the 4-16 px blocks (512 channels: the widest sums, a small share of the
    compute), D's epilogue (minibatch std, the 8192-wide FC, the projection), the losses and the
    optimiser stay fp32. fp16 needs the activation clamp (conv_clamp) the official network uses
    with it. float32 (or num_res 0) restores full precision."""
    if dtype == torch.float16 and net.arch.conv_clamp is None and num_res > 0:
        raise ValueError(
            "fp16 blocks need conv_clamp (the official 256) to keep activations in range; set it or use fp32"
        )
    lowest = max(net.arch.resolution >> (num_res - 1), 8) if num_res > 0 else 2 * net.arch.resolution
    blocks = net.synthesis if isinstance(net, Generator) else net
    reduced = []
    for res in blocks.resolutions:
        block = getattr(blocks, f"b{res}")
        block.compute_dtype = dtype if res >= lowest else torch.float32
        if block.compute_dtype != torch.float32:
            reduced.append(res)
    return reduced


def label_vectors(diseases: list[str] | tuple[str, ...], age_groups: list[str] | tuple[str, ...]) -> torch.Tensor:
    """One-hot [disease | age] labels, [N, 9] float32."""
    if len(diseases) != len(age_groups):
        raise ValueError("diseases and age_groups must have the same length")
    label = torch.zeros(len(diseases), LABEL_DIM)
    label[torch.arange(len(diseases)), torch.tensor([DISEASES.index(d) for d in diseases], dtype=torch.long)] = 1
    label[
        torch.arange(len(diseases)),
        N_DISEASES + torch.tensor([AGE_GROUPS.index(a) for a in age_groups], dtype=torch.long),
    ] = 1
    return label


def build_networks(arch: GanArch) -> tuple[Generator, Discriminator]:
    return Generator(arch), Discriminator(arch)


def load_network(
    path: str, device: str | torch.device = "cpu", which: str = "G_ema"
) -> tuple[Generator, dict[str, Any]]:
    """Rebuild a trained generator from network.pt (its arch is stored there); returns (G in eval mode, checkpoint dict)."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if "arch" not in ckpt or which not in ckpt:
        raise ValueError(
            f"{path} is not a syndface GAN network file (no 'arch' / {which!r}); it is written by `syndface train-gan`"
        )
    G = Generator(GanArch(**ckpt["arch"]))
    G.load_state_dict(ckpt[which])
    return G.to(device).eval().requires_grad_(False), ckpt
