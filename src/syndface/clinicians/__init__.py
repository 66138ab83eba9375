"""Clinicians versus the model (the paper's "Comparison to Clinicians" and Table 1).

- `survey`: the survey long table (rater_id, survey, image_id, answer) and its checks.
- `qualtrics`: `syndface import-survey`, a Qualtrics CSV export -> long table + rejects.
- `simulate`: `syndface simulate-survey`, SIMULATED raters for the demo cohort.
- `paper`: the paper's clinician accuracies (Table 1, Human), with their source.
- `stats`: paired permutation test, paired t-test, Wilcoxon, Benjamini-Hochberg, Wilson and bootstrap intervals.
- `compare`: `syndface compare-clinicians`, per image and per age group statistics and Table 1.
- `figure`: human vs model accuracy by age group.
"""
