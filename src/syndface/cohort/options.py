"""Options of the cohort stage's command (`build-manifest`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from syndface.options import Options, setting


@dataclass(frozen=True)
class ManifestOptions(Options):
    inputs: list[dict[str, Any]] = setting("cohort.inputs")
    fairface_age_map: dict[str, str] = setting("cohort.fairface_age_map")
    seed: int = setting("seed")
