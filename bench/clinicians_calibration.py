"""False-positive rates of the model-vs-clinician tests under simulated nulls, old tests beside new.

    python bench/clinicians_calibration.py [--replicates 4000] [--wilcoxon-replicates 400] [--glmm-replicates 200]

Not a timing benchmark: it prints, per scenario, the share of replicates in which each test
rejects a true null at alpha = .05, with the Binomial upper bound a test of size .05 stays under
but for probability 1e-4. Scenarios: an age group of the paper (10 images, 30 raters seeing 5)
and of the demo (6 images, 32 raters seeing 5) at human accuracies .51-.86; a survey (100 or 60
images). Nulls (syndface.clinicians.calibration): `random_rater` (the model like a random member
of the panel) for the per-image tests, `population` (like the average clinician of the
population; differs only when raters differ in ability) for the mixed model and, to show what
fixing the raters costs, the count test; `fixed_model` for the rater-level tests. The Wilcoxon
test (scipy's default method, as the former code called it) and the mixed model are slow, so
they get fewer replicates.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small matrices: BLAS threads only contend

import numpy as np  # noqa: E402

from syndface.clinicians.calibration import (  # noqa: E402
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
from syndface.clinicians.inference import mixed_model_test  # noqa: E402
from syndface.permutations import rejection_bound  # noqa: E402
from syndface.seeding import rng  # noqa: E402

ALPHA = 0.05
GROUPS = {f"{size} group": design for size, design in GROUP_SIZES.items()}
SURVEYS = {f"{size} survey": design for size, design in SURVEY_SIZES.items()}


def row(name: str, rates: dict[str, tuple[float, int]]) -> str:
    return f"| {name} | " + " | ".join(f"{rate:.3f} ({n})" for rate, n in rates.values()) + " |"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--replicates", type=int, default=4000)
    p.add_argument("--wilcoxon-replicates", type=int, default=400)
    p.add_argument("--glmm-replicates", type=int, default=200)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    warnings.simplefilter("ignore")
    start = time.time()
    print(
        f"alpha {ALPHA}; a test of size <= alpha rejects at most {rejection_bound(args.replicates, ALPHA) / args.replicates:.3f} "
        f"of {args.replicates} replicates (Binomial bound, 1e-4); rates below with (replicates)\n"
    )
    columns = [
        "count test (exchangeable)",
        "count test (plug-in)",
        "former sign-flip",
        "former Wilcoxon",
        "paper's per-image t",
    ]
    columns += ["count test (population null)", "rater t (fixed model)", "rater sign (fixed model)"]
    print("| scenario | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    scenarios = [(g, level, 0.0, d) for g, d in GROUPS.items() for level in GROUP_LEVELS]
    scenarios += [(s, level, sd, d) for s, d in SURVEYS.items() for level, sd in SURVEY_LEVELS]
    for name, level, rater_sd, sizes in scenarios:
        design = Design(level, rater_sd=rater_sd, **sizes)
        null = simulate(design, "random_rater", args.replicates, rng(args.seed, "bench", name, level, rater_sd))
        fixed = simulate(design, "fixed_model", args.replicates, rng(args.seed, "bench-fixed", name, level, rater_sd))
        population = simulate(design, "population", args.replicates, rng(args.seed, "bench-pop", name, level, rater_sd))
        few = simulate(design, "random_rater", args.wilcoxon_replicates, rng(args.seed, "bench-w", name, level))
        rates = {
            "exchangeable": (rejection_rate(image_pvalues(null, "exchangeable"), ALPHA), args.replicates),
            "plug-in": (rejection_rate(image_pvalues(null, "plug-in"), ALPHA), args.replicates),
            "sign_flip": (
                (rejection_rate(image_pvalues(null, "sign_flip"), ALPHA), args.replicates)
                if design.n_images <= 16
                else (float("nan"), 0)
            ),
            "wilcoxon": (rejection_rate(image_pvalues(few, "wilcoxon"), ALPHA), args.wilcoxon_replicates),
            "paper_ttest": (rejection_rate(image_pvalues(null, "paper_ttest"), ALPHA), args.replicates),
            "population": (rejection_rate(image_pvalues(population, "exchangeable"), ALPHA), args.replicates),
            "rater_ttest": (rejection_rate(rater_pvalues(fixed, "rater_ttest"), ALPHA), args.replicates),
            "rater_sign": (rejection_rate(rater_pvalues(fixed, "rater_sign"), ALPHA), args.replicates),
        }
        label = f"{name}, human {level}" + (f", rater SD {rater_sd}" if rater_sd else "")
        print(row(label, rates), flush=True)

    if args.glmm_replicates:
        print(
            f"\nmixed model (population null, {args.glmm_replicates} replicates; bound "
            f"{rejection_bound(args.glmm_replicates, ALPHA) / args.glmm_replicates:.3f}):"
        )
        for name, level, rater_sd in (
            ("paper survey", 0.775, 0.0),
            ("paper survey", 0.593, 0.0),
            ("paper survey", 0.775, 0.5),
            ("demo survey", 0.775, 0.0),
        ):
            design = Design(level, rater_sd=rater_sd, **SURVEYS[name])
            sim = simulate(
                design, "population", args.glmm_replicates, rng(args.seed, "bench-glmm", name, level, rater_sd)
            )
            fits = [mixed_model_test(*replicate_tables(sim, r)) for r in range(args.glmm_replicates)]
            p = np.array([f.p_value for f in fits])
            b = np.array([f.log_odds_ratio for f in fits])
            sd = np.array([f.log_odds_ratio_sd for f in fits])
            print(
                f"  {name}, human {level}, rater SD {rater_sd}: rate {rejection_rate(p, ALPHA):.3f}; "
                f"SD of b1 over replicates {b.std():.3f} vs mean reported SD {sd.mean():.3f}",
                flush=True,
            )
    print(f"\n{time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
