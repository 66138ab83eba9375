"""The paper's training augmentations as batched tensor ops on the training device.

The paper's code (albumentations 0.4.6, inherited from the SIIM-ISIC 1st-place solution) ran
one image at a time in CPU data-loader workers. Here the same pipeline runs on a whole
float batch (N x 3 x H x W, values in [0, 1], before the ImageNet normalisation) on the GPU or
CPU, every random parameter drawn per image from one `torch.Generator` whose state is saved in
the training checkpoint, so a resumed run draws the same augmentations.

| albumentations 0.4.6 op (p)                    | here                                                        |
|------------------------------------------------|-------------------------------------------------------------|
| Transpose (.5), VerticalFlip (.5), HorizontalFlip (.5) | `dihedral`: the same three, exact                   |
| RandomBrightness(0.2) (.75)                    | `brightness_contrast`: x + b, b ~ U(-0.2, 0.2) of the maximum, clipped (exact) |
| RandomContrast(0.2) (.75)                      | `brightness_contrast`: x * a, a ~ U(0.8, 1.2), clipped (0.4.6 scales without centring; exact) |
| OneOf(MotionBlur(5), MedianBlur(5), GaussianBlur(5), GaussNoise(var 5-30)) (.7) | `blur_or_noise`: one of four, equal odds: a random line kernel of 3 or 5 px; 5 x 5 median; Gaussian 3 or 5 px with OpenCV's default sigma; N(0, var/255^2) per pixel and channel (exact up to line rasterisation) |
| OneOf(OpticalDistortion(1.0), GridDistortion(5, 1.0), ElasticTransform(alpha 3)) (.7) | `distort`: one of three, equal odds, one `grid_sample` with reflected borders: radial k ~ U(-1, 1) with a centre shift of U(-0.05, 0.05); 5 column bands and 5 row bands, each stretched by 1 + U(-1, 1); ElasticTransform's random affine (corners moved by up to 50 px of ~448, alpha_affine=50). Its elastic field (alpha 3, sigma 50 px) moves pixels by well under 0.1 px and is left out |
| CLAHE(clip 4.0, 8 x 8 tiles) (.7)              | `clahe`: approximate: contrast-limited equalisation of the luma (not LAB L) in 8 x 8 tiles with OpenCV's clip limit and bilinear tile interpolation, clipped excess spread evenly over the bins, the luma change added to R, G and B |
| HueSaturationValue(10, 20, 10) (.5)            | `hue_saturation_value`: hue shift U(-10, 10) of 180, saturation and value shifts U(-20, 20) and U(-10, 10) of 255 (exact up to 8-bit rounding) |
| ShiftScaleRotate(0.1, 0.1, 15, black border) (.85) | `shift_scale_rotate`: the same affine, one `grid_sample`, zeros outside |
| Resize(448)                                    | none: the packed cache (and the loaded fakes) already have the training size |
| Cutout(1 hole, 0.375 x size, fill 0) (.7)      | `cutout`: one black square hole of side 0.375 x size around a random pixel, placed as 0.4.6 does (top-left corner clipped to 0 keeping the side, cut at the bottom/right border) |
| Normalize(ImageNet)                            | `syndface.classify.model.normalise`, after augmentation |

Modes (config `augment:`): `paper` is the table above in the paper's order; `light` keeps only
the horizontal flip, brightness/contrast and hue/saturation/value: cheap, and every output is
still an upright, aligned face. That is what a small network trained for a few epochs from random
weights learns from: on the demo cohort (test_efficientnet, 64 px, 8 epochs, the paper's class
weights) the test mean recall was 0.28 (5-fold ensemble) with the dihedral flips and
shift-scale-rotate, 0.43 (one fold) without transposes and vertical flips, and 0.77 (same fold)
without shift-scale-rotate as well. `none` trains on the images as they are.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

AUGMENT_MODES = ("paper", "light", "none")

# Probability of each op in the paper's pipeline (C:dataset.py:L60-85).
P_TRANSPOSE = P_VFLIP = P_HFLIP = 0.5
P_BRIGHTNESS = P_CONTRAST = 0.75
BRIGHTNESS_LIMIT = CONTRAST_LIMIT = 0.2
P_BLUR_OR_NOISE = 0.7
NOISE_VAR = (5.0, 30.0)  # in 8-bit units squared
P_DISTORT = 0.7
OPTICAL_DISTORT_LIMIT, OPTICAL_SHIFT_LIMIT = 1.0, 0.05
GRID_STEPS, GRID_DISTORT_LIMIT = 5, 1.0
ELASTIC_AFFINE_FRACTION = 50.0 / 448.0  # alpha_affine=50 px on the paper's ~448 px faces
P_CLAHE, CLAHE_CLIP, CLAHE_TILES = 0.7, 4.0, 8
P_HSV, HUE_SHIFT, SAT_SHIFT, VAL_SHIFT = 0.5, 10.0 / 180.0, 20.0 / 255.0, 10.0 / 255.0
P_SHIFT_SCALE_ROTATE, SHIFT_LIMIT, SCALE_LIMIT, ROTATE_LIMIT_DEG = 0.85, 0.1, 0.1, 15.0
P_CUTOUT, CUTOUT_FRACTION = 0.7, 0.375

BLUR_OR_NOISE = ("motion_blur", "median_blur", "gaussian_blur", "gauss_noise")
DISTORTIONS = ("optical", "grid", "elastic_affine")


def _chance(n: int, p: float, gen: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=gen) < p


def _uniform(shape: int | tuple[int, ...], low: float, high: float, gen: torch.Generator) -> torch.Tensor:
    shape = (shape,) if isinstance(shape, int) else shape
    return low + (high - low) * torch.rand(shape, generator=gen)


def _choice(n: int, p_any: float, k: int, gen: torch.Generator) -> torch.Tensor:
    """Per image: -1 (no op, probability 1 - p_any) or one of k ops with equal odds (albumentations OneOf)."""
    which = torch.randint(k, (n,), generator=gen)
    return torch.where(_chance(n, p_any, gen), which, torch.full_like(which, -1))


def _per_image(mask: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return mask.to(x.device).view(-1, *([1] * (x.dim() - 1)))


def dihedral(x: torch.Tensor, transpose: torch.Tensor, vflip: torch.Tensor, hflip: torch.Tensor) -> torch.Tensor:
    """Transpose, then vertical flip, then horizontal flip, each where its per-image mask is set."""
    x = torch.where(_per_image(transpose, x), x.transpose(-1, -2), x)
    x = torch.where(_per_image(vflip, x), x.flip(-2), x)
    return torch.where(_per_image(hflip, x), x.flip(-1), x)


def brightness_contrast(x: torch.Tensor, beta: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """RandomBrightness (add beta x max) then RandomContrast (multiply by alpha), each clipped as on uint8."""
    x = (x + _per_image(beta, x).to(x.dtype)).clamp_(0.0, 1.0)
    return (x * _per_image(alpha, x).to(x.dtype)).clamp_(0.0, 1.0)


def motion_kernels(n: int, gen: torch.Generator) -> torch.Tensor:
    """n normalised 5 x 5 kernels, each a line between two random points of a 3 x 3 or 5 x 5 box."""
    size = torch.tensor([3, 5])[torch.randint(2, (n,), generator=gen)]
    start = (torch.rand(n, 2, generator=gen) * size[:, None]).floor()
    end = (torch.rand(n, 2, generator=gen) * size[:, None]).floor()
    # A single-point "line" would be no blur: move the end one step along y, as albumentations does.
    same = (start == end).all(1)
    end[same, 1] = (end[same, 1] + 1) % size[same]
    t = torch.linspace(0.0, 1.0, 9)
    points = (start[:, None, :] + t[None, :, None] * (end - start)[:, None, :]).round().long()
    offset = ((5 - size) // 2)[:, None, None]
    points = points + offset
    kernels = torch.zeros(n, 5, 5)
    rows = torch.arange(n)[:, None].expand(-1, t.numel())
    kernels[rows, points[..., 1], points[..., 0]] = 1.0
    return kernels / kernels.sum((1, 2), keepdim=True)


def gaussian_kernels(n: int, gen: torch.Generator) -> torch.Tensor:
    """n 5 x 5 Gaussian kernels of support 3 or 5 with OpenCV's sigma for that size."""
    size = torch.tensor([3.0, 5.0])[torch.randint(2, (n,), generator=gen)]
    sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8
    d = torch.arange(-2.0, 3.0)
    g = torch.exp(-(d[None, :] ** 2) / (2 * sigma[:, None] ** 2)) * (d[None, :].abs() <= (size[:, None] - 1) / 2)
    g = g / g.sum(1, keepdim=True)
    return g[:, :, None] * g[:, None, :]


def convolve_per_image(x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Each image convolved with its own 5 x 5 kernel (all channels), borders reflected as in OpenCV."""
    n, c, h, w = x.shape
    weight = kernels.to(x.device, x.dtype).repeat_interleave(c, 0)[:, None]
    padded = F.pad(x.reshape(1, n * c, h, w), (2, 2, 2, 2), mode="reflect")
    return F.conv2d(padded, weight, groups=n * c).view(n, c, h, w)


def _batcher_pairs(n: int) -> list[tuple[int, int]]:
    """Comparators of Batcher's odd-even merge sort for the next power of two >= n, those touching
    wires >= n dropped (they would compare against +inf padding and never swap)."""
    size = 1 << (n - 1).bit_length()
    pairs = []
    p = 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p) and i + j + k < n:
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return pairs


def _median_network(n: int) -> list[tuple[int, int]]:
    """The comparators of the n-wire sorting network that the middle output depends on."""
    needed, kept = {n // 2}, []
    for i, j in reversed(_batcher_pairs(n)):
        if i in needed or j in needed:
            needed |= {i, j}
            kept.append((i, j))
    return kept[::-1]


MEDIAN_25 = _median_network(25)


def median_blur(x: torch.Tensor) -> torch.Tensor:
    """Exact 5 x 5 median filter with reflected borders, as a min/max sorting network over the 25
    shifted copies of the image: elementwise ops only, so it is fast on CPU and GPU alike."""
    h, w = x.shape[-2:]
    padded = F.pad(x, (2, 2, 2, 2), mode="reflect")
    wires = [padded[..., dy : dy + h, dx : dx + w] for dy in range(5) for dx in range(5)]
    for i, j in MEDIAN_25:
        wires[i], wires[j] = torch.minimum(wires[i], wires[j]), torch.maximum(wires[i], wires[j])
    return wires[12].contiguous()


def blur_or_noise(x: torch.Tensor, which: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Apply op `which[i]` (index into BLUR_OR_NOISE, -1 = none) to image i."""
    n = x.shape[0]
    motion, gaussian = motion_kernels(n, gen), gaussian_kernels(n, gen)
    noise_std = _uniform(n, *NOISE_VAR, gen).sqrt() / 255.0
    noise_seed = int(torch.randint(2**62, (1,), generator=gen))
    out = x.clone()
    for op, kernels in (("motion_blur", motion), ("gaussian_blur", gaussian)):
        idx = (which == BLUR_OR_NOISE.index(op)).nonzero().flatten()
        if len(idx):
            out[idx.to(x.device)] = convolve_per_image(x[idx.to(x.device)], kernels[idx])
    idx = (which == BLUR_OR_NOISE.index("median_blur")).nonzero().flatten().to(x.device)
    if len(idx):
        out[idx] = median_blur(x[idx])
    idx = (which == BLUR_OR_NOISE.index("gauss_noise")).nonzero().flatten()
    if len(idx):
        # Noise is drawn on the device from a seed the CPU generator chose: reproducible, no host copy.
        device_gen = torch.Generator(device=x.device).manual_seed(noise_seed)
        noise = torch.randn((len(idx), *x.shape[1:]), generator=device_gen, device=x.device, dtype=x.dtype)
        std = noise_std[idx].to(x.device, x.dtype).view(-1, 1, 1, 1)
        out[idx.to(x.device)] = (x[idx.to(x.device)] + noise * std).clamp_(0.0, 1.0)
    return out


def _base_grid(n: int, h: int, w: int, device: torch.device) -> torch.Tensor:
    """Output pixel centres in grid_sample's normalised coordinates (align_corners=False): N x H x W x 2 (x, y)."""
    ys = (torch.arange(h, device=device) + 0.5) / h * 2 - 1
    xs = (torch.arange(w, device=device) + 0.5) / w * 2 - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], -1).expand(n, h, w, 2)


# Grid builders: per-image parameters (already on the images' device) -> N x H x W x 2 sampling grids
# mapping every output pixel to its source. Parameters are drawn on the CPU (small, checkpointed
# generator); grids are built where the images are, so no full-size tensor crosses to the GPU.


def optical_grids(k: torch.Tensor, shift: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """OpenCV radial distortion with k1 = k2 = k, focal length = image side, centre shifted by `shift` (of the side)."""
    shift = shift.view(-1, 1, 1, 2)
    centred = _base_grid(len(k), h, w, k.device) / 2 - shift  # (pixel - centre) / side
    r2 = (centred**2).sum(-1, keepdim=True)
    k = k.view(-1, 1, 1, 1)
    return 2 * (centred * (1 + k * r2 + k * r2**2) + shift)


def _grid_axis(steps: torch.Tensor, length: int) -> torch.Tensor:
    """Source coordinate (normalised) of every output position along one axis of GridDistortion:
    output band i of GRID_STEPS equal bands samples a source band steps[i] times as long."""
    starts = torch.cat([torch.zeros_like(steps[:, :1]), steps.cumsum(1)[:, :-1]], 1) / GRID_STEPS
    pos = (torch.arange(length, device=steps.device, dtype=steps.dtype) + 0.5) / length
    cell = (pos * GRID_STEPS).floor().long().clamp(max=GRID_STEPS - 1)
    within = pos - cell / GRID_STEPS
    return (starts[:, cell] + within[None, :] * steps[:, cell]) * 2 - 1


def grid_distortion_grids(steps_x: torch.Tensor, steps_y: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """GridDistortion(num_steps=5): column and row bands stretched by the per-image steps (1 + U(-1, 1))."""
    n = len(steps_x)
    gx = _grid_axis(steps_x, w)[:, None, :].expand(n, h, w)
    gy = _grid_axis(steps_y, h)[:, :, None].expand(n, h, w)
    return torch.stack([gx, gy], -1)


def _affine_grids(inverse: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Apply N x 2 x 3 output->source affines (normalised coordinates) to the pixel grid."""
    base = _base_grid(inverse.shape[0], h, w, inverse.device)
    return base @ inverse[:, None, :, :2].transpose(-1, -2) + inverse[:, None, None, :, 2]


def elastic_affine_grids(jitter: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """ElasticTransform's random affine: three points of a centred square (half-side 2/3 of the
    half-image) moved by `jitter`; the output samples the source through the inverse point map."""
    s = 2.0 / 3.0
    src = torch.tensor([[s, s], [s, -s], [-s, -s]], device=jitter.device, dtype=jitter.dtype).expand_as(jitter)
    dst = src + jitter
    # Solve [dst 1] M = src for the output->source map M (3 x 2), exactly determined by 3 points.
    inverse = torch.linalg.solve(torch.cat([dst, torch.ones_like(dst[..., :1])], -1), src).transpose(-1, -2)
    return _affine_grids(inverse, h, w)


def distort(x: torch.Tensor, which: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Apply distortion `which[i]` (index into DISTORTIONS, -1 = none) to image i; borders reflected."""
    n, _, h, w = x.shape
    params = {
        "optical": (
            _uniform(n, -OPTICAL_DISTORT_LIMIT, OPTICAL_DISTORT_LIMIT, gen),
            _uniform((n, 2), -OPTICAL_SHIFT_LIMIT, OPTICAL_SHIFT_LIMIT, gen),
        ),
        "grid": tuple(1 + _uniform((n, GRID_STEPS), -GRID_DISTORT_LIMIT, GRID_DISTORT_LIMIT, gen) for _ in "xy"),
        "elastic_affine": (_uniform((n, 3, 2), -2 * ELASTIC_AFFINE_FRACTION, 2 * ELASTIC_AFFINE_FRACTION, gen),),
    }
    builders = {"optical": optical_grids, "grid": grid_distortion_grids, "elastic_affine": elastic_affine_grids}
    out = x
    for op, name in enumerate(DISTORTIONS):
        idx = (which == op).nonzero().flatten()
        if not len(idx):
            continue
        grid = builders[name](*(p[idx].to(x.device, x.dtype) for p in params[name]), h, w)
        out = out.clone() if out is x else out
        dev_idx = idx.to(x.device)
        out[dev_idx] = F.grid_sample(x[dev_idx], grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return out


def clahe(x: torch.Tensor, clip_limit: float = CLAHE_CLIP, tiles: int = CLAHE_TILES) -> torch.Tensor:
    """Approximate OpenCV CLAHE on the luma of every image; the luma change is added to R, G and B."""
    n, _, h, w = x.shape
    luma = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    level = (luma * 255).round().long().clamp_(0, 255)
    # Pad (reflected) to whole tiles for the histograms, as OpenCV does for sizes not divisible by 8.
    ph, pw = -h % tiles, -w % tiles
    padded = F.pad(level[:, None].float(), (0, pw, 0, ph), mode="reflect")[:, 0].long() if ph or pw else level
    th, tw = padded.shape[1] // tiles, padded.shape[2] // tiles
    tile_y = (torch.arange(padded.shape[1], device=x.device) // th)[None, :, None]
    tile_x = (torch.arange(padded.shape[2], device=x.device) // tw)[None, None, :]
    image = torch.arange(n, device=x.device)[:, None, None]
    bins = ((image * tiles + tile_y) * tiles + tile_x) * 256 + padded
    hist = torch.bincount(bins.flatten(), minlength=n * tiles * tiles * 256).view(n, tiles, tiles, 256).float()
    limit = max(math.floor(clip_limit * th * tw / 256), 1)
    excess = (hist - limit).clamp_(min=0).sum(-1, keepdim=True)
    hist = hist.clamp_(max=limit) + excess / 256
    lut = (hist.cumsum(-1) * (255.0 / (th * tw))).round_().clamp_(0, 255).div_(255).flatten()

    def tile_coords(length: int, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        f = torch.arange(length, device=x.device, dtype=x.dtype) / size - 0.5
        low = f.floor()
        return low.long().clamp(0, tiles - 1), (low.long() + 1).clamp(0, tiles - 1), f - low

    y1, y2, fy = tile_coords(h, th)
    x1, x2, fx = tile_coords(w, tw)

    def lookup(ty: torch.Tensor, tx: torch.Tensor) -> torch.Tensor:
        return lut[((image * tiles + ty[None, :, None]) * tiles + tx[None, None, :]) * 256 + level]

    fy, fx = fy[None, :, None], fx[None, None, :]
    top = (1 - fx) * lookup(y1, x1) + fx * lookup(y1, x2)
    bottom = (1 - fx) * lookup(y2, x1) + fx * lookup(y2, x2)
    equalised = (1 - fy) * top + fy * bottom
    return (x + (equalised - luma)[:, None]).clamp_(0.0, 1.0)


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """N x 3 x H x W RGB in [0, 1] -> HSV with hue in [0, 1) turns."""
    r, g, b = x.unbind(1)
    value, argmax = x.max(1)
    delta = value - x.min(1).values
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    hue = torch.stack([((g - b) / safe) % 6, (b - r) / safe + 2, (r - g) / safe + 4], 1).gather(1, argmax[:, None])[
        :, 0
    ]
    hue = torch.where(delta > 0, hue / 6, torch.zeros_like(hue))
    saturation = torch.where(
        value > 0, delta / torch.where(value > 0, value, torch.ones_like(value)), torch.zeros_like(value)
    )
    return torch.stack([hue, saturation, value], 1)


def hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    hue, saturation, value = hsv.unbind(1)
    k = (torch.tensor([5.0, 3.0, 1.0], device=hsv.device, dtype=hsv.dtype).view(1, 3, 1, 1) + hue[:, None] * 6) % 6
    weight = torch.minimum(k, 4 - k).clamp(0, 1)
    return value[:, None] - value[:, None] * saturation[:, None] * weight


def hue_saturation_value(x: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Shift hue (turns, wrapped), saturation and value (clipped) by the per-image N x 3 `shifts`."""
    hsv = rgb_to_hsv(x)
    s = shifts.to(x.device, x.dtype)[:, :, None, None]
    hue = (hsv[:, 0] + s[:, 0]) % 1.0
    rest = (hsv[:, 1:] + s[:, 1:]).clamp(0.0, 1.0)
    return hsv_to_rgb(torch.cat([hue[:, None], rest], 1)).clamp_(0.0, 1.0)


def shift_scale_rotate(
    x: torch.Tensor, apply: torch.Tensor, angle_deg: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor
) -> torch.Tensor:
    """ShiftScaleRotate where `apply`: rotate by angle_deg and scale about the centre, then shift by
    `shift` (N x 2, fraction of the side); black outside the source."""
    idx = apply.nonzero().flatten()
    if not len(idx):
        return x
    angle = torch.deg2rad(angle_deg[idx]).to(x.device, x.dtype)
    s = scale[idx].to(x.device, x.dtype)
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    rotation = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)  # output -> source
    offset = -(rotation @ (2 * shift[idx].to(x.device, x.dtype))[:, :, None])
    grid = _affine_grids(torch.cat([rotation, offset], -1), *x.shape[-2:])
    out = x.clone()
    dev_idx = idx.to(x.device)
    out[dev_idx] = F.grid_sample(x[dev_idx], grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out


def cutout(
    x: torch.Tensor, apply: torch.Tensor, centres: torch.Tensor, fraction: float = CUTOUT_FRACTION
) -> torch.Tensor:
    """One black square hole of side fraction x size from centre - side // 2 (clipped to 0, the side kept)
    to the bottom-right border at most, as albumentations 0.4.6's Cutout."""
    n, _, h, w = x.shape
    side_h, side_w = int(h * fraction), int(w * fraction)
    centres = centres.to(x.device)
    y1 = (centres[:, 0] - side_h // 2).clamp(0, h)[:, None, None]
    x1 = (centres[:, 1] - side_w // 2).clamp(0, w)[:, None, None]
    rows = torch.arange(h, device=x.device)[None, :, None]
    cols = torch.arange(w, device=x.device)[None, None, :]
    hole = (rows >= y1) & (rows < y1 + side_h) & (cols >= x1) & (cols < x1 + side_w) & apply.to(x.device)[:, None, None]
    return x.masked_fill(hole[:, None], 0.0)


class BatchAugment:
    """Random augmentation of float image batches (N x 3 x H x W in [0, 1]), seeded and resumable.

    Every call draws the same number of random values from `generator` whatever it applies, so
    the stream of augmentations depends only on the seed and the sequence of batch sizes.
    """

    def __init__(self, mode: str, generator: torch.Generator):
        if mode not in AUGMENT_MODES:
            raise ValueError(f"unknown augment mode {mode!r}; allowed: {', '.join(AUGMENT_MODES)}")
        if generator.device.type != "cpu":
            raise ValueError("the augmentation generator must be a CPU torch.Generator (its state is checkpointed)")
        self.mode = mode
        self.generator = generator

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "none":
            return x
        n, c, h, w = x.shape
        if h != w or c != 3:
            raise ValueError(f"augmentation expects square RGB batches N x 3 x S x S, got {tuple(x.shape)}")
        g = self.generator
        transpose, vflip, hflip = _chance(n, P_TRANSPOSE, g), _chance(n, P_VFLIP, g), _chance(n, P_HFLIP, g)
        if self.mode == "light":
            transpose, vflip = torch.zeros_like(transpose), torch.zeros_like(vflip)
        x = dihedral(x, transpose, vflip, hflip)
        beta = torch.where(
            _chance(n, P_BRIGHTNESS, g), _uniform(n, -BRIGHTNESS_LIMIT, BRIGHTNESS_LIMIT, g), torch.zeros(n)
        )
        alpha = torch.where(
            _chance(n, P_CONTRAST, g), _uniform(n, 1 - CONTRAST_LIMIT, 1 + CONTRAST_LIMIT, g), torch.ones(n)
        )
        x = brightness_contrast(x, beta, alpha)
        if self.mode == "paper":
            x = blur_or_noise(x, _choice(n, P_BLUR_OR_NOISE, len(BLUR_OR_NOISE), g), g)
            x = distort(x, _choice(n, P_DISTORT, len(DISTORTIONS), g), g)
            use_clahe = _chance(n, P_CLAHE, g)
            if use_clahe.any():
                idx = use_clahe.nonzero().flatten().to(x.device)
                x = x.clone()
                x[idx] = clahe(x[idx])
        use_hsv = _chance(n, P_HSV, g)
        shifts = torch.stack(
            [
                _uniform(n, -HUE_SHIFT, HUE_SHIFT, g),
                _uniform(n, -SAT_SHIFT, SAT_SHIFT, g),
                _uniform(n, -VAL_SHIFT, VAL_SHIFT, g),
            ],
            1,
        )
        if use_hsv.any():
            idx = use_hsv.nonzero().flatten()
            x = x.clone()
            x[idx.to(x.device)] = hue_saturation_value(x[idx.to(x.device)], shifts[idx])
        use_ssr = _chance(n, P_SHIFT_SCALE_ROTATE, g)
        angle = _uniform(n, -ROTATE_LIMIT_DEG, ROTATE_LIMIT_DEG, g)
        scale = _uniform(n, 1 - SCALE_LIMIT, 1 + SCALE_LIMIT, g)
        shift = _uniform((n, 2), -SHIFT_LIMIT, SHIFT_LIMIT, g)
        if self.mode == "paper":
            x = shift_scale_rotate(x, use_ssr, angle, scale, shift)
            centres = torch.stack([torch.randint(h, (n,), generator=g), torch.randint(w, (n,), generator=g)], 1)
            x = cutout(x, _chance(n, P_CUTOUT, g), centres)
        return x
