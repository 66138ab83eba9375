"""The study's labels, in the one order everything uses.

Diseases are the classifier's outputs in this order (index = class id). Age groups follow
the paper's brackets: infant (<2 y), child (2-9), adolescent (10-19), young adult (20-34),
older adult (>=35).
"""

from __future__ import annotations

import math

DISEASES: tuple[str, ...] = ("WS", "22q", "control", "unaffected")
AFFECTED: tuple[str, ...] = ("WS", "22q", "control")
AGE_GROUPS: tuple[str, ...] = ("infant", "child", "adolescent", "young_adult", "older_adult")
# Lower bound in years (inclusive) of each age group; the last is open-ended.
AGE_LOWER_BOUNDS: dict[str, float] = {
    "infant": 0.0,
    "child": 2.0,
    "adolescent": 10.0,
    "young_adult": 20.0,
    "older_adult": 35.0,
}
SOURCES: tuple[str, ...] = ("cohort", "auxiliary")
SPLITS: tuple[str, ...] = ("train", "test")

FAKE_TYPES: tuple[str, ...] = (
    "unrelated",  # type 1: own latent per image
    "age_related",  # type 2: one latent per identity at the five ages
    "age_progression",  # type 3: age embedding interpolated infant -> older adult
    "blended_55",  # type 4, c = 0.55
    "blended_75",  # type 4, c = 0.75
)
BLEND_FRACTIONS: dict[str, float] = {"blended_55": 0.55, "blended_75": 0.75}
VARIANTS: tuple[str, ...] = ("real",) + tuple(f"real+{t}" for t in FAKE_TYPES)

# Clinician surveys: each syndrome was shown against the "other conditions" group.
SURVEYS: dict[str, tuple[str, str]] = {"WS": ("WS", "control"), "22q": ("22q", "control")}


def disease_index(disease: str) -> int:
    """Class id of a disease; raises a ValueError naming the allowed labels."""
    try:
        return DISEASES.index(disease)
    except ValueError:
        raise ValueError(f"unknown disease {disease!r}; allowed: {', '.join(DISEASES)}") from None


def age_index(age_group: str) -> int:
    try:
        return AGE_GROUPS.index(age_group)
    except ValueError:
        raise ValueError(f"unknown age group {age_group!r}; allowed: {', '.join(AGE_GROUPS)}") from None


def age_group_of(years: float) -> str:
    """Age group of an age in years (the paper's brackets)."""
    if years is None or not math.isfinite(years) or years < 0:
        raise ValueError(f"age must be a non-negative number of years, got {years!r}")
    group = AGE_GROUPS[0]
    for name in AGE_GROUPS:
        if years >= AGE_LOWER_BOUNDS[name]:
            group = name
    return group


def variant_fake_type(variant: str) -> str | None:
    """`real+age_progression` -> `age_progression`; `real` -> None."""
    if variant == "real":
        return None
    if variant.startswith("real+") and variant[5:] in FAKE_TYPES:
        return variant[5:]
    raise ValueError(f"unknown variant {variant!r}; allowed: {', '.join(VARIANTS)}")
