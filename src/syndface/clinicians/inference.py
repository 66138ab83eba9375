"""Model versus clinicians: tests that are valid for a 0/1 model answer against rater answers.

The model answers each survey image once, right or wrong; the raters' answers give each image
a share correct. Three questions, three units:

1. Images (per age group and per survey): is the model's count of correct images larger than a
   random rater's would be on these images? Null: on every image, the model's answer is
   exchangeable with the raters' answers (it behaves like one more member of the panel that
   answered; the raters are taken as fixed, so the claim is about this panel). Given each image's
   total correct T_i among its m_i raters plus the model, the model is then right with
   probability T_i / (m_i + 1), independently over images, so its count X follows a
   Poisson-binomial distribution with those probabilities *exactly* (a conditional test, the
   within-image permutation of the model among the raters). `null="plug-in"` uses the raters'
   share k_i / m_i instead (the unconditional version; it ignores the noise in the shares and
   is slightly liberal, see the calibration tests).
   Two-sided p: the sum of the probabilities of every count no more likely than the observed
   one (scipy.stats.binomtest's rule; with equal probabilities it *is* binomtest).
2. Raters: is a clinician, on the images they saw, less accurate than the model on the same
   images? Each rater's accuracy on their images against the model's on those images; a paired
   t test over raters (mean difference) and an exact sign test (how many raters the model beats
   against how many beat it; ties dropped). The model's answers and the images are fixed here;
   the raters are the sample, so this is the test that generalises to clinicians.
3. Both at once (overall): a mixed-effects logistic regression of every answer, with a fixed
   effect for "answered by the model" and random intercepts for rater and image, so raters and
   images both count as samples (variance components from statsmodels' BinomialBayesMixedGLM,
   the model effect and its SE from the Laplace approximation at them; see `mixed_model_test`).

The paper's own test, a paired t test over images of `model (0/1) - share correct`, stays
available as `paper_paired_ttest`, labelled as the paper's. The sign-flip permutation test and
the Wilcoxon signed-rank test on the same per-image differences are not offered: under the null
those differences are not symmetric about 0 (the model's answer is 0 or 1), and both reject far
more often than alpha: 12-30% of true nulls at alpha .05 for groups of 6-10 images that 81-86%
of raters get right (tests/test_clinicians_calibration.py, bench/clinicians_calibration.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

NULLS = ("exchangeable", "plug-in")
TWO_SIDED_RERR = 1 + 1e-7  # scipy.stats.binomtest's relative tolerance for "no more likely"


# --- the Poisson-binomial count test ----------------------------------------------------------


def poisson_binomial_pmf(probabilities: np.ndarray) -> np.ndarray:
    """P(X = 0..n) for X the number of successes of independent Bernoulli(p_i); [..., n] -> [..., n + 1].

    Exact by convolution, one image at a time (O(n^2), vectorised over leading axes)."""
    p = np.asarray(probabilities, dtype=float)
    if np.any((p < 0) | (p > 1)):
        raise ValueError("probabilities must lie in [0, 1]")
    n = p.shape[-1]
    pmf = np.zeros((*p.shape[:-1], n + 1))
    pmf[..., 0] = 1.0
    for i in range(n):
        pi = p[..., i : i + 1]
        pmf[..., 1 : i + 2] = pmf[..., 1 : i + 2] * (1 - pi) + pmf[..., : i + 1] * pi
        pmf[..., 0] *= 1 - p[..., i]
    return pmf


def poisson_binomial_pvalues(observed, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(p_greater, p_less, p_two_sided) of observed counts [...] under Poisson-binomial(probabilities [..., n])."""
    pmf = poisson_binomial_pmf(probabilities)
    x = np.asarray(observed, dtype=np.int64)
    n = pmf.shape[-1] - 1
    if np.any((x < 0) | (x > n)):
        raise ValueError(f"observed counts must lie in 0..{n}")
    at_x = np.take_along_axis(pmf, x[..., None], axis=-1)
    # Both tails summed from their own end, so a p-value of 1e-12 keeps its digits.
    less = np.take_along_axis(np.cumsum(pmf, axis=-1), x[..., None], axis=-1)[..., 0]
    upper = np.flip(np.cumsum(np.flip(pmf, -1), axis=-1), -1)
    greater = np.take_along_axis(upper, x[..., None], axis=-1)[..., 0]
    two_sided = np.where(pmf <= at_x * TWO_SIDED_RERR, pmf, 0.0).sum(-1)
    clip = lambda v: np.clip(v, 0.0, 1.0)  # noqa: E731
    return clip(greater), clip(less), clip(two_sided)


def null_probabilities(model_correct, rater_correct, rater_n, null: str = "exchangeable") -> np.ndarray:
    """Per image, the probability that a model no better than the raters answers it correctly."""
    if null not in NULLS:
        raise ValueError(f"unknown null {null!r}; allowed: {', '.join(NULLS)}")
    x = np.asarray(model_correct, dtype=float)
    k = np.asarray(rater_correct, dtype=float)
    m = np.asarray(rater_n, dtype=float)
    if np.any(m < 1) or np.any(k < 0) or np.any(k > m):
        raise ValueError("every image needs at least one rater and 0 <= raters correct <= raters")
    if not np.all((x == 0) | (x == 1)):
        raise ValueError("the model's answer per image must be 0 (wrong) or 1 (right)")
    return (k + x) / (m + 1) if null == "exchangeable" else k / m


@dataclass(frozen=True)
class CountTest:
    n_images: int
    model_correct: int
    expected: float  # the model's expected count under the null
    p_greater: float
    p_less: float
    p_two_sided: float
    p_min_greater: float  # the smallest p_greater these images allow (all correct)

    def p(self, alternative: str) -> float:
        return {"greater": self.p_greater, "less": self.p_less, "two-sided": self.p_two_sided}[alternative]


def random_rater_test(model_correct, rater_correct, rater_n, null: str = "exchangeable") -> CountTest:
    """Poisson-binomial test of the model's count of correct images against a random rater's (module doc, 1)."""
    x = np.asarray(model_correct, dtype=float)
    if x.ndim != 1 or len(x) == 0:
        raise ValueError("need the model's answers on at least one image")
    q = null_probabilities(x, rater_correct, rater_n, null)
    count = int(x.sum())
    greater, less, two_sided = poisson_binomial_pvalues(count, q)
    if null == "exchangeable":  # the best case changes T_i: every image right
        q_best = null_probabilities(np.ones_like(x), rater_correct, rater_n, null)
    else:
        q_best = q
    return CountTest(
        n_images=len(x),
        model_correct=count,
        expected=float(q.sum()),
        p_greater=float(greater),
        p_less=float(less),
        p_two_sided=float(two_sided),
        p_min_greater=float(np.prod(q_best)),
    )


# --- the paper's per-image paired t test -----------------------------------------------------


@dataclass(frozen=True)
class PaperTTest:
    difference: float  # mean over images of model (0/1) - share correct
    difference_ci_low: float
    difference_ci_high: float
    t_statistic: float
    p_value: float


def paper_paired_ttest(model_correct, human_accuracy, level: float = 0.95) -> PaperTTest:
    """The paper's test: paired t over images of the model's 0/1 answer against the share of raters correct.

    Kept to reproduce the paper; images are its unit and the raters are taken as fixed. On a
    survey's 60-100 images it holds its level in simulation; within an age group (6-10 images)
    its differences are too skewed for a t test, so it is reported per survey only."""
    model, human = np.asarray(model_correct, float), np.asarray(human_accuracy, float)
    if len(model) < 2:
        raise ValueError("a paired t test needs at least two images")
    result = stats.ttest_rel(model, human)
    ci = result.confidence_interval(level)
    return PaperTTest(
        difference=float(np.mean(model - human)),
        difference_ci_low=float(ci.low),
        difference_ci_high=float(ci.high),
        t_statistic=float(result.statistic),
        p_value=float(result.pvalue),
    )


# --- raters as the unit -----------------------------------------------------------------------


def rater_accuracies(answers: pd.DataFrame, model_correct: pd.Series) -> pd.DataFrame:
    """Per rater: images answered, their accuracy, and the model's accuracy on the same images.

    answers: one row per rater answer with rater_id, image_id and correct (bool/0-1);
    model_correct: the model's 0/1 per image_id."""
    missing = [c for c in ("rater_id", "image_id", "correct") if c not in answers.columns]
    if missing:
        raise ValueError(f"answers lack column(s) {', '.join(missing)}")
    absent = sorted(set(answers["image_id"]) - set(model_correct.index))
    if absent:
        raise ValueError(f"no model answer for image(s) {', '.join(map(str, absent[:10]))}")
    frame = answers.assign(
        rater=answers["correct"].astype(float), model=model_correct.loc[answers["image_id"]].to_numpy(float)
    )
    table = frame.groupby("rater_id", sort=True).agg(
        n_images=("image_id", "size"), rater_accuracy=("rater", "mean"), model_accuracy=("model", "mean")
    )
    return table.reset_index()


@dataclass(frozen=True)
class RaterTests:
    n_raters: int
    rater_accuracy: float  # mean over raters
    model_accuracy: float  # mean over raters of the model's accuracy on each rater's images
    difference: float  # mean over raters of model - rater
    difference_ci_low: float
    difference_ci_high: float
    t_statistic: float
    p_ttest: float
    n_model_better: int
    n_rater_better: int
    n_ties: int
    p_sign: float


def rater_level_tests(per_rater: pd.DataFrame, alternative: str = "two-sided", level: float = 0.95) -> RaterTests:
    """Paired t test over raters of model - rater accuracy on the rater's own images, and the exact sign test.

    The sign test's null is that a clinician is as likely to beat the model on their images as
    to lose to it (binomtest(model better, better + worse, 0.5)); the t test's is a mean
    difference of 0. With fewer than two raters the t test is NaN."""
    model = per_rater["model_accuracy"].to_numpy(float)
    rater = per_rater["rater_accuracy"].to_numpy(float)
    d = model - rater
    better, worse = int(np.sum(d > 0)), int(np.sum(d < 0))
    p_sign = stats.binomtest(better, better + worse, 0.5, alternative=alternative).pvalue if better + worse else 1.0
    if len(d) >= 2 and np.ptp(d) > 0:
        result = stats.ttest_rel(model, rater, alternative=alternative)
        ci = result.confidence_interval(level)
        t, p_t, low, high = float(result.statistic), float(result.pvalue), float(ci.low), float(ci.high)
    else:
        t = p_t = low = high = float("nan")
    return RaterTests(
        n_raters=len(d),
        rater_accuracy=float(rater.mean()) if len(d) else float("nan"),
        model_accuracy=float(model.mean()) if len(d) else float("nan"),
        difference=float(d.mean()) if len(d) else float("nan"),
        difference_ci_low=low,
        difference_ci_high=high,
        t_statistic=t,
        p_ttest=p_t,
        n_model_better=better,
        n_rater_better=worse,
        n_ties=len(d) - better - worse,
        p_sign=float(p_sign),
    )


# --- both: a mixed-effects logistic model ----------------------------------------------------


@dataclass(frozen=True)
class MixedModelTest:
    log_odds_ratio: float  # model vs an average rater on an average image (posterior mean)
    log_odds_ratio_sd: float  # posterior SD
    z: float
    p_value: float  # two-sided, normal
    rater_sd: float  # posterior mean SD of the rater intercepts (logit scale)
    image_sd: float
    n_answers: int
    n_raters: int
    n_images: int


def _laplace_mode(
    design: np.ndarray, y: np.ndarray, prior_precision: np.ndarray, start: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mode of the logistic log-likelihood with N(0, 1/prior_precision) penalties, by Newton steps,
    and the inverse Hessian there (the Laplace approximation's covariance)."""
    theta = start.astype(float).copy()
    for _ in range(100):
        mu = 1 / (1 + np.exp(-(design @ theta)))
        hessian = design.T @ (design * (mu * (1 - mu))[:, None]) + np.diag(prior_precision)
        step = np.linalg.solve(hessian, design.T @ (y - mu) - prior_precision * theta)
        theta += step
        if np.max(np.abs(step)) < 1e-10:
            break
    mu = 1 / (1 + np.exp(-(design @ theta)))
    hessian = design.T @ (design * (mu * (1 - mu))[:, None]) + np.diag(prior_precision)
    return theta, np.linalg.inv(hessian)


def mixed_model_test(answers: pd.DataFrame, model_correct: pd.Series, fe_prior_sd: float = 3.0) -> MixedModelTest:
    """Logit P(correct) = b0 + b1 [answered by the model] + u_rater + v_image; z and p of b1.

    Rows are the raters' answers plus one row per image for the model. The model gets no rater
    intercept (it is one "rater", so its intercept would be b1 itself): b1 compares it with an
    average rater on an average image. statsmodels' BinomialBayesMixedGLM gives the variance
    components by variational Bayes (`fit_vb`; its Laplace fit `fit_map` is unusable here: the
    joint posterior mode sends both variances to 0 and it does not converge). The mean-field
    posterior SD of b1 is too small, as it ignores b1's correlation with the image intercepts
    (simulated paper-size surveys: 0.256 against 0.268-0.291 over replicates, 7-8% false
    positives at alpha .05), so b1 and its SE come from the Laplace approximation at the
    variational variance components instead: the mode of the penalised likelihood in (b, u, v)
    by Newton steps and the inverse of its Hessian, as lme4 computes fixed-effect standard
    errors (300 simulated surveys: SE 0.262 against 0.249 over replicates, 3.0-5.3% false
    positives; bench/clinicians_calibration.py). N(0, fe_prior_sd^2) priors keep b finite when
    the model is right on every image."""
    from statsmodels.genmod.bayes_mixed_glm import BinomialBayesMixedGLM
    from threadpoolctl import threadpool_limits

    missing = [c for c in ("rater_id", "image_id", "correct") if c not in answers.columns]
    if missing:
        raise ValueError(f"answers lack column(s) {', '.join(missing)}")
    images = pd.Index(sorted(set(answers["image_id"])))
    absent = images.difference(model_correct.index)
    if len(absent):
        raise ValueError(f"no model answer for image(s) {', '.join(map(str, absent[:10]))}")
    raters = pd.Index(sorted(set(answers["rater_id"])))
    n_answers = len(answers)
    y = np.concatenate([answers["correct"].to_numpy(float), model_correct.loc[images].to_numpy(float)])
    is_model = np.r_[np.zeros(n_answers), np.ones(len(images))]
    exog = np.column_stack([np.ones_like(y), is_model])
    rater_of = raters.get_indexer(answers["rater_id"])
    image_of = np.r_[images.get_indexer(answers["image_id"]), np.arange(len(images))]
    exog_vc = np.zeros((len(y), len(raters) + len(images)))
    exog_vc[np.arange(n_answers), rater_of] = 1.0
    exog_vc[np.arange(len(y)), len(raters) + image_of] = 1.0
    ident = np.r_[np.zeros(len(raters), dtype=int), np.ones(len(images), dtype=int)]
    # The matrices are small (hundreds of columns): BLAS threads only contend, 4x slower on a busy node.
    with threadpool_limits(1, user_api="blas"):
        vb = BinomialBayesMixedGLM(y, exog, exog_vc, ident, vcp_p=1.0, fe_p=fe_prior_sd).fit_vb()
        sd = np.exp(vb.vcp_mean)
        prior = np.r_[np.full(2, fe_prior_sd**-2), np.full(len(raters), sd[0] ** -2), np.full(len(images), sd[1] ** -2)]
        theta, covariance = _laplace_mode(np.hstack([exog, exog_vc]), y, prior, np.r_[vb.fe_mean, vb.vc_mean])
    b1, sd1 = float(theta[1]), float(np.sqrt(covariance[1, 1]))
    z = b1 / sd1
    return MixedModelTest(
        log_odds_ratio=b1,
        log_odds_ratio_sd=sd1,
        z=z,
        p_value=float(2 * stats.norm.sf(abs(z))),
        rater_sd=float(sd[0]),
        image_sd=float(sd[1]),
        n_answers=n_answers,
        n_raters=len(raters),
        n_images=len(images),
    )
