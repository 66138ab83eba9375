"""Embedding saliency maps with an image network, for the permutation test's distance.

The paper's code fed the mean (positive) attribution array, as a 3-channel image, to an
ImageNet EfficientNet-B4 with its classifier removed and took the Euclidean distance of the
pooled features. Here a map becomes an image the same way for every group and permutation:
divided by one fixed scale (so relative intensities survive), replicated to three channels,
then normalised with the ImageNet mean/std like any input image.

Three embeddings are offered:
- `imagenet`: a timm ImageNet model from a local weights file (the paper's choice);
- `classifier`: the trained fold classifiers' own pooled penultimate features, averaged over
  the folds (the offline default: no extra weights needed);
- `pixels`: the scaled map itself, so the distance is the plain Euclidean distance between the
  mean maps. Globally pooled network features are nearly blind to *where* a map is bright; the
  pixel distance is not, which is what the question "does the important region move with
  age?" asks about.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from syndface.classify.model import IMAGENET_MEAN, IMAGENET_STD

EMBEDDINGS = ("classifier", "imagenet", "pixels")


def map_scale(maps: np.ndarray, quantile: float = 0.99) -> float:
    """One scale for every map of a test: the `quantile` of the pooled map values (not of each
    map, which would erase the differences in strength the test is meant to see)."""
    scale = float(np.quantile(np.asarray(maps, dtype=np.float32), quantile))
    if not scale > 0:
        raise ValueError("the saliency maps have no positive values to scale by; are the maps all zero?")
    return scale


def maps_as_images(maps: torch.Tensor, scale: float) -> torch.Tensor:
    """[B, H, W] maps -> [B, 3, H, W] ImageNet-normalised network inputs."""
    x = (maps / scale).unsqueeze(1).expand(-1, 3, -1, -1)
    mean = torch.tensor(IMAGENET_MEAN, device=maps.device, dtype=maps.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=maps.device, dtype=maps.dtype).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous()


class MapEmbedder:
    """Callable: float maps [B, H, W] (numpy) -> features [B, F] (numpy float64), the mean over
    `networks` of their pooled features, computed in batches of `batch`."""

    def __init__(
        self,
        networks: Sequence[Callable[[torch.Tensor], torch.Tensor]],
        scale: float,
        device: torch.device,
        batch: int,
        description: str,
    ):
        if not networks:
            raise ValueError("the map embedding needs at least one network")
        self.networks = list(networks)
        self.scale = scale
        self.device = device
        self.batch = batch
        self.description = description

    @torch.inference_mode()
    def __call__(self, maps: np.ndarray) -> np.ndarray:
        out = []
        for start in range(0, len(maps), self.batch):
            x = maps_as_images(
                torch.as_tensor(np.asarray(maps[start : start + self.batch]), dtype=torch.float32, device=self.device),
                self.scale,
            )
            features = torch.stack([net(x).float() for net in self.networks]).mean(0)
            out.append(features.double().cpu().numpy())
        return np.concatenate(out)


def classifier_embedder(
    model_paths: Sequence[str | os.PathLike], scale: float, device: torch.device, batch: int = 64
) -> MapEmbedder:
    from syndface.classify.model import load_classifier

    models = [load_classifier(p, device)[0] for p in model_paths]
    names = sorted({m.backbone.__class__.__name__ for m in models})
    return MapEmbedder(
        [m.features for m in models],
        scale,
        device,
        batch,
        f"classifier: penultimate features of the {len(models)} trained fold classifiers ({', '.join(names)}), averaged over folds",
    )


def imagenet_embedder(
    name: str, weights: str | os.PathLike | None, scale: float, device: torch.device, batch: int = 64
) -> MapEmbedder:
    import timm

    if not weights or not Path(weights).is_file():
        raise FileNotFoundError(
            f"ImageNet weights file {weights!r} not found; the `imagenet` embedding needs a local weights file for "
            f"{name} (the paper used tf_efficientnet_b4_ns), or use --embedding classifier"
        )
    model: nn.Module = timm.create_model(
        name, pretrained=True, pretrained_cfg_overlay={"file": str(weights)}, num_classes=0
    )
    model = model.to(device).eval()
    return MapEmbedder([model], scale, device, batch, f"imagenet: {name} pooled features, weights {weights}")


class PixelEmbedder:
    """Callable: maps [B, H, W] -> the maps divided by `scale`, flattened [B, H*W] (float64)."""

    def __init__(self, scale: float):
        self.scale = scale
        self.description = "pixels: the scaled mean maps themselves (Euclidean distance between mean maps)"

    def __call__(self, maps: np.ndarray) -> np.ndarray:
        return np.asarray(maps, dtype=np.float64).reshape(len(maps), -1) / self.scale
