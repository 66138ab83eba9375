"""Calibration of the model-vs-clinician tests by simulation, the check that would have caught Table 1's
former sign-flip test.

Under each test's null, in R replicates, a test of size <= alpha rejects at most
`rejection_bound(R, alpha)` times but for probability 1e-4 (the Binomial(R, alpha) upper
quantile: with R = 4000 and alpha = .05, 253 rejections, a rate of .063). Group sizes are the
paper's (10 images per age group, 15 raters per image) and the demo's (6 images, 32 raters
seeing 5 each); human accuracies span the paper's Table 1 (.51 to .86).
"""

from __future__ import annotations

import numpy as np
import pytest

from syndface.clinicians.calibration import (
    GROUP_LEVELS,
    GROUP_SIZES,
    SURVEY_LEVELS,
    SURVEY_SIZES,
    Design,
    image_pvalues,
    rater_pvalues,
    rejection_rate,
    replicate_tables,
    simulate,
)
from syndface.clinicians.inference import mixed_model_test
from syndface.permutations import rejection_bound
from syndface.seeding import rng

ALPHA = 0.05
R = 4000
BOUND = rejection_bound(R, ALPHA)


def rejections(pvalues: np.ndarray) -> int:
    return int(round(rejection_rate(pvalues, ALPHA) * len(pvalues)))


@pytest.mark.parametrize("group", GROUP_SIZES)
@pytest.mark.parametrize("level", GROUP_LEVELS)
def test_per_age_count_test_holds_its_level(group, level):
    sim = simulate(Design(level, **GROUP_SIZES[group]), "random_rater", R, rng(1, "calibration", group, level))
    for alternative in ("two-sided", "greater", "less"):
        p = image_pvalues(sim, "exchangeable", alternative)
        assert rejections(p) <= BOUND, (group, level, alternative, rejections(p) / R)


@pytest.mark.parametrize("group", GROUP_SIZES)
@pytest.mark.parametrize("level", GROUP_LEVELS)
def test_rater_level_tests_hold_their_level(group, level):
    sim = simulate(Design(level, **GROUP_SIZES[group]), "fixed_model", R, rng(1, "rater-calibration", group, level))
    for test in ("rater_ttest", "rater_sign"):
        for alternative in ("two-sided", "greater"):
            p = rater_pvalues(sim, test, alternative)
            assert rejections(p) <= BOUND, (group, level, test, alternative, rejections(p) / R)


@pytest.mark.parametrize("survey", SURVEY_SIZES)
@pytest.mark.parametrize("level,rater_sd", SURVEY_LEVELS)
def test_survey_level_tests_hold_their_level(survey, level, rater_sd):
    """The count test, the paper's per-image t test and the rater-level tests over a whole survey.
    With rater_sd > 0 the raters differ in ability; the model answers like the average rater."""
    design = Design(level, rater_sd=rater_sd, **SURVEY_SIZES[survey])
    replicates = 1000  # a survey is 10x a group; the bound below is for these replicates
    bound = rejection_bound(replicates, ALPHA)
    sim = simulate(design, "random_rater", replicates, rng(2, "survey-calibration", survey, level, rater_sd))
    for test in ("exchangeable", "paper_ttest"):
        assert rejections(image_pvalues(sim, test)) <= bound, (survey, level, test)
    fixed = simulate(design, "fixed_model", replicates, rng(3, "survey-calibration", survey, level, rater_sd))
    for test in ("rater_ttest", "rater_sign"):
        assert rejections(rater_pvalues(fixed, test)) <= bound, (survey, level, test)


def test_mixed_model_holds_its_level_on_small_surveys():
    """A coarse check (each fit takes ~0.2 s): 60 surveys of 40 images, 12 raters seeing 20 each.
    bench/clinicians_calibration.py runs it at the paper's size with more replicates."""
    replicates = 60
    design = Design(0.7, n_images=40, n_raters=12, per_rater=20, spread=0.8)
    sim = simulate(design, "population", replicates, rng(7, "mixed-calibration"))
    p = np.array([mixed_model_test(*replicate_tables(sim, r)).p_value for r in range(replicates)])
    assert rejections(p) <= rejection_bound(replicates, ALPHA), rejections(p)


@pytest.mark.parametrize("level", [0.81, 0.86])
@pytest.mark.parametrize("group", GROUP_SIZES)
def test_former_sign_flip_and_per_image_t_tests_fail_the_same_check(group, level):
    """Why they were replaced: at the paper's other-condition accuracies (.81-.86) the sign-flip test
    of model (0/1) - share correct rejects a true null 16-30% of the time (bench/clinicians_calibration.py)."""
    sim = simulate(Design(level, **GROUP_SIZES[group]), "random_rater", R, rng(1, "calibration", group, level))
    assert rejections(image_pvalues(sim, "sign_flip")) > BOUND
    assert rejections(image_pvalues(sim, "paper_ttest")) > BOUND  # hence per survey only


def test_count_test_detects_a_model_better_than_the_raters():
    """A model right on nearly every image of a group the raters find hard; then a whole survey."""
    sim = simulate(Design(0.51, **GROUP_SIZES["paper"]), "random_rater", R, rng(4, "power"), model_shift=4.0)
    assert rejection_rate(image_pvalues(sim, "exchangeable", "greater"), ALPHA) > 0.9
    survey = simulate(Design(0.775, **SURVEY_SIZES["paper"]), "random_rater", 500, rng(5, "power"), 1.5)
    assert rejection_rate(image_pvalues(survey, "exchangeable"), ALPHA) > 0.9  # the paper's 77.5 vs 93%


def test_rater_level_tests_detect_raters_worse_than_the_model():
    sim = simulate(Design(0.7, **GROUP_SIZES["paper"]), "fixed_model", R, rng(6, "power"), model_shift=1.0)
    assert rejection_rate(rater_pvalues(sim, "rater_ttest"), ALPHA) > 0.9
    assert rejection_rate(rater_pvalues(sim, "rater_sign"), ALPHA) > 0.8


def test_rejection_bound_is_the_binomial_quantile():
    assert rejection_bound(4000, 0.05) == 253
    assert rejection_bound(1000, 0.05) == 77
    with pytest.raises(ValueError, match="between 1 and n_images"):
        Design(0.7, n_images=5, per_rater=6)
