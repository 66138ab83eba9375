"""`syndface simulate-survey`: SIMULATED clinician answers for the demo cohort (it has no clinicians).

Follows the paper's survey design: per survey (WS, 22q) the test images of the syndrome and of
the other conditions; each rater sees `images_per_rater` syndrome images (the same number from
each age group) and as many age-matched other-condition images. A rater answers an image
correctly with that image's probability; the images of one survey x truth x age group get
probabilities spread around the paper's clinician accuracy for the group (Table 1, Human;
`syndface.clinicians.paper`) on the logit scale, shifted so that their mean is exactly that
accuracy. The spread makes some images harder than others, as real images are. Every rater
draws from its own seeded stream, so adding raters leaves the earlier ones unchanged.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit, logit

from syndface.clinicians.options import SimulateOptions
from syndface.clinicians.paper import PAPER_HUMAN_ACCURACY
from syndface.clinicians.survey import OTHER, SURVEY_COLUMNS
from syndface.io import read_tsv, write_tsv
from syndface.log import get_logger
from syndface.options import add_options_argument
from syndface.readout import truth_of
from syndface.seeding import rng
from syndface.taxonomy import AGE_GROUPS, SURVEYS

log = get_logger("syndface.clinicians")

SIMULATED_NOTE = (
    "SIMULATED survey: these answers come from simulated raters (syndface simulate-survey), not from clinicians; "
    "their accuracy per survey x truth x age group follows Duong et al. 2022, Table 1 (Human)"
)


def survey_images(manifest: pd.DataFrame, survey: str) -> pd.DataFrame:
    """The test images a survey shows (its syndrome and the other conditions), with their truth."""
    syndrome, control = SURVEYS[survey]
    images = manifest[(manifest["split"] == "test") & manifest["disease"].isin([syndrome, control])]
    images = images[["image_id", "disease", "age_group"]].sort_values("image_id").reset_index(drop=True)
    images["truth"] = [truth_of(survey, d) for d in images["disease"]]
    return images


def image_probabilities(target: float, n: int, spread: float, gen: np.random.Generator) -> np.ndarray:
    """`n` per-image probabilities of a correct answer whose mean is exactly `target`."""
    offsets = gen.normal(0.0, spread, n) if spread > 0 else np.zeros(n)
    base = logit(target)
    shift = brentq(lambda s: expit(base + s + offsets).mean() - target, -50.0, 50.0) if spread > 0 else 0.0
    return expit(base + shift + offsets)


def simulate_survey(
    manifest: pd.DataFrame, survey: str, n_raters: int, images_per_rater: int, spread: float, seed: int
) -> pd.DataFrame:
    """The long table of one simulated survey: `n_raters` raters, each answering 2 x `images_per_rater` images."""
    if images_per_rater % len(AGE_GROUPS):
        raise ValueError(
            f"--images-per-rater must be a multiple of {len(AGE_GROUPS)} (the same number per age group), got {images_per_rater}"
        )
    per_age = images_per_rater // len(AGE_GROUPS)
    images = survey_images(manifest, survey)
    groups = {}
    for truth in (survey, OTHER):
        for age in AGE_GROUPS:
            group = images[(images["truth"] == truth) & (images["age_group"] == age)].reset_index(drop=True)
            if group.empty:
                raise ValueError(
                    f"no {truth} test image of age group {age} for the {survey} survey; the manifest's test split needs every group"
                )
            if len(group) < per_age:
                log.warning(
                    "%s survey: only %d %s %s test images; each rater sees all of them instead of %d",
                    survey,
                    len(group),
                    truth,
                    age,
                    per_age,
                )
            gen = rng(seed, "simulate-survey", survey, truth, age, "difficulty")
            p_correct = image_probabilities(PAPER_HUMAN_ACCURACY[(survey, truth, age)], len(group), spread, gen)
            groups[(truth, age)] = (group["image_id"].to_numpy(), p_correct)

    raters, shown_ids, answers = [], [], []
    for r in range(n_raters):
        gen = rng(seed, "simulate-survey", survey, "rater", r)
        for (truth, _), (image_ids, p_correct) in groups.items():
            shown = np.sort(gen.choice(len(image_ids), size=min(per_age, len(image_ids)), replace=False))
            correct = gen.random(len(shown)) < p_correct[shown]
            raters += [f"sim_{survey}_{r + 1:03d}"] * len(shown)
            shown_ids.append(image_ids[shown])
            answers.append(np.where(correct, truth, OTHER if truth == survey else survey))
    answers = pd.DataFrame(
        {
            "rater_id": raters,
            "survey": survey,
            "image_id": np.concatenate(shown_ids),
            "answer": np.concatenate(answers),
        },
        columns=list(SURVEY_COLUMNS),
    )
    answers["simulated"] = True
    return answers


def main(argv: list[str], prog: str = "syndface simulate-survey") -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--manifest", required=True, help="results/cohort/manifest.tsv (its test split is the survey set)"
    )
    add_options_argument(parser, SimulateOptions)
    parser.add_argument("--surveys", nargs="+", default=list(SURVEYS), choices=list(SURVEYS))
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    opts = args.options

    manifest = read_tsv(args.manifest)
    answers = pd.concat(
        [
            simulate_survey(manifest, s, opts.raters, opts.images_per_rater, opts.image_spread, opts.seed)
            for s in args.surveys
        ],
        ignore_index=True,
    )
    write_tsv(answers, args.out, header_lines=[SIMULATED_NOTE])
    for survey, part in answers.groupby("survey"):
        log.info("SIMULATED %s survey: %d raters, %d answers", survey, part["rater_id"].nunique(), len(part))
    return 0
