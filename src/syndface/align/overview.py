"""`syndface plot-cohort-overview`: a grid of aligned faces, diseases (rows) x age groups (columns).

Each cell shows up to `--per-cell` aligned images of that group, drawn at random with a seed,
and the group's count of aligned images, so the figure also shows the cohort's imbalance.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from syndface.align.options import OverviewOptions
from syndface.images import read_resized
from syndface.io import read_tsv, save_figure
from syndface.options import add_options_argument
from syndface.seeding import rng
from syndface.taxonomy import AGE_GROUPS, DISEASES

GAP = 2  # pixels between the faces of one cell


def pick_examples(aligned: pd.DataFrame, per_cell: int, seed: int) -> dict[tuple[str, str], pd.DataFrame]:
    """Up to `per_cell` rows per (disease, age_group), drawn without replacement, in manifest order."""
    picks = {}
    for (disease, age_group), group in aligned.groupby(["disease", "age_group"], sort=False):
        chosen = rng(seed, "overview", disease, age_group).choice(
            len(group), size=min(per_cell, len(group)), replace=False
        )
        picks[(disease, age_group)] = group.iloc[np.sort(chosen)]
    return picks


def cell_strip(paths: list[str], thumb: int) -> np.ndarray:
    """The faces of one cell side by side on a white strip."""
    strip = np.full((thumb, len(paths) * (thumb + GAP) - GAP, 3), 255, dtype=np.uint8)
    for k, path in enumerate(paths):
        strip[:, k * (thumb + GAP) : k * (thumb + GAP) + thumb] = read_resized(path, thumb)
    return strip


def plot_overview(aligned: pd.DataFrame, per_cell: int, seed: int, thumb: int = 96):
    """The matplotlib figure of the grid (rows DISEASES, columns AGE_GROUPS)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    picks = pick_examples(aligned, per_cell, seed)
    counts = aligned.groupby(["disease", "age_group"]).size()
    fig, axes = plt.subplots(
        len(DISEASES),
        len(AGE_GROUPS),
        figsize=(1.0 * per_cell * len(AGE_GROUPS) + 1, 1.15 * len(DISEASES) + 0.6),
        squeeze=False,
    )
    for r, disease in enumerate(DISEASES):
        for c, age_group in enumerate(AGE_GROUPS):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            group = picks.get((disease, age_group))
            if group is None:
                ax.text(0.5, 0.5, "no images", ha="center", va="center", transform=ax.transAxes, color="grey")
            else:
                ax.imshow(cell_strip(list(group["aligned_path"]), thumb))
            ax.set_title(f"n = {counts.get((disease, age_group), 0)}", fontsize=7, pad=2)
            if c == 0:
                ax.set_ylabel(disease, fontsize=10)
            if r == 0:
                ax.annotate(
                    age_group.replace("_", " "),
                    (0.5, 1.3),
                    xycoords="axes fraction",
                    ha="center",
                    va="bottom",
                    fontsize=10,
                )
    fig.suptitle("Aligned faces by disease (rows) and age group (columns)", fontsize=11, y=1.02)
    fig.tight_layout()
    return fig


def main(argv: list[str], prog: str = "syndface plot-cohort-overview") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("--report", required=True, help="results/aligned/report.tsv")
    parser.add_argument("--manifest", required=True, help="results/cohort/manifest.tsv")
    parser.add_argument("--per-cell", type=int, default=3, help="faces shown per disease x age group")
    add_options_argument(parser, OverviewOptions)
    parser.add_argument("--out", required=True, help="figure path (results/cohort/overview.png)")
    args = parser.parse_args(argv)

    report = read_tsv(args.report)
    ok = report.loc[report["status"] == "ok", ["image_id", "aligned_path"]]
    aligned = read_tsv(args.manifest).merge(ok, on="image_id", how="inner")
    if aligned.empty:
        raise SystemExit(f"{args.report} lists no successfully aligned image: nothing to show")
    save_figure(plot_overview(aligned, args.per_cell, args.options.seed), args.out)
    return 0
