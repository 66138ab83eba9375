"""`syndface fake-fidelity`: does each fake carry the label it was rendered with? (beyond the paper)

Judge: the fold's real-only classifier (results/classifier/real/fold{k}/model.pt). It was trained
on exactly the real images fold k's GAN learned from (folds != k), so it asks whether the GAN
reproduced the disease signal present in its own data, with no model that saw other folds'
images; the fold ensemble would mix in models trained on fold k itself and blur the per-fold
picture. Fakes are resized to the classifier's input size as they are when they train it.

Reference: the fold's held-out real images (fold k: seen by neither that GAN nor that classifier)
taken from the GAN-resolution cache and resized the same way, so `real_share_intended` is what
the classifier manages at the GAN's resolution; a fake set near it carries the label as well as
real images of that size do, one near 1/4 (chance) carries none.

Output (one TSV per fake type), one row per fold (and `all` folds pooled) x intended disease x
age group (x blend partner for blends): n, share_intended (argmax = the intended disease),
mean_p_intended (mean probability of the intended, for blends the main, disease), for blends c
(the label weight on the main disease) and mean_p_blend_with (probability of the partner), then
the real reference (real_n, real_share_intended, real_mean_p_intended). A heat map of the pooled
share_intended next to the reference goes to --figure.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from syndface.io import read_tsv, save_figure, write_tsv
from syndface.log import get_logger
from syndface.options import add_options_argument
from syndface.taxonomy import AFFECTED, AGE_GROUPS, DISEASES

log = get_logger("syndface.gan.fidelity")

KEYS = ["fold", "disease", "age_group", "blend_with"]


@torch.no_grad()
def probabilities(model: torch.nn.Module, images: np.ndarray, device: torch.device, batch: int = 64) -> np.ndarray:
    """Softmax [N, 4] of uint8 NHWC images already at the classifier's size."""
    from syndface.classify.model import preprocess

    out = [
        torch.softmax(model(preprocess(torch.from_numpy(np.ascontiguousarray(images[i : i + batch])), device)), 1)
        for i in range(0, len(images), batch)
    ]
    return torch.cat(out).float().cpu().numpy() if out else np.zeros((0, len(DISEASES)), np.float32)


def resized(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 NHWC images resized (Lanczos, as syndface.align.cache.read_resized) to size x size."""
    from PIL import Image

    if images.shape[1] == size:
        return np.asarray(images)
    return np.stack([np.asarray(Image.fromarray(np.asarray(im)).resize((size, size), Image.LANCZOS)) for im in images])


def _partners(table: pd.DataFrame) -> pd.Series:
    """The blend partner of each row ('' when not a blend; read_tsv gives NaN for empty cells)."""
    column = table["blend_with"] if "blend_with" in table else pd.Series([""] * len(table), index=table.index)
    return column.map(lambda v: v if isinstance(v, str) else "")


def verdicts(table: pd.DataFrame, probs: np.ndarray) -> pd.DataFrame:
    """Per image: p_<class>, pred, intended (pred == disease), p_intended, p_blend_with."""
    out = table.reset_index(drop=True).copy()
    for j, c in enumerate(DISEASES):
        out[f"p_{c}"] = probs[:, j]
    out["pred"] = np.array(DISEASES)[probs.argmax(1)] if len(probs) else []
    out["intended"] = out["pred"] == out["disease"]
    index = np.array([DISEASES.index(d) for d in out["disease"]], dtype=int)
    out["p_intended"] = probs[np.arange(len(out)), index] if len(out) else []
    partner = _partners(out)
    out["blend_with"] = partner
    out["p_blend_with"] = [
        probs[i, DISEASES.index(b)] if b in DISEASES else np.nan for i, b in enumerate(partner.tolist())
    ]
    return out


def summarise(per_image: pd.DataFrame, with_blends: bool) -> pd.DataFrame:
    """Per fold (and all folds) x disease x age group (x partner): n, share_intended, mean probabilities."""
    pooled = per_image.assign(fold="all")
    both = pd.concat([per_image.assign(fold=per_image["fold"].astype(str)), pooled], ignore_index=True)
    keys = KEYS if with_blends else KEYS[:-1]
    agg = {"n": ("intended", "size"), "share_intended": ("intended", "mean"), "mean_p_intended": ("p_intended", "mean")}
    if with_blends:
        agg |= {"c": ("c", "mean"), "mean_p_blend_with": ("p_blend_with", "mean")}
    table = both.groupby(keys, sort=False).agg(**agg).reset_index()
    folds = sorted(set(table["fold"]) - {"all"}, key=int) + ["all"]
    partners = [""] + list(DISEASES)
    orders = {"fold": folds, "disease": list(DISEASES), "age_group": list(AGE_GROUPS), "blend_with": partners}
    return table.sort_values(keys, key=lambda col: col.map({v: i for i, v in enumerate(orders[col.name])})).reset_index(
        drop=True
    )


def reference(
    cache_images: np.ndarray, index: pd.DataFrame, folds: pd.DataFrame, models: dict[int, tuple], device: torch.device
) -> pd.DataFrame:
    """The real reference: each fold's held-out cohort images through that fold's classifier."""
    rows = []
    known = index.merge(folds[["image_id", "fold"]], on="image_id")
    for k, (model, size) in models.items():
        held = known[(known["fold"] == k) & known["disease"].isin(AFFECTED)]
        if held.empty:
            continue
        probs = probabilities(model, resized(cache_images[held["row"].to_numpy()], size), device)
        rows.append(verdicts(held[["image_id", "disease", "age_group", "fold"]], probs))
    if not rows:
        return pd.DataFrame(columns=["fold", "disease", "age_group", "real_n", "real_share_intended"])
    table = summarise(pd.concat(rows, ignore_index=True), with_blends=False)
    return table.rename(
        columns={"n": "real_n", "share_intended": "real_share_intended", "mean_p_intended": "real_mean_p_intended"}
    )


def fidelity_table(fakes: pd.DataFrame, probs: np.ndarray, real: pd.DataFrame | None) -> pd.DataFrame:
    blends = _partners(fakes).ne("").any()
    per_image = verdicts(fakes, probs)
    if blends:
        per_image["c"] = [row[f"label_{row['disease']}"] for _, row in per_image.iterrows()]
    table = summarise(per_image, with_blends=bool(blends))
    if real is not None and len(real):
        table = table.merge(real, on=["fold", "disease", "age_group"], how="left")
    table.insert(0, "fake_type", fakes["fake_type"].iloc[0] if len(fakes) else "")
    return table


def fidelity_figure(table: pd.DataFrame, fake_type: str):
    """Pooled share predicted as intended, disease x age: the fakes beside the real reference."""
    import matplotlib.pyplot as plt

    pooled = table[table["fold"] == "all"]
    panels = [("share_intended", f"{fake_type} fakes")]
    if "real_share_intended" in pooled:
        panels.append(("real_share_intended", "real images at GAN resolution"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 2.8), squeeze=False)
    for ax, (column, title) in zip(axes[0], panels):
        grid = (
            pooled.groupby(["disease", "age_group"])[column]
            .mean()
            .unstack()
            .reindex(index=list(AFFECTED), columns=list(AGE_GROUPS))
        )
        ax.imshow(grid.to_numpy(dtype=float), vmin=0, vmax=1, cmap="viridis")
        for i in range(grid.shape[0]):
            for j in range(grid.shape[1]):
                value = grid.iloc[i, j]
                if np.isfinite(value):
                    ax.text(
                        j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color="w" if value < 0.6 else "k"
                    )
        ax.set_xticks(range(len(AGE_GROUPS)), [a.replace("_", " ") for a in AGE_GROUPS], fontsize=7, rotation=30)
        ax.set_yticks(range(len(AFFECTED)), list(AFFECTED), fontsize=8)
        ax.set_title(title, fontsize=8)
    fig.suptitle("share predicted as the intended disease (fold's real-only classifier; chance 0.25)", fontsize=8)
    fig.tight_layout()
    return fig


def load_models(paths: list[str], device: torch.device) -> dict[int, tuple[torch.nn.Module, int]]:
    from syndface.classify.model import load_classifier

    models = {}
    for position, path in enumerate(paths):
        model, ckpt = load_classifier(path, device)
        fold = int(ckpt.get("fold", position))
        if fold in models:
            raise ValueError(f"two classifiers of fold {fold} among {paths}: give one real-only model per fold")
        models[fold] = (model, int(ckpt["arch"].get("image_size") or 224))
    return models


def main(argv: list[str], prog: str = "syndface fake-fidelity") -> int:
    from syndface.align.cache import load_cache, read_resized
    from syndface.classify.data import resolve_image_path
    from syndface.gan.options import FidelityOptions
    from syndface.runtime import configure, resolve_device

    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--fakes", nargs="+", required=True, help="one fake type's manifests, one per fold")
    parser.add_argument(
        "--classifiers",
        nargs="+",
        required=True,
        help="the real-only fold models (results/classifier/real/fold{k}/model.pt)",
    )
    parser.add_argument("--cache", required=True, help="the GAN-resolution cache (the real reference)")
    parser.add_argument("--folds", required=True, help="results/folds/folds.tsv")
    add_options_argument(parser, FidelityOptions)
    parser.add_argument("--num-threads", type=int, default=1)
    parser.add_argument("--out", required=True, help="results/fakes/fidelity_{type}.tsv")
    parser.add_argument("--figure", required=True, help="results/fakes/fidelity_{type}.png")
    args = parser.parse_args(argv)

    device = resolve_device(args.options.device)
    configure(device, args.num_threads)
    models = load_models(args.classifiers, device)
    tables, all_probs = [], []
    for manifest_path in args.fakes:
        fakes = read_tsv(manifest_path)
        folds_here = sorted(set(fakes["fold"]))
        if len(folds_here) != 1 or folds_here[0] not in models:
            raise ValueError(
                f"{manifest_path} holds fakes of fold(s) {folds_here}; give the real-only classifier of its fold "
                f"(have folds {sorted(models)})"
            )
        model, size = models[folds_here[0]]
        images = np.stack([read_resized(str(resolve_image_path(p, Path(manifest_path))), size) for p in fakes["path"]])
        tables.append(fakes)
        all_probs.append(probabilities(model, images, device))
        log.info("%s: %d fakes judged by fold %d's real-only classifier", manifest_path, len(fakes), folds_here[0])
    fakes = pd.concat(tables, ignore_index=True)
    if fakes["fake_type"].nunique() != 1:
        raise ValueError(f"the manifests mix fake types {sorted(set(fakes['fake_type']))}: give one type's manifests")
    cache_images, index = load_cache(args.cache)
    real = reference(cache_images, index, read_tsv(args.folds), models, device)
    table = fidelity_table(fakes, np.concatenate(all_probs), real)
    fake_type = str(fakes["fake_type"].iloc[0])
    pooled = table[table["fold"] == "all"]
    write_tsv(
        table.round(4),
        args.out,
        header_lines=[
            f"label fidelity of the {fake_type} fakes: each fold's fakes classified by that fold's real-only classifier "
            "(trained on the GAN's own real images); share_intended = argmax is the intended disease (chance 0.25)",
            "real_* = the same classifier on the fold's held-out real images at the GAN's resolution (the reference)",
            f"pooled over folds: share_intended {np.average(pooled['share_intended'], weights=pooled['n']):.3f}"
            + (
                f", reference {np.average(pooled['real_share_intended'].fillna(0), weights=pooled['real_n'].fillna(0)):.3f}"
                if "real_n" in pooled and pooled["real_n"].fillna(0).sum() > 0
                else ""
            ),
        ],
    )
    save_figure(fidelity_figure(table, fake_type), args.figure)
    log.info("wrote %s (%d rows)", args.out, len(table))
    return 0
