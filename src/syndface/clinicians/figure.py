"""Human versus model accuracy by age group: one panel per survey and truth, points with 95% intervals."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from syndface.clinicians.survey import OTHER
from syndface.taxonomy import AGE_GROUPS, SURVEYS

MARKERS = ("s", "^", "D", "v", "P", "X")


def _errorbar(ax, x, rows: pd.DataFrame, prefix: str, **style) -> None:
    y = rows[f"{prefix}_accuracy"].to_numpy()
    # A percentile interval need not contain its point estimate exactly; never draw a negative bar.
    yerr = np.clip([y - rows[f"{prefix}_ci_low"].to_numpy(), rows[f"{prefix}_ci_high"].to_numpy() - y], 0, None)
    ax.errorbar(x, y, yerr=yerr, linestyle="none", capsize=3, **style)


def plot_accuracy_by_age(groups: pd.DataFrame, variants: list[str], simulated: bool):
    """Figure from `tables.group_statistics` rows: human (black) and each variant's model per age group."""
    rows = groups[groups["level"] == "age_group"]
    fig, axes = plt.subplots(2, len(SURVEYS), figsize=(4.5 * len(SURVEYS), 7), sharex=True, sharey=True, squeeze=False)
    offsets = [0.15 * (k - len(variants) / 2) for k in range(len(variants) + 1)]
    for j, survey in enumerate(SURVEYS):
        for i, truth in enumerate((survey, OTHER)):
            ax = axes[i, j]
            panel = rows[(rows["survey"] == survey) & (rows["truth"] == truth)]
            human = panel[panel["variant"] == variants[0]].set_index("age_group").reindex(AGE_GROUPS)
            x = range(len(AGE_GROUPS))
            _errorbar(
                ax,
                [v + offsets[0] for v in x],
                human,
                "human",
                color="black",
                marker="o",
                label="simulated raters" if simulated else "clinicians",
            )
            for k, variant in enumerate(variants):
                model = panel[panel["variant"] == variant].set_index("age_group").reindex(AGE_GROUPS)
                _errorbar(
                    ax,
                    [v + offsets[k + 1] for v in x],
                    model,
                    "model",
                    color=f"C{k}",
                    marker=MARKERS[k % len(MARKERS)],
                    label=f"model ({variant})",
                )
            ax.axhline(0.5, color="grey", linewidth=0.8, linestyle=":")
            ax.set_title(f"{survey} survey: {'other conditions' if truth == OTHER else survey} images")
            ax.set_ylim(0, 1.05)
            ax.set_xticks(list(x), [a.replace("_", " ") for a in AGE_GROUPS], rotation=30)
            if j == 0:
                ax.set_ylabel("accuracy (95% interval)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False)
    fig.suptitle("Clinicians vs model by age group" + (" (SIMULATED raters, not clinicians)" if simulated else ""))
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig
