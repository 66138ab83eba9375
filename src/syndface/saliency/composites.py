"""`syndface saliency-composites`: the mean saliency map of each disease x age group (Figure 4).

Per disease and age group: the mean of the group's fold-averaged, signed occlusion maps, drawn
over the mean of the same images' aligned faces (in grey), green where occluding the region
lowers the true label's logit (positive attribution) and red where it raises it, as in the
paper's Figure 4 (captum's sign colouring). The paper's code averaged rendered figures; here
the raw maps are averaged and rendered once, with one colour scale per disease (the
100 - outlier_perc percentile of |mean map| over its five age groups, captum's outlier_perc=2
rule applied across groups) so the age groups can be compared.

Outputs in --out-dir, per disease: `{disease}.png` (the five age groups in a row),
`{disease}_{age_group}.png` (one panel each), `{disease}.npz` (maps [5,H,W], faces [5,H,W,3]
uint8, counts [5], age_groups, scale).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from syndface.images import save_png
from syndface.io import save_figure, save_npz
from syndface.log import get_logger
from syndface.options import add_options_argument
from syndface.saliency.options import CompositesOptions
from syndface.taxonomy import AGE_GROUPS

log = get_logger("syndface.saliency")

POSITIVE_RGB = np.array([0.0, 0.75, 0.0])  # green: evidence for the true label
NEGATIVE_RGB = np.array([0.85, 0.0, 0.0])  # red: evidence against it
MAX_OPACITY = 0.8
MIN_PANEL_PX = 256


def group_composites(
    maps: np.ndarray, faces: np.ndarray, index: pd.DataFrame, disease: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean maps [5,H,W], mean faces [5,H,W,3] float in 0..255, counts [5]) over the disease's images per age group.

    `faces` are the aligned images of the maps' rows, in the same order. A group without images gets zeros."""
    height, width = maps.shape[1:]
    mean_maps = np.zeros((len(AGE_GROUPS), height, width), dtype=np.float64)
    mean_faces = np.zeros((len(AGE_GROUPS), height, width, 3), dtype=np.float64)
    counts = np.zeros(len(AGE_GROUPS), dtype=int)
    is_disease = (index["disease"] == disease).to_numpy()
    for g, group in enumerate(AGE_GROUPS):
        rows = np.flatnonzero(is_disease & (index["age_group"] == group).to_numpy())
        counts[g] = len(rows)
        if len(rows):
            mean_maps[g] = np.asarray(maps[rows], dtype=np.float64).mean(0)
            mean_faces[g] = np.asarray(faces[rows], dtype=np.float64).mean(0)
    return mean_maps, mean_faces, counts


def display_scale(mean_maps: np.ndarray, outlier_perc: float) -> float:
    """|value| that saturates the colours: the (100 - outlier_perc) percentile of |mean maps|."""
    values = np.abs(mean_maps[np.abs(mean_maps) > 0])
    return float(np.percentile(values, 100 - outlier_perc)) if values.size else 1.0


def overlay(face: np.ndarray, saliency: np.ndarray, scale: float) -> np.ndarray:
    """Grey face [H,W,3] (0..255) with green/red saliency blended in by |saliency| / scale -> RGB float 0..1."""
    grey = (face / 255.0) @ np.array([0.299, 0.587, 0.114])
    opacity = MAX_OPACITY * np.clip(np.abs(saliency) / scale, 0, 1)[..., None]
    colour = np.where((saliency >= 0)[..., None], POSITIVE_RGB, NEGATIVE_RGB)
    return np.clip(grey[..., None] * (1 - opacity) + colour * opacity, 0, 1)


def _sign_colormap():
    from matplotlib.colors import LinearSegmentedColormap

    return LinearSegmentedColormap.from_list("red_white_green", [tuple(NEGATIVE_RGB), (1, 1, 1), tuple(POSITIVE_RGB)])


def plot_disease(disease: str, mean_maps: np.ndarray, mean_faces: np.ndarray, counts: np.ndarray, scale: float):
    """The five age groups of one disease in a row, with a signed colour bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    fig, axes = plt.subplots(1, len(AGE_GROUPS), figsize=(2.2 * len(AGE_GROUPS) + 0.8, 2.7), squeeze=False)
    for g, (group, ax) in enumerate(zip(AGE_GROUPS, axes[0])):
        ax.set_axis_off()
        ax.set_title(f"{group.replace('_', ' ')} (n={counts[g]})", fontsize=9)
        if counts[g]:
            ax.imshow(overlay(mean_faces[g], mean_maps[g], scale), interpolation="bilinear")
        else:
            ax.imshow(np.full(mean_maps[g].shape, 0.5), cmap="gray", vmin=0, vmax=1)
            ax.text(0.5, 0.5, "no test images", transform=ax.transAxes, ha="center", va="center", fontsize=8)
    mappable = ScalarMappable(Normalize(-scale, scale), _sign_colormap())
    fig.colorbar(mappable, ax=axes[0].tolist(), fraction=0.02, pad=0.01, label="mean logit drop")
    fig.suptitle(f"{disease}: mean occlusion map of the true label (green +, red -)", fontsize=10)
    return fig


def _save_panel(rgb: np.ndarray, path: Path) -> None:
    from PIL import Image

    factor = max(1, -(-MIN_PANEL_PX // rgb.shape[0]))
    image = Image.fromarray((rgb * 255).round().astype(np.uint8)).resize(
        (rgb.shape[1] * factor, rgb.shape[0] * factor), Image.NEAREST
    )
    save_png(image, path)


def write_composites(
    maps: np.ndarray, faces: np.ndarray, index: pd.DataFrame, disease: str, outlier_perc: float, out_dir: Path
) -> None:
    mean_maps, mean_faces, counts = group_composites(maps, faces, index, disease)
    scale = display_scale(mean_maps, outlier_perc)
    for g, group in enumerate(AGE_GROUPS):
        panel = overlay(mean_faces[g], mean_maps[g], scale) if counts[g] else np.full((*mean_maps[g].shape, 3), 0.5)
        _save_panel(panel, out_dir / f"{disease}_{group}.png")
    save_npz(
        {
            "maps": mean_maps.astype(np.float32),
            "faces": mean_faces.round().astype(np.uint8),
            "counts": counts,
            "age_groups": np.array(AGE_GROUPS),
            "scale": np.asarray(scale),
        },
        out_dir / f"{disease}.npz",
    )
    save_figure(plot_disease(disease, mean_maps, mean_faces, counts, scale), out_dir / f"{disease}.png")
    log.info("%s composites: %s images per age group, colour scale %.4g", disease, counts.tolist(), scale)


def build_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("--maps-dir", required=True, help="output directory of `syndface occlusion-maps`")
    p.add_argument(
        "--cache", required=True, help="the packed image cache the maps were computed on (for the mean faces)"
    )
    add_options_argument(p, CompositesOptions)
    p.add_argument("--out-dir", required=True)
    return p


def main(argv: list[str], prog: str = "syndface saliency-composites") -> int:
    args = build_parser(prog).parse_args(argv)
    from syndface.align.cache import load_cache
    from syndface.saliency.maps import load_maps

    maps, index = load_maps(args.maps_dir)
    cache, cache_index = load_cache(args.cache)
    cache_rows = index["cache_row"].to_numpy()
    cached_ids = cache_index.set_index("row").loc[cache_rows, "image_id"].astype(str).to_numpy()
    if not np.array_equal(cached_ids, index["image_id"].astype(str).to_numpy()):
        raise ValueError(
            f"the cache {args.cache} does not hold the images the maps in {args.maps_dir} were computed on; pass the same cache"
        )
    faces = np.asarray(cache[cache_rows])
    missing = sorted(set(args.options.diseases) - set(index["disease"]))
    if missing:
        raise ValueError(
            f"{args.maps_dir} has no maps of {', '.join(missing)}; drop them from saliency.diseases or recompute the maps"
        )
    out_dir = Path(args.out_dir)
    for disease in args.options.diseases:
        write_composites(maps, faces, index, disease, args.options.outlier_perc, out_dir)
    return 0
