"""Options of the demo stage's command (`make-demo-cohort`)."""

from __future__ import annotations

from dataclasses import dataclass

from syndface.options import Options, setting
from syndface.taxonomy import AFFECTED, AGE_GROUPS


@dataclass(frozen=True)
class DemoOptions(Options):
    """The `demo:` section of the config and the master seed (meanings in the config schema)."""

    seed: int = setting("seed")
    n_subjects: int = setting("demo.n_subjects")
    n_auxiliary: int = setting("demo.n_auxiliary")
    test_per_group: int = setting("demo.test_per_group")
    image_size: int = setting("demo.image_size")
    render_scale: int = setting("demo.render_scale")
    grey_share: float = setting("demo.grey_share")
    signal_strength: float = setting("demo.signal_strength")
    repeat_test_share: float = setting("demo.repeat_test_share")

    def check(self) -> None:
        n_test = len(AFFECTED) * len(AGE_GROUPS) * self.test_per_group
        need = n_test + len(AFFECTED) * len(AGE_GROUPS)
        if self.test_per_group < 1:
            raise ValueError(f"test_per_group must be at least 1, got {self.test_per_group}")
        if self.n_subjects < need:
            raise ValueError(
                f"n_subjects={self.n_subjects} is too small: {n_test} test subjects "
                f"({len(AFFECTED)} diseases x {len(AGE_GROUPS)} age groups x test_per_group={self.test_per_group}) "
                f"plus one train subject per disease and age group need at least {need}; "
                "raise n_subjects or lower test_per_group"
            )
        aux_need = len(AGE_GROUPS) * (self.test_per_group + 1)
        if self.n_auxiliary < aux_need:
            raise ValueError(
                f"n_auxiliary={self.n_auxiliary} is too small: test_per_group={self.test_per_group} test images "
                f"and one train image per age group need at least {aux_need}"
            )
        if self.image_size < 32 or self.render_scale < 1:
            raise ValueError(
                f"image_size must be >= 32 and render_scale >= 1, got {self.image_size} and {self.render_scale}"
            )
        if not 0.0 <= self.grey_share <= 1.0:
            raise ValueError(f"grey_share must lie in [0, 1], got {self.grey_share}")
        if self.signal_strength < 0:
            raise ValueError(f"signal_strength must be >= 0, got {self.signal_strength}")
        if not 0.0 <= self.repeat_test_share <= 1.0:
            raise ValueError(f"repeat_test_share must lie in [0, 1], got {self.repeat_test_share}")
