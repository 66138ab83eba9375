"""Options of the saliency stage's commands (occlusion-maps, saliency-composites, permutation-test,
saliency-truth-check)."""

from __future__ import annotations

from dataclasses import dataclass

from syndface.options import Options, setting


@dataclass(frozen=True)
class OcclusionOptions(Options):
    diseases: list[str] = setting("saliency.diseases")
    window: int = setting("saliency.window")
    stride: int = setting("saliency.stride")
    reference_size: int = setting("saliency.reference_size")
    batch: int = setting("saliency.batch")
    precision: str = setting("saliency.precision")
    device: str = setting("device")


@dataclass(frozen=True)
class CompositesOptions(Options):
    diseases: list[str] = setting("saliency.diseases")
    outlier_perc: float = setting("saliency.outlier_perc")


@dataclass(frozen=True)
class PermutationOptions(Options):
    diseases: list[str] = setting("saliency.diseases")
    embedding: str = setting("saliency.embedding")
    imagenet_model: str = setting("saliency.imagenet_model")
    permutations: int = setting("saliency.permutations")
    max_exact: int = setting("saliency.max_exact")
    size_check_replicates: int = setting("saliency.size_check.replicates")
    size_check_permutations: int = setting("saliency.size_check.permutations")
    alpha: float = setting("saliency.alpha")
    seed: int = setting("seed")
    device: str = setting("device")


@dataclass(frozen=True)
class TruthCheckOptions(Options):
    zoom: float = setting("align.zoom")
