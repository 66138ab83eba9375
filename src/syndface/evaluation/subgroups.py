"""`syndface evaluate-subgroups`: does the model work as well for every group of faces?

As GestaltMatcher reports by age, sex and ancestry: from one variant's test predictions and the
manifest, per subgroup (`age_group` always; `sex` and `ancestry` where the manifest carries them,
FairFace's gender and race, or the demo's; an empty value counts as `unknown`):
- `recall` of each class: its images predicted as it (for `unaffected`: the unaffected faces
  called unaffected, i.e. the specificity against every syndrome at once);
- `specificity` of each syndrome on unaffected faces: the unaffected faces not called that
  syndrome.
Every value is a proportion with its Clopper-Pearson interval and its cell size `n` beside it;
cells with fewer than `min_cell_size` images are flagged `small`, never hidden.

Outputs (--out-dir): subgroups.tsv and recall_by_age.png (recall per age group and disease with
intervals; small cells drawn hollow).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from syndface.evaluation.options import SubgroupOptions
from syndface.intervals import interval_note, proportion_interval
from syndface.io import read_tsv, save_figure, write_tsv
from syndface.log import get_logger
from syndface.options import add_options_argument
from syndface.taxonomy import AFFECTED, AGE_GROUPS, DISEASES

log = get_logger("syndface.evaluation")

ATTRIBUTES = ("age_group", "sex", "ancestry")
UNKNOWN = "unknown"


def with_attributes(predictions: pd.DataFrame, manifest: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The predictions with the manifest's subgroup columns (empty -> unknown), and which attributes exist."""
    present = [a for a in ATTRIBUTES[1:] if a in manifest.columns and manifest[a].notna().any()]
    missing = sorted(set(predictions["image_id"]) - set(manifest["image_id"]))
    if missing:
        raise ValueError(f"{len(missing)} predicted image(s) are not in the manifest (e.g. {', '.join(missing[:3])})")
    table = predictions.merge(manifest[["image_id", *present]], on="image_id", how="left", validate="one_to_one")
    for attribute in present:
        table[attribute] = table[attribute].fillna(UNKNOWN).astype(str)
    return table, ["age_group", *present]


def group_order(attribute: str, values) -> list[str]:
    values = set(values)
    if attribute == "age_group":
        return [a for a in AGE_GROUPS if a in values]
    return sorted(values - {UNKNOWN}) + ([UNKNOWN] if UNKNOWN in values else [])


def subgroup_table(table: pd.DataFrame, attributes: list[str], min_cell: int, level: float = 0.95) -> pd.DataFrame:
    rows = []
    for attribute in attributes:
        for group in group_order(attribute, table[attribute]):
            part = table[table[attribute] == group]
            for c in DISEASES:
                images = part[part["disease"] == c]
                if len(images):
                    rows.append((attribute, group, c, "recall", len(images), int((images["pred"] == c).sum())))
            unaffected = part[part["disease"] == "unaffected"]
            if len(unaffected):
                for c in AFFECTED:
                    rows.append(
                        (attribute, group, c, "specificity", len(unaffected), int((unaffected["pred"] != c).sum()))
                    )
    out = pd.DataFrame(rows, columns=["attribute", "group", "class", "measure", "n", "correct"])
    out["value"] = out["correct"] / out["n"]
    out["ci_low"], out["ci_high"] = proportion_interval(out["correct"].to_numpy(), out["n"].to_numpy(), level)
    out["small"] = out["n"] < min_cell
    return out


def recall_by_age_figure(table: pd.DataFrame, title: str, min_cell: int):
    """Recall per age group, one panel per disease, Clopper-Pearson intervals, n under each group."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    recall = table[(table["attribute"] == "age_group") & (table["measure"] == "recall")]
    fig, axes = plt.subplots(1, len(DISEASES), figsize=(3.0 * len(DISEASES), 3.4), sharey=True, layout="constrained")
    x = np.arange(len(AGE_GROUPS))
    for ax, disease in zip(axes, DISEASES):
        part = recall[recall["class"] == disease].set_index("group").reindex(AGE_GROUPS)
        shown = part["n"].notna().to_numpy()
        small = part["small"].fillna(False).to_numpy(bool)
        values = part["value"].to_numpy(float)
        yerr = np.vstack([values - part["ci_low"].to_numpy(float), part["ci_high"].to_numpy(float) - values])
        for keep, face in ((shown & ~small, "tab:blue"), (shown & small, "white")):
            if keep.any():
                ax.errorbar(x[keep], values[keep], yerr=yerr[:, keep], fmt="o", color="tab:blue", mfc=face, capsize=3)
        counts = ["" if np.isnan(n) else f"n={int(n)}" for n in part["n"].to_numpy(float)]
        ax.set_xticks(x, [a.replace("_", "\n") + "\n" + n for a, n in zip(AGE_GROUPS, counts)], fontsize=7)
        ax.set_title(disease)
        ax.set_ylim(-0.02, 1.05)
        ax.grid(alpha=0.3, axis="y")
    axes[0].set_ylabel("recall (95% Clopper-Pearson)")
    marker = {"marker": "o", "color": "tab:blue", "ls": ""}
    handles = [Line2D([], [], mfc="tab:blue", **marker), Line2D([], [], mfc="white", **marker)]
    fig.legend(handles, [f"n >= {min_cell}", f"n < {min_cell} (small)"], loc="outside upper right", ncols=2, fontsize=8)
    fig.suptitle(f"{title}: recall by age group", fontsize=10, x=0.02, ha="left")
    return fig


def main(argv: list[str], prog: str = "syndface evaluate-subgroups") -> int:
    p = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--predictions", required=True, help="results/predictions/<variant>/test.tsv")
    p.add_argument("--manifest", required=True, help="results/cohort/manifest.tsv (sex, ancestry where it has them)")
    add_options_argument(p, SubgroupOptions)
    p.add_argument("--title", default=None, help="figure title (default: the variant's folder name)")
    p.add_argument("--out-dir", required=True, help="results/evaluation/<variant>")
    args = p.parse_args(argv)
    min_cell = args.options.min_cell_size
    title = args.title or Path(args.predictions).parent.name
    table, attributes = with_attributes(read_tsv(args.predictions), read_tsv(args.manifest))
    out = subgroup_table(table, attributes, min_cell)
    absent = [a for a in ATTRIBUTES if a not in attributes]
    absent_note = f" (the manifest has no {'/'.join(absent)})" if absent else ""
    header = [
        f"{title}: recall per class and specificity of each syndrome on unaffected faces, by "
        f"{', '.join(attributes)}{absent_note}; unit: the test image",
        f"value = correct / n; {interval_note('clopper-pearson')}; small = fewer than {min_cell} images (shown, not hidden)",
    ]
    out_dir = Path(args.out_dir)
    write_tsv(out.round(4), out_dir / "subgroups.tsv", header_lines=header)
    save_figure(recall_by_age_figure(out, title, min_cell), out_dir / "recall_by_age.png")
    log.info("%s: %d subgroup cells over %s, %d small", title, len(out), ", ".join(attributes), int(out["small"].sum()))
    return 0
