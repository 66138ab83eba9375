"""The classifier network: a timm backbone by name plus the paper code's multi-sample-dropout head.

Checkpoints (`model.pt`) are plain dicts: {"arch": {...build_classifier kwargs...},
"classes": [...], "state_dict": {...}, ...}; `load_classifier` rebuilds the network from
"arch" alone, so any stage can load any fold model without the config.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from syndface.taxonomy import DISEASES

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class MultiSampleDropoutHead(nn.Module):
    """`samples` dropout masks over the same linear layer, logits averaged (Inoue 2019;
    the paper's code uses 5 samples at p=0.2). With samples=1 it is dropout + linear."""

    def __init__(self, in_features: int, num_classes: int, dropout: float, samples: int):
        super().__init__()
        self.dropouts = nn.ModuleList(nn.Dropout(dropout) for _ in range(max(1, samples)))
        self.fc = nn.Linear(in_features, num_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if not self.training or len(self.dropouts) == 1:
            return self.fc(self.dropouts[0](features))
        return torch.stack([self.fc(d(features)) for d in self.dropouts]).mean(0)


class Classifier(nn.Module):
    def __init__(self, backbone: nn.Module, head: MultiSampleDropoutHead):
        super().__init__()
        self.backbone = backbone
        self.head = head

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled penultimate features (1792-d for EfficientNet-B4)."""
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def build_classifier(
    name: str,
    num_classes: int = len(DISEASES),
    dropout: float = 0.2,
    msd_samples: int = 5,
    pretrained: str | os.PathLike | None = None,
    drop_path_rate: float = 0.0,
    **_: Any,
) -> Classifier:
    """A timm model by name with our head. `pretrained` is a local weights file (never a download)."""
    import timm

    kwargs: dict[str, Any] = {"num_classes": 0, "drop_path_rate": drop_path_rate}
    if pretrained:
        path = Path(pretrained)
        if not path.is_file():
            raise FileNotFoundError(
                f"pretrained weights file {str(path)!r} does not exist; set classifier.pretrained "
                "to a local .safetensors/.pth file of the backbone's ImageNet weights, or to null for random init"
            )
        backbone = timm.create_model(name, pretrained=True, pretrained_cfg_overlay={"file": str(path)}, **kwargs)
    else:
        backbone = timm.create_model(name, pretrained=False, **kwargs)
    return Classifier(backbone, MultiSampleDropoutHead(backbone.num_features, num_classes, dropout, msd_samples))


def arch_of(model_cfg: dict[str, Any]) -> dict[str, Any]:
    """The build_classifier kwargs a checkpoint stores (weights path dropped: the state dict has them)."""
    keys = ("name", "num_classes", "dropout", "msd_samples", "drop_path_rate", "image_size")
    return {k: model_cfg[k] for k in keys if k in model_cfg}


def load_classifier(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[Classifier, dict[str, Any]]:
    """Rebuild a trained classifier from `model.pt`; returns (model in eval mode, checkpoint dict)."""
    ckpt = torch.load(path, map_location=device, weights_only=True)
    model = build_classifier(**ckpt["arch"])
    model.load_state_dict(ckpt["state_dict"])
    return model.to(device).eval(), ckpt


def to_unit_float(images: torch.Tensor, device: str | torch.device | None = None) -> torch.Tensor:
    """uint8 NHWC images -> float32 NCHW in [0, 1] (what the augmentations work on)."""
    x = images.to(device) if device is not None else images
    return x.permute(0, 3, 1, 2).float().div_(255.0)


def normalise(x: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
    """float NCHW in [0, 1] -> normalised with the ImageNet mean/std (the paper's Normalize)."""
    mean = torch.tensor(IMAGENET_MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    x = (x - mean) / std
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x.contiguous()


def preprocess(
    images: torch.Tensor, device: str | torch.device | None = None, channels_last: bool = False
) -> torch.Tensor:
    """uint8 NHWC images -> float32 NCHW normalised with the ImageNet mean/std (the paper's Normalize)."""
    return normalise(to_unit_float(images, device), channels_last)
