"""Options of the alignment stage's commands (align-shard, merge-aligned, check-leakage,
plot-cohort-overview)."""

from __future__ import annotations

from dataclasses import dataclass

from syndface.options import Options, setting


@dataclass(frozen=True)
class AlignOptions(Options):
    size: int = setting("align.size")
    zoom: float = setting("align.zoom")
    background: str = setting("align.background")
    prefer: str = setting("align.prefer")
    upsample: int = setting("align.upsample")
    max_upsample: int = setting("align.max_upsample")
    shard_size: int = setting("align.shard_size")

    def describe(self) -> str:
        return (
            f"size={self.size} zoom={self.zoom:.6g} background={self.background} prefer={self.prefer} "
            f"upsample={self.upsample} max_upsample={self.max_upsample}"
        )


@dataclass(frozen=True)
class MergeAlignedOptions(Options):
    fail_on_error: bool = setting("align.fail_on_error")
    fail_on_test_error: bool = setting("align.fail_on_test_error")


@dataclass(frozen=True)
class LeakageOptions(Options):
    threshold: float = setting("leakage.threshold")
    fail: bool = setting("leakage.fail")
    max_pairs: int = setting("leakage.max_pairs")
    zoom: float = setting("align.zoom")
    upsample: int = setting("align.upsample")


@dataclass(frozen=True)
class OverviewOptions(Options):
    seed: int = setting("seed")
