"""Options of the evaluation stage's commands (meanings in the config schema, section `evaluation`)."""

from __future__ import annotations

from dataclasses import dataclass

from syndface.options import Options, setting


@dataclass(frozen=True)
class InferenceOptions(Options):
    """predict-out-of-fold and export-features: how the fold models run."""

    batch_size: int = setting("classifier.batch_size")
    precision: str = setting("classifier.precision")
    device: str = setting("device")


@dataclass(frozen=True)
class TTAOptions(InferenceOptions):
    """predict-tta: the test-time augmentation and the ensemble rule."""

    tta: str = setting("classifier.tta")
    ensemble_threshold: float = setting("classifier.ensemble_threshold")


@dataclass(frozen=True)
class CalibrationOptions(Options):
    ece_bins: int = setting("evaluation.ece_bins")
    temperature_scaling: bool = setting("evaluation.temperature_scaling")
    ensemble_threshold: float = setting("classifier.ensemble_threshold")


@dataclass(frozen=True)
class SubgroupOptions(Options):
    min_cell_size: int = setting("evaluation.min_cell_size")


@dataclass(frozen=True)
class ReadoutOptions(Options):
    top_k: int = setting("evaluation.top_k")
    bootstrap: int = setting("classifier.bootstrap")
    seed: int = setting("seed")


@dataclass(frozen=True)
class GalleryOptions(Options):
    knn_k: int = setting("evaluation.knn_k")


@dataclass(frozen=True)
class HeldOutOptions(Options):
    knn_k: int = setting("evaluation.knn_k")
    min_cell_size: int = setting("evaluation.min_cell_size")
