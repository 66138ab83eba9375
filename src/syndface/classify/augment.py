"""The paper's training augmentations as kornia ops on whole batches on the training device.

The paper's code (albumentations 0.4.6, inherited from the SIIM-ISIC 1st-place solution) ran
one uint8 image at a time in 8 CPU data-loader workers. Here the same pipeline runs on a float
batch (N x 3 x H x W in [0, 1], before the ImageNet normalisation) where the model is, every
random parameter drawn per image: no loader workers, and no CPU round trip for a GPU that
trains ~500 images/s at 448 px (notes/performance-facts.md). kornia has most ops; the seven it
lacks, or has in another form, are small subclasses of kornia's augmentation bases built on
kornia's own functions (CLAHE, colour conversions, lens distortion, remap, affine warp), and
`OneOf` picks per image (kornia's containers pick one op per batch).

| albumentations 0.4.6 op (p)                          | here                                                          |
|------------------------------------------------------|---------------------------------------------------------------|
| Transpose (.5)                                       | `RandomTranspose` (kornia has none)                           |
| VerticalFlip (.5), HorizontalFlip (.5)               | `K.RandomVerticalFlip`, `K.RandomHorizontalFlip`              |
| RandomBrightness(0.2) (.75)                          | `K.RandomBrightness((0.8, 1.2))`: x + U(-0.2, 0.2), clipped (0.4.6 adds beta x 255 on uint8) |
| RandomContrast(0.2) (.75)                            | `K.RandomContrast((0.8, 1.2))`: x * U(0.8, 1.2), clipped (0.4.6 scales without centring) |
| OneOf(MotionBlur(5), MedianBlur(5), GaussianBlur(5), GaussNoise(var 5-30)) (.7) | `OneOf` per image, equal odds; each blur picks a 3 or 5 px kernel with equal odds as 0.4.6's `blur_limit=5` does: `K.RandomMotionBlur` (a centred line at a random angle; 0.4.6 drew any segment of the box), `K.RandomMedianBlur`, `K.RandomGaussianBlur` with OpenCV's sigma for the size (0.8, 1.1); `RandomGaussNoise`: N(0, var/255^2), var ~ U(5, 30) per image (kornia's noise has one std), clipped |
| OneOf(OpticalDistortion(1.0), GridDistortion(5, 1.0), ElasticTransform(alpha 3)) (.7) | `OneOf` per image, equal odds, borders reflected (OpenCV's REFLECT_101): `RandomOpticalDistortion`: OpenCV radial model k1 = k2 = U(-1, 1), focal = width, centre (w/2, h/2) (0.4.6 rounds its centre shift of U(-0.05, 0.05) px to 0); `RandomGridDistortion`: 0.4.6's bands of side // 5 px each stretched by 1 + U(-1, 1); `RandomElasticAffine`: ElasticTransform's random affine (three points moved by up to 50 px of ~448). Its elastic field (alpha 3, sigma 50 px) moves pixels by well under 0.1 px and is left out |
| CLAHE(clip 4.0, 8 x 8 tiles) (.7)                    | `RandomLabClahe`: `kornia.enhance.equalize_clahe` on the L of LAB, as albumentations does for RGB (kornia's `RandomClahe` equalises each channel) |
| HueSaturationValue(10, 20, 10) (.5)                  | `RandomHueSaturationValue`: hue + U(-10, 10)/180 of a turn, saturation and value + U(-20, 20)/255 and U(-10, 10)/255, clipped (kornia's saturation is multiplicative) |
| ShiftScaleRotate(0.1, 0.1, 15, black border) (.85)   | `K.RandomAffine(15, translate 0.1, scale 0.9-1.1)`, zeros outside |
| Resize(448)                                          | none: the packed cache (and the loaded fakes) already have the training size |
| Cutout(1 hole, 0.375 x size, fill 0) (.7)            | `K.RandomErasing` of a black square of side round(0.375 x size), wholly inside the image (0.4.6 centred it on any pixel and cut it at the border) |
| Normalize(ImageNet)                                  | `syndface.classify.model.normalise`, after augmentation |

Modes (config `augment:`): `paper` is the table above in the paper's order; `light` keeps only
the horizontal flip, brightness/contrast and hue/saturation/value: cheap, and every output is
still an upright, aligned face. That is what a small network trained for a few epochs from random
weights learns from: on the demo cohort (test_efficientnet, 64 px, 8 epochs, the paper's class
weights, the earlier tensor re-implementation of this table) the test mean recall was 0.28 (5-fold
ensemble) with the dihedral flips and shift-scale-rotate, 0.43 (one fold) without transposes and
vertical flips, and 0.77 (same fold) without shift-scale-rotate as well. `none` trains on the
images as they are.

kornia draws from torch's global random streams. `BatchAugment` runs the pipeline inside
`torch.random.fork_rng` with the CPU stream set from its own `generator` (and the device's
stream seeded from it), then stores the advanced CPU stream back: the augmentations depend only
on the generator's state, which the training checkpoint saves, and nothing else's randomness
(dropout, data order) is touched.
"""

from __future__ import annotations

import math
from typing import Any

import kornia.augmentation as K
import torch
from kornia.color import hsv_to_rgb, lab_to_rgb, rgb_to_hsv, rgb_to_lab
from kornia.enhance import equalize_clahe
from kornia.geometry import create_meshgrid
from kornia.geometry.calibration import distort_points
from kornia.geometry.transform import remap, warp_affine

AUGMENT_MODES = ("paper", "light", "none")

# Parameters and probabilities of the paper's pipeline (C:dataset.py:L60-85).
P_TRANSPOSE = P_VFLIP = P_HFLIP = 0.5
P_BRIGHTNESS = P_CONTRAST = 0.75
BRIGHTNESS_LIMIT = CONTRAST_LIMIT = 0.2
P_BLUR_OR_NOISE = 0.7
BLUR_SIZES = (3, 5)  # blur_limit=5: an odd kernel size from 3 to 5
NOISE_VAR = (5.0, 30.0)  # in 8-bit units squared
P_DISTORT = 0.7
OPTICAL_DISTORT_LIMIT = 1.0
GRID_STEPS, GRID_DISTORT_LIMIT = 5, 1.0
ELASTIC_AFFINE_FRACTION = 50.0 / 448.0  # alpha_affine=50 px on the paper's ~448 px faces
P_CLAHE, CLAHE_CLIP, CLAHE_TILES = 0.7, 4.0, 8
P_HSV, HUE_SHIFT, SAT_SHIFT, VAL_SHIFT = 0.5, 10.0 / 180.0, 20.0 / 255.0, 10.0 / 255.0
P_SHIFT_SCALE_ROTATE, SHIFT_LIMIT, SCALE_LIMIT, ROTATE_LIMIT_DEG = 0.85, 0.1, 0.1, 15.0
P_CUTOUT, CUTOUT_FRACTION = 0.7, 0.375


def opencv_gaussian_sigma(size: int) -> float:
    """The sigma OpenCV's GaussianBlur takes for a kernel size when sigma is 0 (albumentations 0.4.6 passes 0)."""
    return 0.3 * ((size - 1) * 0.5 - 1) + 0.8


def _uniform(low: float, high: float, shape: tuple[int, ...]) -> torch.Tensor:
    """U(low, high) from torch's global CPU stream (the one `BatchAugment` sets), as kornia's own samplers draw."""
    return low + (high - low) * torch.rand(shape)


class OneOf(torch.nn.Module):
    """albumentations' OneOf, per image: with probability p an image gets exactly one of `ops` (equal
    odds), each applied with its own probability (1 here). kornia's `ImageSequential(random_apply=1)`
    would pick one op for the whole batch."""

    def __init__(self, *ops: torch.nn.Module, p: float):
        super().__init__()
        self.ops = torch.nn.ModuleList(ops)
        self.p = p

    def extra_repr(self) -> str:
        return f"p={self.p}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        apply = torch.rand(n) < self.p
        which = torch.randint(len(self.ops), (n,))
        out = x
        for i, op in enumerate(self.ops):
            idx = (apply & (which == i)).nonzero().flatten().to(x.device)
            if len(idx):
                out = out.clone() if out is x else out
                out[idx] = op(x[idx])
        return out


class RandomTranspose(K.GeometricAugmentationBase2D):
    """Swap rows and columns (albumentations' Transpose: a reflection about the main diagonal)."""

    def compute_transformation(self, input: torch.Tensor, params: dict, flags: dict) -> torch.Tensor:
        swap = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], device=input.device, dtype=input.dtype)
        return swap.expand(input.shape[0], 3, 3)

    def apply_transform(self, input: torch.Tensor, params: dict, flags: dict, transform: Any = None) -> torch.Tensor:
        return input.transpose(-1, -2)


class RandomGaussNoise(K.IntensityAugmentationBase2D):
    """albumentations 0.4.6 GaussNoise: per image a variance U(var_limit) in 8-bit units squared, noise
    drawn where the images are (the device's stream), the result clipped as on uint8."""

    def __init__(self, var_limit: tuple[float, float] = NOISE_VAR, p: float = 1.0):
        super().__init__(p=p)
        self.flags = {"var_limit": var_limit}

    def generate_parameters(self, batch_shape: tuple[int, ...]) -> dict[str, torch.Tensor]:
        return {"variance": _uniform(*self.flags["var_limit"], (batch_shape[0],))}

    def apply_transform(self, input: torch.Tensor, params: dict, flags: dict, transform: Any = None) -> torch.Tensor:
        std = params["variance"].to(input.device, input.dtype).sqrt().div(255.0).view(-1, 1, 1, 1)
        return (input + torch.randn_like(input) * std).clamp(0.0, 1.0)


class RandomOpticalDistortion(K.GeometricAugmentationBase2D):
    """albumentations 0.4.6 OpticalDistortion: OpenCV's radial model with k1 = k2 = U(-limit, limit),
    focal length = width, principal point (w/2, h/2); every output pixel samples the source at its
    distorted position (cv2.initUndistortRectifyMap + remap), borders reflected."""

    def __init__(self, distort_limit: float = OPTICAL_DISTORT_LIMIT, p: float = 1.0):
        super().__init__(p=p)
        self.flags = {"distort_limit": distort_limit}

    def generate_parameters(self, batch_shape: tuple[int, ...]) -> dict[str, torch.Tensor]:
        limit = self.flags["distort_limit"]
        return {"k": _uniform(-limit, limit, (batch_shape[0],))}

    def compute_transformation(self, input: torch.Tensor, params: dict, flags: dict) -> torch.Tensor:
        return self.identity_matrix(input).expand(input.shape[0], 3, 3)

    def apply_transform(self, input: torch.Tensor, params: dict, flags: dict, transform: Any = None) -> torch.Tensor:
        n, _, h, w = input.shape
        k = params["k"].to(input.device, input.dtype)
        camera = torch.tensor(
            [[w, 0.0, w / 2], [0.0, w, h / 2], [0.0, 0.0, 1.0]], device=input.device, dtype=input.dtype
        )
        coefficients = torch.stack([k, k, torch.zeros_like(k), torch.zeros_like(k), torch.zeros_like(k)], -1)
        pixels = create_meshgrid(h, w, False, input.device, input.dtype).reshape(-1, 2)
        source = distort_points(pixels, camera.expand(n, 3, 3), coefficients).view(n, h, w, 2)
        return remap(input, source[..., 0], source[..., 1], padding_mode="reflection", align_corners=True)


def grid_distortion_axis(steps: torch.Tensor, length: int, num_steps: int = GRID_STEPS) -> torch.Tensor:
    """Source pixel coordinate of every output position along one axis, as albumentations 0.4.6's
    grid_distortion: bands of length // num_steps px; band i maps linearly (np.linspace, both ends
    included) onto a source stretch of band x steps[i] px starting where the previous one ended; a
    band cut by the border ends exactly at the border. `steps`: N x (num_steps + 1)."""
    band = length // num_steps
    starts = torch.arange(0, length, band)
    sizes = (starts + band).clamp(max=length) - starts
    ends = (band * steps[:, : len(starts)]).cumsum(1)
    if sizes[-1] < band:
        ends[:, -1] = length
    begins = torch.cat([torch.zeros_like(ends[:, :1]), ends[:, :-1]], 1)
    pos = torch.arange(length)
    which = pos // band
    fraction = (pos - starts[which]) / (sizes[which] - 1).clamp(min=1)
    return begins[:, which] + (ends - begins)[:, which] * fraction


class RandomGridDistortion(K.GeometricAugmentationBase2D):
    """albumentations 0.4.6 GridDistortion(num_steps, distort_limit): column and row bands stretched
    by 1 + U(-limit, limit) each, borders reflected."""

    def __init__(self, num_steps: int = GRID_STEPS, distort_limit: float = GRID_DISTORT_LIMIT, p: float = 1.0):
        super().__init__(p=p)
        self.flags = {"num_steps": num_steps, "distort_limit": distort_limit}

    def generate_parameters(self, batch_shape: tuple[int, ...]) -> dict[str, torch.Tensor]:
        shape, limit = (batch_shape[0], self.flags["num_steps"] + 1), self.flags["distort_limit"]
        return {axis: 1 + _uniform(-limit, limit, shape) for axis in ("steps_x", "steps_y")}

    def compute_transformation(self, input: torch.Tensor, params: dict, flags: dict) -> torch.Tensor:
        return self.identity_matrix(input).expand(input.shape[0], 3, 3)

    def apply_transform(self, input: torch.Tensor, params: dict, flags: dict, transform: Any = None) -> torch.Tensor:
        n, _, h, w = input.shape
        xs = grid_distortion_axis(params["steps_x"], w, flags["num_steps"]).to(input.device, input.dtype)
        ys = grid_distortion_axis(params["steps_y"], h, flags["num_steps"]).to(input.device, input.dtype)
        map_x, map_y = xs[:, None, :].expand(n, h, w), ys[:, :, None].expand(n, h, w)
        return remap(input, map_x, map_y, padding_mode="reflection", align_corners=True)


class RandomElasticAffine(K.GeometricAugmentationBase2D):
    """The random affine of albumentations 0.4.6 ElasticTransform: the corners (c + s, c + s),
    (c + s, c - s), (c - s, c - s) of a square about the centre c (s = side // 3) each moved by
    U(-alpha_affine, alpha_affine) px, the image warped by the affine map between them, borders
    reflected. alpha_affine is a fraction of the side, so the warp does not depend on the resolution."""

    def __init__(self, alpha_affine_fraction: float = ELASTIC_AFFINE_FRACTION, p: float = 1.0):
        super().__init__(p=p)
        self.flags = {"alpha_affine_fraction": alpha_affine_fraction}

    def generate_parameters(self, batch_shape: tuple[int, ...]) -> dict[str, torch.Tensor]:
        limit = self.flags["alpha_affine_fraction"] * min(batch_shape[-2:])
        return {"jitter": _uniform(-limit, limit, (batch_shape[0], 3, 2))}

    def compute_transformation(self, input: torch.Tensor, params: dict, flags: dict) -> torch.Tensor:
        h, w = input.shape[-2:]
        c, s = torch.tensor([h // 2, w // 2], dtype=input.dtype), min(h, w) // 3
        src = torch.stack([c + s, c + torch.tensor([s, -s]), c - s]).to(input.device, input.dtype)
        dst = src + params["jitter"].to(input.device, input.dtype)
        # [src 1] A = dst, exactly determined by the three points; A is the source -> output map (3 x 2).
        a = torch.linalg.solve(torch.cat([src, torch.ones_like(src[..., :1])], -1), dst)
        bottom = torch.tensor([0.0, 0.0, 1.0], device=input.device, dtype=input.dtype).expand(len(dst), 1, 3)
        return torch.cat([a.transpose(-1, -2), bottom], -2)

    def apply_transform(self, input: torch.Tensor, params: dict, flags: dict, transform: Any = None) -> torch.Tensor:
        return warp_affine(input, transform[:, :2], input.shape[-2:], padding_mode="reflection", align_corners=True)


class RandomLabClahe(K.IntensityAugmentationBase2D):
    """albumentations' CLAHE on an RGB image: contrast-limited adaptive equalisation of the L channel
    of LAB (OpenCV's clip limit and tiles, kornia's `equalize_clahe`), colour kept."""

    def __init__(self, clip_limit: float = CLAHE_CLIP, tiles: int = CLAHE_TILES, p: float = 1.0):
        super().__init__(p=p)
        self.flags = {"clip_limit": clip_limit, "tiles": tiles}

    def apply_transform(self, input: torch.Tensor, params: dict, flags: dict, transform: Any = None) -> torch.Tensor:
        lab = rgb_to_lab(input.clamp(0.0, 1.0))
        tiles = (flags["tiles"], flags["tiles"])
        lightness = equalize_clahe((lab[:, :1] / 100).clamp(0.0, 1.0), float(flags["clip_limit"]), tiles)
        return lab_to_rgb(torch.cat([lightness * 100, lab[:, 1:]], 1), clip=True)


class RandomHueSaturationValue(K.IntensityAugmentationBase2D):
    """albumentations' HueSaturationValue: additive shifts of hue (turns, wrapped), saturation and
    value (clipped), each drawn per image from U(-limit, limit)."""

    def __init__(self, hue_shift: float = HUE_SHIFT, sat_shift: float = SAT_SHIFT, val_shift: float = VAL_SHIFT, p=1.0):
        super().__init__(p=p)
        self.flags = {"hue": hue_shift, "saturation": sat_shift, "value": val_shift}

    def generate_parameters(self, batch_shape: tuple[int, ...]) -> dict[str, torch.Tensor]:
        return {name: _uniform(-limit, limit, (batch_shape[0],)) for name, limit in self.flags.items()}

    def apply_transform(self, input: torch.Tensor, params: dict, flags: dict, transform: Any = None) -> torch.Tensor:
        hue, saturation, value = rgb_to_hsv(input.clamp(0.0, 1.0)).unbind(1)

        def shift(name: str) -> torch.Tensor:
            return params[name].to(input.device, input.dtype).view(-1, 1, 1)

        hue = (hue + 2 * math.pi * shift("hue")) % (2 * math.pi)
        saturation = (saturation + shift("saturation")).clamp(0.0, 1.0)
        value = (value + shift("value")).clamp(0.0, 1.0)
        return hsv_to_rgb(torch.stack([hue, saturation, value], 1)).clamp(0.0, 1.0)


def _blur(size: int) -> dict[str, torch.nn.Module]:
    sigma = opencv_gaussian_sigma(size)
    return {
        "motion": K.RandomMotionBlur(size, angle=90.0, direction=0.0, border_type="reflect", p=1.0),
        "median": K.RandomMedianBlur((size, size), p=1.0),
        "gaussian": K.RandomGaussianBlur((size, size), (sigma, sigma), p=1.0),
    }


def paper_pipeline() -> torch.nn.Sequential:
    """The paper's pipeline in its order (module docstring's table)."""
    blurs = [_blur(size) for size in BLUR_SIZES]
    return torch.nn.Sequential(
        RandomTranspose(p=P_TRANSPOSE),
        K.RandomVerticalFlip(p=P_VFLIP),
        K.RandomHorizontalFlip(p=P_HFLIP),
        K.RandomBrightness((1 - BRIGHTNESS_LIMIT, 1 + BRIGHTNESS_LIMIT), clip_output=True, p=P_BRIGHTNESS),
        K.RandomContrast((1 - CONTRAST_LIMIT, 1 + CONTRAST_LIMIT), clip_output=True, p=P_CONTRAST),
        OneOf(
            *(OneOf(*(blur[kind] for blur in blurs), p=1.0) for kind in ("motion", "median", "gaussian")),
            RandomGaussNoise(NOISE_VAR),
            p=P_BLUR_OR_NOISE,
        ),
        OneOf(RandomOpticalDistortion(), RandomGridDistortion(), RandomElasticAffine(), p=P_DISTORT),
        RandomLabClahe(p=P_CLAHE),
        RandomHueSaturationValue(p=P_HSV),
        K.RandomAffine(
            ROTATE_LIMIT_DEG,
            translate=(SHIFT_LIMIT, SHIFT_LIMIT),
            scale=(1 - SCALE_LIMIT, 1 + SCALE_LIMIT),
            padding_mode="zeros",
            p=P_SHIFT_SCALE_ROTATE,
        ),
        K.RandomErasing(scale=(CUTOUT_FRACTION**2, CUTOUT_FRACTION**2), ratio=(1.0, 1.0), value=0.0, p=P_CUTOUT),
    )


def light_pipeline() -> torch.nn.Sequential:
    """Horizontal flip, brightness/contrast and hue/saturation/value: every output an upright, aligned face."""
    return torch.nn.Sequential(
        K.RandomHorizontalFlip(p=P_HFLIP),
        K.RandomBrightness((1 - BRIGHTNESS_LIMIT, 1 + BRIGHTNESS_LIMIT), clip_output=True, p=P_BRIGHTNESS),
        K.RandomContrast((1 - CONTRAST_LIMIT, 1 + CONTRAST_LIMIT), clip_output=True, p=P_CONTRAST),
        RandomHueSaturationValue(p=P_HSV),
    )


class BatchAugment:
    """Random augmentation of float image batches (N x 3 x H x W in [0, 1]), seeded and resumable:
    the output depends only on the input and the state of `generator` (a CPU torch.Generator that
    the checkpoint saves), which every call advances."""

    def __init__(self, mode: str, generator: torch.Generator):
        if mode not in AUGMENT_MODES:
            raise ValueError(f"unknown augment mode {mode!r}; allowed: {', '.join(AUGMENT_MODES)}")
        if generator.device.type != "cpu":
            raise ValueError("the augmentation generator must be a CPU torch.Generator (its state is checkpointed)")
        self.mode = mode
        self.generator = generator
        self.pipeline = {"paper": paper_pipeline, "light": light_pipeline, "none": torch.nn.Sequential}[mode]()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "none":
            return x
        n, c, h, w = x.shape
        if h != w or c != 3:
            raise ValueError(f"augmentation expects square RGB batches N x 3 x S x S, got {tuple(x.shape)}")
        devices = [x.device] if x.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            torch.set_rng_state(self.generator.get_state())
            if devices:  # noise drawn on the GPU: its stream seeded from ours, so the state above is all there is
                with torch.cuda.device(x.device):
                    torch.cuda.manual_seed(int(torch.randint(2**63 - 1, (1,))))
            out = self.pipeline(x)
            self.generator.set_state(torch.get_rng_state())
        return out
