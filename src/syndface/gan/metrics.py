"""FID and KID of a GAN's snapshots against its real training images, and the snapshot choice.

The paper's code tracked FID (`fid3500_full`: 3,500 fakes against the whole training set) and
used snapshots at 1.2-1.5k kimg rather than the last one. Here every `gan.snapshot_kimg` the EMA
generator renders `gan.metric_fakes` fakes from fixed latents, and torchmetrics'
`FrechetInceptionDistance` and `KernelInceptionDistance` compare their features with those of
the fold's real GAN training images (each unique image once; the fakes' labels are drawn from
those images' labels, so both sides have the same label mix). The features come from:

- `inception`: Inception-v3 (the 2015-12-05 FID port) from a local weights file, through
  torchmetrics' `NoTrainInceptionV3` (it needs the `torch-fidelity` package and never downloads
  here: the file is required). FID in the usual sense; with a few hundred images it is biased
  upwards (fewer samples raise FID), so compare it only between snapshots of one run.
- `classifier`: the fold's real-only classifier's pooled penultimate features (the GAN images
  resized to its input size). A domain metric that needs no extra weights; it measures what that
  classifier can see, e.g. the planted signs of the demo, not photographic realism.

Rendering uses psi 1 and noise seeded per fake, and runs inside a forked torch RNG with its own
seed, so measuring never changes the training run (a resumed run stays bitwise equal to an
uninterrupted one) and a snapshot's numbers are reproducible. KID: polynomial kernel
(x.y / d + 1)^3, unbiased MMD^2, mean and std over 100 random subsets of min(1000, n) images,
as the official metric.
"""

from __future__ import annotations

import hashlib
import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from syndface.gan.networks import Generator, seeded_noise
from syndface.seeding import derive_seed

EXTRACTORS = ("classifier", "inception")
SELECTIONS = ("last", "best_fid", "best_kid")
METRIC_COLUMNS = ("kimg", "fid", "kid_mean", "kid_std", "n_real", "n_fake", "extractor")
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ClassifierFeatures(nn.Module):
    """uint8 NCHW images -> the real-only classifier's pooled penultimate features."""

    def __init__(self, model_path: str | os.PathLike, device: torch.device):
        super().__init__()
        from syndface.classify.model import load_classifier

        model, ckpt = load_classifier(model_path, device)
        self.model = model
        self.size = int(ckpt["arch"].get("image_size") or 224)
        self.num_features = int(model.backbone.num_features)
        self.name = "classifier"
        self.description = (
            f"classifier: pooled penultimate features ({self.num_features}-d) of {model_path} "
            f"({ckpt['arch'].get('name')}, fold {ckpt.get('fold')}, images resized to {self.size} px)"
        )
        self.identity = {"extractor": "classifier", "sha256": file_sha256(model_path)}

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        from syndface.classify.model import normalise

        x = images.float() / 255
        if x.shape[-1] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True)
        return self.model.features(normalise(x)).float()


class InceptionFeatures(nn.Module):
    """uint8 NCHW images -> Inception-v3 pool features (2048-d), weights from a local file."""

    def __init__(self, weights: str | os.PathLike | None, device: torch.device):
        super().__init__()
        if not weights or not Path(weights).is_file():
            raise FileNotFoundError(
                f"Inception weights file {weights!r} not found; gan.metric_extractor inception needs "
                "pt_inception-2015-12-05-6726825d.pth (resources/weights.yaml lists where it comes from; "
                "`syndface fetch-weights` gets it) at gan.inception_weights, or use gan.metric_extractor classifier"
            )
        try:
            from torchmetrics.image.fid import NoTrainInceptionV3
        except ImportError as error:  # pragma: no cover - depends on the environment
            raise ImportError(
                "the inception extractor needs torchmetrics with torch-fidelity (pip install torch-fidelity)"
            ) from error
        # torch-fidelity loads the file with weights_only=False; load it safely first, so a file that
        # holds anything but tensors is refused before that.
        torch.load(weights, map_location="cpu", weights_only=True)
        self.net = NoTrainInceptionV3(
            name="inception-v3-compat", features_list=["2048"], feature_extractor_weights_path=str(weights)
        ).to(device)
        self.num_features = 2048
        self.name = "inception"
        self.description = f"inception: Inception-v3 pool3 features (2048-d) from {weights}, images resized to 299 px"
        self.identity = {"extractor": "inception", "sha256": file_sha256(weights)}

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images).float()


def make_extractor(
    kind: str, device: torch.device, classifier: str | None = None, inception_weights: str | None = None
) -> ClassifierFeatures | InceptionFeatures:
    """The feature extractor `kind` names. Building a network draws its initial weights from torch's
    generators (before the file's replace them): that happens in a forked RNG, so a run with
    metrics trains exactly as one without."""
    devices = [device] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        return _make_extractor(kind, device, classifier, inception_weights)


def _make_extractor(
    kind: str, device: torch.device, classifier: str | None, inception_weights: str | None
) -> ClassifierFeatures | InceptionFeatures:
    if kind == "classifier":
        if not classifier:
            raise ValueError(
                "gan.metric_extractor classifier needs the fold's real-only classifier (--classifier "
                "results/classifier/real/fold{k}/model.pt)"
            )
        return ClassifierFeatures(classifier, device)
    if kind == "inception":
        return InceptionFeatures(inception_weights, device)
    raise ValueError(f"unknown feature extractor {kind!r}; allowed: {', '.join(EXTRACTORS)}")


@torch.no_grad()
def extract(extractor: nn.Module, images: torch.Tensor, device: torch.device, batch: int = 64) -> torch.Tensor:
    """Features [N, F] (float64, CPU) of uint8 NCHW images, in batches."""
    out = [extractor(images[i : i + batch].to(device)).double().cpu() for i in range(0, len(images), batch)]
    return torch.cat(out) if out else torch.zeros(0, extractor.num_features, dtype=torch.float64)


class _Given(nn.Module):
    """Pass-through 'feature extractor' for torchmetrics: the features are computed once, outside."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def fid_kid(real: torch.Tensor, fake: torch.Tensor, seed: int) -> dict[str, float]:
    """FID and KID (mean, std over subsets) between two feature sets, with torchmetrics."""
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    if len(real) < 2 or len(fake) < 2:
        raise ValueError(f"FID/KID need at least 2 real and 2 fake images, got {len(real)} and {len(fake)}")
    dim = real.shape[1]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # KID's subsets are drawn with torch's global generator
        fid = FrechetInceptionDistance(feature=_Given(dim))
        fid.update(real, real=True)
        fid.update(fake, real=False)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
            kid = KernelInceptionDistance(
                feature=_Given(dim), subsets=KID_SUBSETS, subset_size=min(KID_SUBSET_SIZE, len(real), len(fake))
            )
        kid.update(real, real=True)
        kid.update(fake, real=False)
        kid_mean, kid_std = kid.compute()
        return {"fid": float(fid.compute()), "kid_mean": float(kid_mean), "kid_std": float(kid_std)}


class SnapshotEvaluator:
    """Measures a generator against fixed real features with fixed fake latents, labels and noise."""

    def __init__(
        self,
        extractor: ClassifierFeatures | InceptionFeatures,
        reals: torch.Tensor,
        real_labels: torch.Tensor,
        n_fakes: int,
        z_dim: int,
        seed: int,
        device: torch.device,
        batch: int = 64,
    ):
        """`reals`: uint8 NCHW, each real image once; `real_labels`: their [N, 9] label vectors."""
        if n_fakes < 2:
            raise ValueError(f"gan.metric_fakes must be >= 2, got {n_fakes}")
        self.extractor, self.device, self.batch, self.seed = extractor, device, batch, seed
        with torch.random.fork_rng(devices=[]):
            self.real_features = extract(extractor, reals, device, batch)
        gen = torch.Generator().manual_seed(derive_seed(seed, "gan-metrics", "latents"))
        self.z = torch.randn(n_fakes, z_dim, generator=gen)
        self.labels = real_labels[torch.randint(len(real_labels), (n_fakes,), generator=gen)]
        self.noise_seeds = [derive_seed(seed, "gan-metrics", "noise", i) for i in range(n_fakes)]

    @property
    def identity(self) -> dict[str, Any]:
        """What the numbers depend on besides the generator (a resumed history must share it)."""
        return {**self.extractor.identity, "n_real": len(self.real_features), "n_fake": len(self.z)}

    @torch.no_grad()
    def fakes(self, G: Generator) -> torch.Tensor:
        images = []
        for i in range(0, len(self.z), self.batch):
            seeds = self.noise_seeds[i : i + self.batch]
            noise = [n.to(self.device) for n in seeded_noise(G, seeds)]
            x = G(
                self.z[i : i + self.batch].to(self.device), self.labels[i : i + self.batch].to(self.device), noise=noise
            )
            images.append((x.float() * 127.5 + 128).clamp(0, 255).to(torch.uint8))
        return torch.cat(images)

    def __call__(self, G: Generator, kimg: float) -> dict[str, Any]:
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            fake_features = extract(self.extractor, self.fakes(G), self.device, self.batch)
        scores = fid_kid(self.real_features, fake_features, derive_seed(self.seed, "gan-metrics", "kid"))
        return {
            "kimg": round(kimg, 6),
            **scores,
            "n_real": len(self.real_features),
            "n_fake": len(fake_features),
            "extractor": self.extractor.name,
        }


def choose(history: Sequence[dict[str, Any]], select: str) -> dict[str, Any]:
    """The snapshot `select` picks: the last, or the lowest FID / KID mean (the earliest on ties)."""
    if not history:
        raise ValueError("no snapshot to choose from")
    if select == "last":
        return history[-1]
    column = {"best_fid": "fid", "best_kid": "kid_mean"}.get(select)
    if column is None:
        raise ValueError(f"unknown gan.select {select!r}; allowed: {', '.join(SELECTIONS)}")
    scored = [row for row in history if not math.isnan(float(row.get(column, math.nan)))]
    if not scored:
        raise ValueError(f"gan.select {select} needs {column} at every snapshot, but none was measured")
    return min(scored, key=lambda row: float(row[column]))


def kept_snapshots(history: Sequence[dict[str, Any]], keep: int, select: str) -> set[float]:
    """kimg of the snapshots to keep on disk: the `keep` latest and the one `select` picks so far."""
    if not history:
        return set()
    kept = {float(row["kimg"]) for row in history[-max(keep, 1) :]}
    return kept | {float(choose(history, select)["kimg"])}


def history_table(history: Sequence[dict[str, Any]], selected: float | None) -> pd.DataFrame:
    table = pd.DataFrame(list(history), columns=list(METRIC_COLUMNS))
    table["selected"] = np.isclose(table["kimg"].astype(float), selected) if selected is not None else False
    return table


def metrics_figure(history: Sequence[dict[str, Any]], selected: dict[str, Any] | None, title: str) -> Any:
    """FID and KID (+- its subset std) against kimg, the chosen snapshot circled."""
    import matplotlib.pyplot as plt

    table = history_table(history, None if selected is None else float(selected["kimg"]))
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    for ax, column, name in ((axes[0], "fid", "FID"), (axes[1], "kid_mean", "KID")):
        ax.plot(table["kimg"], table[column], "o-", color="C0", markersize=4)
        if column == "kid_mean":
            ax.fill_between(
                table["kimg"], table["kid_mean"] - table["kid_std"], table["kid_mean"] + table["kid_std"], alpha=0.2
            )
        if selected is not None:
            ax.plot([selected["kimg"]], [selected[column]], "o", markersize=11, markerfacecolor="none", color="C3")
        ax.set_xlabel("kimg")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    extractor = table["extractor"].iloc[0] if len(table) else "?"
    fig.suptitle(f"{title} ({extractor} features; circled: network.pt)", fontsize=9)
    fig.tight_layout()
    return fig
