"""Clinicians versus the model (the paper's "Comparison to Clinicians" and Table 1).

- `survey`: the survey long table (rater_id, survey, image_id, answer) and its checks.
- `qualtrics`: `syndface import-survey`, a Qualtrics CSV export -> long table + rejects.
- `simulate`: `syndface simulate-survey`, SIMULATED raters for the demo cohort.
- `paper`: the paper's clinician accuracies (Table 1, Human), with their source.
- `inference`: the valid tests: exact count test, rater-level tests, mixed model, the paper's t.
- `tables`: clinicians.tsv and Table 1 from `inference`, with their header text.
- `calibration`: simulated surveys that check the tests' size and power.
- `compare`: `syndface compare-clinicians`: the per-image table, the best fake variant, and the outputs of `tables`.
- `figure`: human vs model accuracy by age group.
"""
