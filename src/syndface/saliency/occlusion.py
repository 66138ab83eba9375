"""Exact occlusion saliency (captum's `Occlusion`), batched for speed.

captum slides a `(3, w, w)` window with stride `(3, s, s)` over the image, sets the covered
pixels to the baseline, and attributes the drop of the target logit to every covered pixel,
averaged over the windows that cover it. Per axis it places `ceil((size - w) / s) + 1` windows
starting at `0, s, 2s, ...`; the last one may run past the border and is clipped there.

Every window is a product of a row band and a column band, `mask[r, c] = R[r] (x) C[c]`, so
- all occluded copies of a block of images are built in one broadcast per forward batch, and
- the map is two small matmuls: `map = R^T D C / (R^T 1 (x) C^T 1)`, with `D[r, c]` the target
  logit drop when window (r, c) is occluded.
There is no per-window Python work; the cost is the forward passes themselves. In fp32 (the
default; on a GPU with TF32 off) the maps equal captum's. bf16 or fp16 autocast (with
channels_last) is the opt-in fast mode: about 2x on an H200, but a logit drop is a difference of
two nearly equal logits, so half-precision rounding shows in the maps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from syndface.runtime import Precision, resolve_precision


def window_bands(
    size: int, window: int, stride: int, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """The 0/1 bands of captum's windows along one axis: `[n_windows, size]`, last one clipped at the border."""
    if not 1 <= window <= size:
        raise ValueError(f"occlusion window {window} must be between 1 and the image size {size}")
    if stride < 1 or (stride > window and window < size):
        raise ValueError(
            f"occlusion stride {stride} must be between 1 and the window {window}, "
            "or some pixels would never be occluded (captum refuses this too)"
        )
    n_windows = math.ceil((size - window) / stride) + 1
    starts = torch.arange(n_windows, device=device).unsqueeze(1) * stride
    pixels = torch.arange(size, device=device).unsqueeze(0)
    return ((pixels >= starts) & (pixels < starts + window)).to(dtype)


def prepare_model(model: nn.Module, device: torch.device | str, channels_last: bool) -> nn.Module:
    """Put a model on the device in eval mode, in the memory layout its inputs will have."""
    model = model.to(device).eval()
    return model.to(memory_format=torch.channels_last) if channels_last else model


def _chunks(n_jobs: int, batch: int, fixed_shape: bool) -> list[torch.Tensor]:
    """Job indices per forward pass. With `fixed_shape`, equal-sized chunks (the last padded with
    repeats of its final job) so cuDNN autotunes one shape only."""
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    n_chunks = math.ceil(n_jobs / batch)
    if not fixed_shape:
        return list(torch.arange(n_jobs).split(batch))
    size = math.ceil(n_jobs / n_chunks)
    padded = torch.arange(n_chunks * size).clamp_(max=n_jobs - 1)
    return list(padded.split(size))


@torch.inference_mode()
def occlusion_maps(
    models: Sequence[nn.Module],
    images: torch.Tensor,
    targets: torch.Tensor | Sequence[int],
    window: int,
    stride: int,
    baseline: float = 0.0,
    batch: int = 256,
    precision: str | Precision = "fp32",
    channels_last: bool = False,
    fixed_shape: bool = False,
) -> torch.Tensor:
    """Occlusion maps of every model for a block of images: `[n_models, n_images, H, W]`.

    `images` are model inputs `[N, C, H, W]` (already normalised; their dtype and device are
    used throughout); `targets` the class whose logit is explained, one per image. Equals
    `captum.attr.Occlusion(model).attribute(images, sliding_window_shapes=(C, window, window),
    strides=(C, stride, stride), baselines=baseline, target=targets)` for each model (all
    channels of a pixel carry the same value, so one plane is returned). `precision`: fp32, or
    the opt-in fp16 / bf16 / auto (`syndface.runtime.resolve_precision`; e.g. bf16 on a P100 is
    an error).
    Each batch of occluded copies is built once and fed to every model.
    """
    if images.ndim != 4:
        raise ValueError(f"images must be [N, C, H, W], got shape {tuple(images.shape)}")
    n_images, _, height, width = images.shape
    device = images.device
    if not isinstance(precision, Precision):
        precision = resolve_precision(precision, device)
    targets = (
        targets.to(device, torch.long)
        if isinstance(targets, torch.Tensor)
        else torch.tensor(np.asarray(targets), dtype=torch.long, device=device)
    )
    if targets.shape != (n_images,):
        raise ValueError(f"need one target per image: {n_images} images, targets of shape {tuple(targets.shape)}")
    rows = window_bands(height, window, stride, images.dtype, device)
    cols = window_bands(width, window, stride, images.dtype, device)
    # Band 0 is empty: job (image, 0, 0) is the unoccluded image, whose logit the drops are taken from.
    rows_ext = torch.cat([rows.new_zeros(1, height), rows])
    cols_ext = torch.cat([cols.new_zeros(1, width), cols])
    n_rows, n_cols = len(rows), len(cols)
    per_image = n_rows * n_cols + 1
    window_ids = torch.arange(per_image - 1, device=device)
    row_of_job = torch.cat([window_ids.new_zeros(1), window_ids // n_cols + 1])
    col_of_job = torch.cat([window_ids.new_zeros(1), window_ids % n_cols + 1])

    n_jobs = n_images * per_image
    # Logits are kept in fp32 even under fp16/bf16 autocast (drops are small differences); fp64 inputs stay fp64.
    out_dtype = torch.float64 if images.dtype == torch.float64 else torch.float32
    logits = torch.empty(len(models), n_jobs, dtype=out_dtype, device=device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    for jobs in _chunks(n_jobs, batch, fixed_shape):
        jobs = jobs.to(device)
        image_of_job, slot = jobs // per_image, jobs % per_image
        mask = rows_ext[row_of_job[slot]][:, None, :, None] * cols_ext[col_of_job[slot]][:, None, None, :]
        occluded = (images[image_of_job] * (1 - mask) + baseline * mask).contiguous(memory_format=memory_format)
        for m, model in enumerate(models):
            with precision.autocast_context():
                out = model(occluded)
            logits[m, jobs] = out.to(out_dtype).gather(1, targets[image_of_job].unsqueeze(1)).squeeze(1)

    logits = logits.view(len(models), n_images, per_image)
    drops = (logits[..., :1] - logits[..., 1:]).view(len(models), n_images, n_rows, n_cols).double()
    rows64, cols64 = rows.double(), cols.double()
    summed = torch.einsum("rh,mnrc,cw->mnhw", rows64, drops, cols64)
    coverage = rows64.sum(0)[:, None] * cols64.sum(0)[None, :]
    return (summed / coverage).to(out_dtype)


def fold_mean(fold_maps: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    """Per-image mean over fold models, signed. The paper's code averages fold maps without
    clipping; negatives are zeroed afterwards only where a stage needs positive evidence
    (the permutation test), see `positive_part`."""
    stacked = torch.stack(list(fold_maps)) if not isinstance(fold_maps, torch.Tensor) else fold_maps
    if stacked.ndim < 2 or stacked.shape[0] == 0:
        raise ValueError("fold_mean needs maps from at least one fold model, stacked on the first axis")
    return stacked.mean(0)


def positive_part(maps):
    """Negatives set to 0: the paper's permutation test compares where the evidence *for* the
    true label lies (TestHeatMapPermu clips the fold-averaged maps at 0)."""
    return maps.clip(min=0)
