"""The planted disease signals: which facial region carries which disease at which age.

This table is the one source of truth for both the renderer (how strongly a face shows a sign)
and the region masks (where the saliency maps ought to look). Each signal's strength is given at
the infant (1 year) and older-adult (50 years) anchors and interpolated on a log-age scale, so it
changes continuously within and across the five age groups. That change is the planted
age x disease interaction:
- WS: the periorbital fullness and the star-patterned iris fade from infancy to nothing in older
  adults while the wide mouth with full lips grows from nothing in infants (the paper's Figure 4,
  WS row). The two looks are disjoint at the ends, so infant and older-adult saliency maps have
  different places to go (the permutation test's planted effect). Both anchors are 1.5 (signs
  exaggerated: the renderer caps amplitudes at MAX_AMPLITUDE): at 64 px a tiny network from random
  weights sees only coarse shapes, and WS, split into two looks, is otherwise its weakest class.
- 22q: the small mouth dominates in infants; hooded, narrow eyes grow with age (Figure 4, 22q row:
  the periorbital region more important in older groups). The prominent nasal root grows too but
  stays under half the strongest 22q sign: FFHQ alignment centres the crop on the nasal root, so a
  nasal-root region would be found by any map that merely looks at the middle of the face (the
  truth check's centred-blob comparison).
- control: its own signs (wide-set eyes, heavy brows, a broad nasal tip) plus weaker copies of
  one WS sign (full lips) and one 22q sign (hooded eyes), so it overlaps both syndromes.
- unaffected: none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

REGIONS = ("periorbital", "iris", "mouth", "eyelids", "nasal_root", "eye_spacing", "brows", "nasal_tip")
# What the renderer changes; each effect lies in one region.
EFFECTS = (
    "fullness",
    "star_iris",
    "wide_mouth",
    "small_mouth",
    "full_lips",
    "hooding",
    "nasal_root",
    "wide_eyes",
    "heavy_brows",
    "broad_nasal_tip",
)

INFANT_ANCHOR_YEARS = 1.0
OLDER_ADULT_ANCHOR_YEARS = 50.0


@dataclass(frozen=True)
class Signal:
    disease: str
    region: str
    effect: str  # the renderer's parameter (one of EFFECTS)
    sign: str  # the same in clinical words
    infant: float  # strength at INFANT_ANCHOR_YEARS
    older_adult: float  # strength at OLDER_ADULT_ANCHOR_YEARS


SIGNALS: tuple[Signal, ...] = (
    Signal("WS", "periorbital", "fullness", "periorbital fullness", 1.5, 0.0),
    Signal("WS", "iris", "star_iris", "stellate (star-patterned) iris", 0.9, 0.0),
    Signal("WS", "mouth", "wide_mouth", "wide mouth, full lips", 0.0, 1.5),
    Signal("22q", "mouth", "small_mouth", "small mouth", 1.0, 0.4),
    Signal("22q", "eyelids", "hooding", "hooded eyelids, narrow palpebral fissures", 0.5, 1.0),
    Signal("22q", "nasal_root", "nasal_root", "prominent nasal root", 0.15, 0.4),
    Signal("control", "eye_spacing", "wide_eyes", "wide-set eyes", 0.8, 0.8),
    Signal("control", "nasal_tip", "broad_nasal_tip", "broad nasal tip, anteverted nares", 0.6, 1.0),
    Signal("control", "brows", "heavy_brows", "heavy arched brows", 0.7, 1.0),
    Signal("control", "mouth", "full_lips", "full lips (shared with WS)", 0.45, 0.45),
    Signal("control", "eyelids", "hooding", "hooded eyelids (shared with 22q)", 0.4, 0.4),
)

# Share of smiling faces: the paper's WS test images smiled more often (60%) than others (44%).
SMILE_PROBABILITY = {"WS": 0.6, "22q": 0.44, "control": 0.44, "unaffected": 0.44}


def age_progress(years: float) -> float:
    """0 at the infant anchor, 1 at the older-adult anchor, linear in log(1 + years), clipped."""
    lo, hi = math.log1p(INFANT_ANCHOR_YEARS), math.log1p(OLDER_ADULT_ANCHOR_YEARS)
    return min(1.0, max(0.0, (math.log1p(years) - lo) / (hi - lo)))


def signal_strength(signal: Signal, years: float) -> float:
    t = age_progress(years)
    return (1.0 - t) * signal.infant + t * signal.older_adult


def signals_of(disease: str) -> tuple[Signal, ...]:
    return tuple(s for s in SIGNALS if s.disease == disease)


def amplitudes(disease: str, years: float, penetrance: float, scale: float = 1.0) -> dict[str, float]:
    """How strongly one image shows each effect: strength at this age x the image's penetrance x a
    global scale. Effects the disease does not have are 0."""
    out = dict.fromkeys(EFFECTS, 0.0)
    for signal in signals_of(disease):
        out[signal.effect] = scale * penetrance * signal_strength(signal, years)
    return out
