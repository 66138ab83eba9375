"""Simulated surveys for checking the clinician tests' calibration (size under the null) and power.

A group of `n_images` images has per-image probabilities of a correct rater answer spread
around `human_accuracy` on the logit scale (as `syndface simulate-survey` does) with their
mean exactly `human_accuracy`; `n_raters` raters each see `per_rater` of the images (a random
subset, as in the surveys) and answer each correctly with that image's probability, shifted by
their own ability u_r ~ N(0, rater_sd) on the logit scale.

Two nulls, one per question (see `syndface.clinicians.inference`):
- `random_rater`: the model answers every image like a rater drawn at random from the panel
  that answered the survey: right with the panel's mean probability on that image,
  independently over images ("for each image, correct with probability = that image's human
  accuracy"); the null of the per-image count test and the paper's t test, which take the
  raters as fixed.
- `population`: the same with the mean over the *population* of clinicians (rater ability
  integrated out) instead of the panel; the null of the mixed model, which treats the raters as
  a sample. With rater_sd = 0 the two coincide. When raters differ, a panel of 30-34 is a noisy
  picture of the population, and a test that fixes the raters (the count test) is slightly
  liberal for this null (bench/clinicians_calibration.py). A model with a persistent ability of
  its own, like one particular clinician, is neither null: these tests are meant to see it.
- `fixed_model`: the model's answers are fixed (right on the first c images, c / n the
  raters' mean accuracy) and the raters' population accuracy on every image subset equals the
  model's on average; the null of the rater-level tests, which take the model as given.
`model_shift` > 0 plants an effect: the model's logit is raised by it on every image.

Everything is vectorised over replicates and seeded by the generator passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import expit, logit

from syndface.clinicians.inference import poisson_binomial_pvalues
from syndface.permutations import sign_patterns

_GH_NODES, _GH_WEIGHTS = np.polynomial.hermite_e.hermegauss(41)  # E over N(0, 1) by quadrature
_GH_WEIGHTS = _GH_WEIGHTS / _GH_WEIGHTS.sum()


@dataclass(frozen=True)
class Design:
    human_accuracy: float  # mean over images of a random rater's probability of a correct answer
    n_images: int
    n_raters: int = 30
    per_rater: int = 5  # images of the group each rater sees
    spread: float = 0.5  # SD of image difficulty (logit)
    rater_sd: float = 0.0  # SD of rater ability (logit)

    def __post_init__(self):
        if not 0 < self.human_accuracy < 1:
            raise ValueError("human_accuracy must lie strictly between 0 and 1")
        if not 1 <= self.per_rater <= self.n_images:
            raise ValueError("per_rater must be between 1 and n_images")


# The designs the size checks simulate (tests/test_clinicians_calibration.py and
# bench/clinicians_calibration.py use these same ones): one age group's images and a whole survey
# (the paper's 100 images, 10 age groups x truths, 34 raters seeing half; the demo's 60), at the
# paper's and the demo's sizes; the human accuracies tried per group, and per survey with the
# raters' ability spread (rater_sd).
GROUP_SIZES = {"paper": dict(n_images=10, n_raters=30, per_rater=5), "demo": dict(n_images=6, n_raters=32, per_rater=5)}
SURVEY_SIZES = {
    "paper": dict(n_images=100, n_raters=34, per_rater=50, spread=0.9),
    "demo": dict(n_images=60, n_raters=32, per_rater=50, spread=0.9),
}
GROUP_LEVELS = (0.51, 0.67, 0.81, 0.86)
SURVEY_LEVELS = ((0.775, 0.0), (0.593, 0.0), (0.775, 0.5))  # (human accuracy, rater_sd)


@dataclass(frozen=True)
class SimulatedSurveys:
    shown: np.ndarray  # [R, raters, images] bool
    correct: np.ndarray  # [R, raters, images] bool (meaningful where shown)
    model: np.ndarray  # [R, images] 0/1

    @property
    def rater_correct(self) -> np.ndarray:
        """[R, images] raters correct per image."""
        return (self.shown & self.correct).sum(1)

    @property
    def rater_n(self) -> np.ndarray:
        """[R, images] raters per image."""
        return self.shown.sum(1)

    @property
    def human_accuracy(self) -> np.ndarray:
        """[R, images] share of raters correct (NaN where no rater saw the image)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.rater_correct / self.rater_n


def population_accuracy(logits: np.ndarray, rater_sd: float) -> np.ndarray:
    """E over rater ability u ~ N(0, rater_sd) of expit(logits + u), elementwise."""
    if rater_sd == 0:
        return expit(logits)
    return (expit(np.asarray(logits)[..., None] + rater_sd * _GH_NODES) * _GH_WEIGHTS).sum(-1)


def image_logits(design: Design, replicates: int, gen: np.random.Generator, target: float | None = None) -> np.ndarray:
    """[R, images] logits whose population accuracy averages exactly `target` (default the design's) per replicate."""
    target = design.human_accuracy if target is None else target
    offsets = gen.normal(0.0, design.spread, (replicates, design.n_images))
    shift = np.full((replicates, 1), logit(target))
    for _ in range(50):  # Newton on the shift; the mean accuracy is increasing in it
        acc = population_accuracy(offsets + shift, design.rater_sd)
        slope = acc * (1 - acc)
        step = (acc.mean(1, keepdims=True) - target) / np.maximum(slope.mean(1, keepdims=True), 1e-12)
        shift -= step
        if np.all(np.abs(step) < 1e-12):
            break
    return offsets + shift


def _raters(design: Design, logits: np.ndarray, gen: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(shown, correct, ability [R, raters, 1]) of the panel: each rater sees a random subset."""
    replicates = len(logits)
    keys = gen.random((replicates, design.n_raters, design.n_images))
    ranks = keys.argsort(-1).argsort(-1)
    shown = ranks < design.per_rater
    ability = gen.normal(0.0, design.rater_sd, (replicates, design.n_raters, 1))
    correct = gen.random(shown.shape) < expit(logits[:, None, :] + ability)
    return shown, correct, ability


def simulate(
    design: Design, null: str, replicates: int, gen: np.random.Generator, model_shift: float = 0.0
) -> SimulatedSurveys:
    """`replicates` surveys of one group under `null` (`random_rater`, `population` or `fixed_model`), effect `model_shift`."""
    if null in ("random_rater", "population"):
        logits = image_logits(design, replicates, gen)
        shown, correct, ability = _raters(design, logits, gen)
        if null == "random_rater":  # the panel's mean probability on each image
            model_p = expit(logits[:, None, :] + ability + model_shift).mean(1)
        else:
            model_p = population_accuracy(logits + model_shift, design.rater_sd)
        model = (gen.random(logits.shape) < model_p).astype(np.int64)
        return SimulatedSurveys(shown, correct, model)
    if null == "fixed_model":
        right = int(round(design.human_accuracy * design.n_images))
        if not 0 < right < design.n_images:
            raise ValueError("the fixed model needs at least one right and one wrong image")
        model = np.zeros((replicates, design.n_images), dtype=np.int64)
        model[:, :right] = 1
        # raters' population accuracy averages the model's, right / n; the effect lowers the raters
        logits = image_logits(design, replicates, gen, target=right / design.n_images) - model_shift
        shown, correct, _ = _raters(design, logits, gen)
        return SimulatedSurveys(shown, correct, model)
    raise ValueError(f"unknown null {null!r}; allowed: random_rater, population, fixed_model")


# --- every test, vectorised over replicates ------------------------------------------------------

IMAGE_TESTS = ("exchangeable", "plug-in", "paper_ttest", "sign_flip", "wilcoxon")
RATER_TESTS = ("rater_ttest", "rater_sign")


def _pick(greater: np.ndarray, less: np.ndarray, two_sided: np.ndarray, alternative: str) -> np.ndarray:
    return {"greater": greater, "less": less, "two-sided": two_sided}[alternative]


def image_pvalues(sim: SimulatedSurveys, test: str, alternative: str = "two-sided") -> np.ndarray:
    """[R] p-values of a test whose unit is the image (NaN where it is undefined)."""
    x = sim.model
    if test in ("exchangeable", "plug-in"):
        k, m = sim.rater_correct, sim.rater_n
        q = (k + x) / (m + 1) if test == "exchangeable" else k / m
        return _pick(*poisson_binomial_pvalues(x.sum(1), q), alternative)
    d = x - sim.human_accuracy
    if test == "paper_ttest":
        with np.errstate(invalid="ignore", divide="ignore"):
            return stats.ttest_1samp(d, 0.0, axis=1, alternative=alternative).pvalue
    if test == "sign_flip":  # Table 1's former test, exact: every sign pattern
        signs, _ = sign_patterns(d.shape[1], 2**20, 0, np.random.default_rng(0))
        null, observed = d @ signs.T, d.sum(1, keepdims=True)
        tol = 1e-9
        greater = np.mean(null >= observed - tol, 1)
        less = np.mean(null <= observed + tol, 1)
        two_sided = np.mean(np.abs(null) >= np.abs(observed) - tol, 1)
        return _pick(greater, less, two_sided, alternative)
    if test == "wilcoxon":  # the former robustness check, scipy's defaults (zeros dropped)
        out = np.full(len(d), np.nan)
        for r, row in enumerate(d):
            if np.any(row != 0):
                out[r] = stats.wilcoxon(row, alternative=alternative).pvalue
        return out
    raise ValueError(f"unknown image-level test {test!r}; allowed: {', '.join(IMAGE_TESTS)}")


def rater_pvalues(sim: SimulatedSurveys, test: str, alternative: str = "two-sided") -> np.ndarray:
    """[R] p-values of a test whose unit is the rater (model vs rater on the rater's own images)."""
    seen = sim.shown.sum(-1)
    rater = (sim.shown & sim.correct).sum(-1) / seen
    model = (sim.shown * sim.model[:, None, :]).sum(-1) / seen
    d = model - rater
    if test == "rater_ttest":
        with np.errstate(invalid="ignore", divide="ignore"):
            return stats.ttest_1samp(d, 0.0, axis=1, alternative=alternative).pvalue
    if test == "rater_sign":
        better, worse = (d > 0).sum(1), (d < 0).sum(1)
        n = better + worse
        greater = stats.binom.sf(better - 1, n, 0.5)
        less = stats.binom.cdf(better, n, 0.5)
        two_sided = np.minimum(1.0, 2 * np.minimum(greater, less))
        return np.where(n > 0, _pick(greater, less, two_sided, alternative), 1.0)
    raise ValueError(f"unknown rater-level test {test!r}; allowed: {', '.join(RATER_TESTS)}")


def rejection_rate(pvalues: np.ndarray, alpha: float) -> float:
    """Share of replicates rejected at `alpha`; an undefined p-value (NaN) counts as not rejected."""
    return float(np.mean(np.nan_to_num(pvalues, nan=1.0) < alpha))


def replicate_tables(sim: SimulatedSurveys, replicate: int) -> tuple[pd.DataFrame, pd.Series]:
    """One replicate as the library's inputs: (answers: rater_id, image_id, correct; the model's 0/1 by image_id)."""
    rater, image = np.nonzero(sim.shown[replicate])
    answers = pd.DataFrame(
        {
            "rater_id": [f"r{r:03d}" for r in rater],
            "image_id": [f"i{i:03d}" for i in image],
            "correct": sim.correct[replicate, rater, image],
        }
    )
    ids = [f"i{i:03d}" for i in range(sim.model.shape[1])]
    return answers, pd.Series(sim.model[replicate], index=ids)
