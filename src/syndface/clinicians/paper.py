"""The paper's clinician accuracies: the "Human" column of Table 1 (Duong et al. 2022).

Source: Duong et al., Front. Genet. 13:864092 (2022), Table 1 ("Average accuracy over all
10 test images in each age group. Each test image was viewed and classified by 15 clinical
geneticists."). Keys are (survey, truth, age_group), truth being the survey's syndrome or
`other` (the "Other conditions" rows). The table prints 0.0807 for WS adolescents; the text
gives 80.7% ("the greatest accuracy with adolescents (80.7%)"), and only 0.807 reproduces
the paper's overall 77.5% for WS, so 0.807 is used. The means of each survey's ten values
are the paper's overall human accuracies: 77.5% (WS) and 59.3% (22q).
"""

from __future__ import annotations

from syndface.clinicians.survey import OTHER
from syndface.taxonomy import AGE_GROUPS

# Values in the order of AGE_GROUPS (infant ... older adult), as the paper lists them.
_COLUMNS = {
    ("22q", "22q"): (0.540, 0.527, 0.673, 0.613, 0.507),
    ("22q", OTHER): (0.753, 0.600, 0.520, 0.600, 0.593),
    ("WS", "WS"): (0.673, 0.707, 0.807, 0.740, 0.713),
    ("WS", OTHER): (0.840, 0.767, 0.860, 0.787, 0.860),
}

PAPER_HUMAN_ACCURACY: dict[tuple[str, str, str], float] = {
    (survey, truth, age): value
    for (survey, truth), values in _COLUMNS.items()
    for age, value in zip(AGE_GROUPS, values, strict=True)
}

# The paper's overall clinician accuracy per survey (Results, "Comparison to Clinicians").
PAPER_OVERALL_HUMAN_ACCURACY: dict[str, float] = {"WS": 0.775, "22q": 0.593}
