"""Tiny inputs shared by the tests of the classifier and the GAN: a 32 px classifier cache, an 8 px
GAN folds table and cache, and a tiny GAN trainer (seconds on one CPU thread)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from syndface.classify.train import TrainConfig
from syndface.gan import train
from syndface.gan.networks import GanArch
from syndface.io import write_tsv
from syndface.taxonomy import AGE_GROUPS, DISEASES

SIZE = 32


def write_classifier_cache(root: Path) -> Path:
    """A 32 px cache: 14 images per class (a class-specific bright quadrant on noise), 2 per class in
    the test split, the rest in 3 folds (folds.tsv beside it); unaffected images are auxiliary."""
    gen = np.random.default_rng(0)
    images, rows = [], []
    for c, disease in enumerate(DISEASES):
        for j in range(14):
            image = gen.integers(40, 200, (SIZE, SIZE, 3), dtype=np.uint8)
            y, x = (c // 2) * SIZE // 2, (c % 2) * SIZE // 2
            image[y : y + SIZE // 2, x : x + SIZE // 2] = 240
            images.append(image)
            rows.append(
                {
                    "image_id": f"{disease}{j:02d}",
                    "disease": disease,
                    "age_group": AGE_GROUPS[j % 5],
                    "source": "auxiliary" if disease == "unaffected" else "cohort",
                    "subject_id": f"s{disease}{j}",
                    "split": "test" if j < 2 else "train",
                }
            )
    index = pd.DataFrame(rows)
    index.insert(0, "row", np.arange(len(index)))
    root.mkdir(parents=True, exist_ok=True)
    np.save(root / "images.npy", np.stack(images))
    write_tsv(index, root / "index.tsv")
    folds = index[index["split"] == "train"].copy()
    folds["fold"] = np.arange(len(folds)) % 3
    write_tsv(folds[["image_id", "subject_id", "disease", "age_group", "source", "fold"]], root / "folds.tsv")
    return root


def classifier_config(cache, fold=0, **kw) -> TrainConfig:
    base = dict(
        cache=str(cache),
        folds=str(cache / "folds.tsv"),
        fold=fold,
        model="test_efficientnet",
        image_size=SIZE,
        batch_size=8,
        epochs=3,
        lr=1e-3,
        augment="paper",
        msd_samples=2,
        seed=3,
    )
    return TrainConfig(**{**base, **kw})


ARCH = GanArch(resolution=8, channel_base=64, channel_max=8, z_dim=8, w_dim=8, mapping_layers=2, mbstd_group=2)
N_FOLDS = 3


def make_folds() -> pd.DataFrame:
    """Per fold: 2 images per affected disease x age, 3 unaffected per age (WS infant of fold 2 only 1)."""
    rows = []
    for fold in range(N_FOLDS):
        for disease in DISEASES:
            for age in AGE_GROUPS:
                n = 3 if disease == "unaffected" else (1 if (disease, age, fold) == ("WS", "infant", 2) else 2)
                for i in range(n):
                    image_id = f"{disease}-{age}-f{fold}-{i}"
                    rows.append(
                        {
                            "image_id": image_id,
                            "subject_id": image_id,
                            "disease": disease,
                            "age_group": age,
                            "source": "auxiliary" if disease == "unaffected" else "cohort",
                            "fold": fold,
                        }
                    )
    return pd.DataFrame(rows)


def cache_index(folds: pd.DataFrame, drop: tuple[str, ...] = ()) -> pd.DataFrame:
    index = folds[~folds["image_id"].isin(drop)].reset_index(drop=True)
    return index.assign(row=np.arange(len(index)), split="train")[
        ["row", "image_id", "disease", "age_group", "source", "subject_id", "split"]
    ]


def tiny_trainer(folds: pd.DataFrame, kimg: float, lr: float = 0.002) -> tuple[train.GanTrainer, dict]:
    index = cache_index(folds)
    images = np.random.default_rng(0).integers(0, 256, (len(index), 8, 8, 3), dtype=np.uint8)
    ts = train.gan_training_set(index, folds, fold=0, oversample=2, unaffected_per_age=2, seed=1)
    # ADA target -1: p jumps to 1 at the first adjustment, so every step after it augments.
    opts = train.TrainOptions(
        kimg=kimg,
        batch=4,
        lr=lr,
        ema_kimg=0.01,
        ada_target=-1.0,
        ada_kimg=0.002,
        ada_interval=1,
        g_reg_interval=2,
        d_reg_interval=2,
        seed=5,
    )
    trainer = train.GanTrainer(ARCH, opts, *train.training_tensors(images, ts), torch.device("cpu"))
    return trainer, train.run_signature(ARCH, opts, {"fold": 0}, ts)


def write_cache(folds: pd.DataFrame, directory: Path) -> None:
    index = cache_index(folds)
    directory.mkdir(parents=True)
    np.save(directory / "images.npy", np.random.default_rng(0).integers(0, 256, (len(index), 8, 8, 3), dtype=np.uint8))
    write_tsv(index, directory / "index.tsv")


def write_untrained_classifier(path: Path, fold: int, image_size: int = SIZE, seed: int = 0) -> Path:
    """A randomly initialised test_efficientnet fold model in the train-classifier checkpoint format
    (what the GAN's metrics and the fake-fidelity check load): enough to run their code paths."""
    from syndface.classify.model import build_classifier

    arch = {"name": "test_efficientnet", "num_classes": len(DISEASES), "dropout": 0.0, "msd_samples": 1}
    with torch.random.fork_rng(devices=[]):  # leave the caller's random stream alone
        torch.manual_seed(seed)
        model = build_classifier(**arch)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "arch": {**arch, "image_size": image_size},
            "classes": list(DISEASES),
            "state_dict": model.state_dict(),
            "fold": fold,
        },
        path,
    )
    return path
