"""Evaluation beyond the paper (issue 17): what a clinician needs before trusting a score.

The paper reports accuracy only; its open peers report more (GestaltMatcher: results by age, sex
and ancestry and a nearest-neighbour gallery for unseen syndromes; PhenoScore: Brier scores;
DeepGestalt: top-k). One command per module, each a rule of workflow/rules/evaluation.smk,
every output under results/evaluation/:

- `out_of_fold`: predict-out-of-fold, each fold model on its own validation fold;
- `calibration`: calibrate-classifier, Brier, ECE, reliability diagram, temperature scaling;
- `subgroups`: evaluate-subgroups, recall and specificity by age group, sex and ancestry;
- `readouts`: evaluate-readouts, top-k, macro F1, accuracy beside the paper's Average, per image
  and per subject;
- `tta`: predict-tta, test-time augmentation (Table 2's "<variant> (TTA)" column);
- `features`: export-features, the fold models' penultimate features;
- `gallery`: match-gallery, k-nearest-neighbour readout against the training gallery;
- `held_out`, `open_set`: make-held-out-folds and place-held-out, a disease held out of training;
- `summary`: summarise-evaluation, one row per variant;
- `metrics`: the definitions (scikit-learn and scipy where they have them).
"""
