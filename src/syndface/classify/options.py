"""Options of the classifier stage's commands (train-classifier, predict, evaluate-classifier, make-table2)."""

from __future__ import annotations

from dataclasses import dataclass

from syndface.options import Options, setting

LOSS_NORMALISATIONS = ("weights", "batch")


def loss_normalisation_for(variant: str, setting: str | dict[str, str]) -> str:
    """The loss normalisation of a variant: one value for every variant, or one per family
    ({"real": ..., "fakes": ...}); the paper's code used {"real": "weights", "fakes": "batch"}.
    Here, without torch, because the workflow resolves it per variant too (a changed `fakes`
    value retrains only the fake variants)."""
    if isinstance(setting, str):
        choice = setting
    else:
        if set(setting) != {"real", "fakes"}:
            raise ValueError(
                f"loss_normalisation per family needs exactly the keys real and fakes, got {sorted(setting)}"
            )
        choice = setting["real" if variant == "real" else "fakes"]
    if choice not in LOSS_NORMALISATIONS:
        raise ValueError(f"unknown loss normalisation {choice!r}; allowed: {', '.join(LOSS_NORMALISATIONS)}")
    return choice


@dataclass(frozen=True)
class TrainOptions(Options):
    model: str = setting("classifier.model")
    image_size: int = setting("classifier.image_size")
    dropout: float = setting("classifier.dropout")
    msd_samples: int = setting("classifier.msd_samples")
    batch_size: int = setting("classifier.batch_size")
    epochs: int = setting("classifier.epochs")
    lr: float = setting("classifier.lr")
    warmup_factor: float = setting("classifier.warmup_factor")
    early_stop: int = setting("classifier.early_stop")
    early_stop_rule: str = setting("classifier.early_stop_rule")
    class_weights: dict[str, float] = setting("classifier.class_weights")
    loss_normalisation: str | dict[str, str] = setting("classifier.loss_normalisation")
    augment: str = setting("classifier.augment")
    precision: str = setting("classifier.precision")
    micro_batch: int = setting("classifier.micro_batch")
    grad_checkpointing: bool = setting("classifier.grad_checkpointing")
    seed: int = setting("seed")
    device: str = setting("device")
    deterministic: bool = setting("deterministic")


@dataclass(frozen=True)
class PredictOptions(Options):
    ensemble_threshold: float = setting("classifier.ensemble_threshold")
    batch_size: int = setting("classifier.batch_size")
    precision: str = setting("classifier.precision")
    device: str = setting("device")


@dataclass(frozen=True)
class EvaluateOptions(Options):
    class_mean_interval: str = setting("classifier.class_mean_interval")
    bootstrap: int = setting("classifier.bootstrap")
    seed: int = setting("seed")


@dataclass(frozen=True)
class Table2Options(Options):
    """What make-table2 says in its header about the intervals evaluate-classifier computed."""

    class_mean_interval: str = setting("classifier.class_mean_interval")
    bootstrap: int = setting("classifier.bootstrap")
    seed: int = setting("seed")
