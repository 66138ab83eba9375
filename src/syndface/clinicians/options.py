"""Options of the clinicians stage's commands (import-survey, simulate-survey, compare-clinicians)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from syndface.options import Options, setting


@dataclass(frozen=True)
class ImportSurveyOptions(Options):
    """The Qualtrics exports; the command imports the entry `--index` of the list."""

    qualtrics: list[dict[str, Any]] = setting("clinicians.qualtrics")


@dataclass(frozen=True)
class SimulateOptions(Options):
    raters: int = setting("clinicians.raters")
    images_per_rater: int = setting("clinicians.images_per_rater")
    image_spread: float = setting("clinicians.image_spread")
    seed: int = setting("seed")


@dataclass(frozen=True)
class CompareOptions(Options):
    alternative: str = setting("clinicians.alternative")
    q_family: list[str] = setting("clinicians.q_family")
    best_fake_selection: str = setting("clinicians.best_fake_selection")
