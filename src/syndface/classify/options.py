"""Options of the classifier stage's commands (train-classifier, predict, evaluate-classifier)."""

from __future__ import annotations

from dataclasses import dataclass

from syndface.options import Options, setting


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
    class_weights: dict[str, float] = setting("classifier.class_weights")
    loss_normalisation: str = setting("classifier.loss_normalisation")
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
    bootstrap: int = setting("classifier.bootstrap")
    seed: int = setting("seed")
