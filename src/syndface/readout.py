"""The model's two-way answer to a clinician survey, one implementation for evaluate-classifier and
compare-clinicians.

Each survey asked one question of its images: the syndrome, or `other` conditions. The model
answers the same question with its four-class output as the paper did (Comparison to Clinical
Geneticists): the syndrome when P(syndrome) > P(control), else `other` (a tie is `other`).

Each survey showed its own images: the WS survey 50 WS and 50 control images, the 22q survey
50 22q and 50 control images, the two control sets overlapping (81 test controls in all;
notes/paper-code-facts.md section 1). So a survey's readout is over that survey's images, the
ones its answer table lists, not over every test control: a control shown only in the 22q
survey is no question of the WS survey. Without survey tables (the classifier's evaluation,
before any survey exists) the readout falls back to every cohort test image of the syndrome
and of control, which is the survey set only where the surveys showed all of them (the demo's
simulated surveys do).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from syndface.taxonomy import SURVEYS

OTHER = "other"
READOUT_COLUMNS = (
    "survey",
    "image_id",
    "disease",
    "age_group",
    "p_syndrome",
    "p_control",
    "truth",
    "answer",
    "correct",
)


def truth_of(survey: str, disease: str) -> str:
    """The correct answer for an image of `disease` in `survey` (its syndrome, or `other` for controls)."""
    syndrome, control = SURVEYS[survey]
    if disease == syndrome:
        return syndrome
    if disease == control:
        return OTHER
    raise ValueError(f"a {disease!r} image cannot be in the {survey} survey (only {syndrome} and {control} images are)")


def survey_image_ids(answers: pd.DataFrame) -> dict[str, list[str]]:
    """The images each survey showed, in first-answered order, from the long answer table (survey, image_id)."""
    return {survey: list(dict.fromkeys(part["image_id"])) for survey, part in answers.groupby("survey", sort=False)}


def survey_readout(predictions: pd.DataFrame, survey: str, image_ids: Iterable[str] | None = None) -> pd.DataFrame:
    """One row per image of `survey` (READOUT_COLUMNS): its truth, the two probabilities compared and the
    model's answer. `image_ids`: the images the survey showed; None = every cohort test image of the
    syndrome and of control in `predictions` (see the module notes)."""
    if survey not in SURVEYS:
        raise ValueError(f"unknown survey {survey!r}; allowed: {', '.join(SURVEYS)}")
    syndrome, control = SURVEYS[survey]
    needed = ("image_id", "disease", "age_group", f"p_{syndrome}", f"p_{control}")
    missing = [c for c in (*needed, *(("source",) if image_ids is None else ())) if c not in predictions.columns]
    if missing:
        raise ValueError(f"predictions lack column(s) {', '.join(missing)}; they come from `syndface predict`")
    if image_ids is None:
        images = predictions[(predictions["source"] == "cohort") & predictions["disease"].isin([syndrome, control])]
    else:
        image_ids = list(image_ids)
        absent = sorted(set(image_ids) - set(predictions["image_id"]))
        if absent:
            raise ValueError(f"predictions lack {survey} survey image(s) {', '.join(absent[:10])}")
        images = predictions.set_index("image_id").loc[image_ids].reset_index()
    truth = np.array([truth_of(survey, d) for d in images["disease"]], dtype=object)
    p_syndrome, p_control = images[f"p_{syndrome}"].to_numpy(float), images[f"p_{control}"].to_numpy(float)
    answer = np.where(p_syndrome > p_control, syndrome, OTHER).astype(object)
    return pd.DataFrame(
        {
            "survey": survey,
            "image_id": images["image_id"].to_numpy(),
            "disease": images["disease"].to_numpy(),
            "age_group": images["age_group"].to_numpy(),
            "p_syndrome": p_syndrome,
            "p_control": p_control,
            "truth": truth,
            "answer": answer,
            "correct": answer == truth,
        },
        columns=list(READOUT_COLUMNS),
    )
