"""`syndface saliency-truth-check`: do the demo's saliency maps land on the planted signals?

The demo cohort knows, per disease x age group, where its signal was planted (region masks in
the aligned frame, weighted by the signal's strength at that age). A group's region is where
the mask reaches `threshold` x its maximum. Per image (fold-averaged, signed map):
- mass inside: the share of the map's positive mass that lies in the region;
- pointing game: a hit when the map's maximum lies in the region (no tolerance margin).
Both are compared with what a centred Gaussian blob (a "looks at the middle of the face"
map) scores on the same regions, and with the region's area share (what a flat map's mass
inside would be).

Writes a TSV: one row per disease x age group, plus an `all` row per disease (means over its
images).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from syndface.io import write_tsv
from syndface.log import get_logger
from syndface.options import add_options_argument
from syndface.saliency.options import TruthCheckOptions
from syndface.taxonomy import AGE_GROUPS, DISEASES

log = get_logger("syndface.saliency")


def region(mask: np.ndarray, threshold: float) -> np.ndarray:
    """Pixels where a planted-signal mask reaches `threshold` of its maximum."""
    peak = float(np.max(mask))
    if not peak > 0:
        raise ValueError("a region mask is empty (all zero); check the demo's regions file")
    return mask >= threshold * peak


def mass_inside(maps: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Share of each map's positive mass inside the region; NaN for a map with no positive values."""
    positive = np.clip(np.asarray(maps, dtype=np.float64), 0, None).reshape(len(maps), -1)
    total = positive.sum(1)
    within = positive[:, inside.reshape(-1)].sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, within / total, np.nan)


def pointing_hits(maps: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Per map, 1 when its maximum lies inside the region, else 0. Tied maxima count by the share
    of them inside (the expected hit under random tie-breaking: an even-sized centred blob has
    four); a map with no positive value points nowhere and misses."""
    flat = np.asarray(maps, dtype=np.float64).reshape(len(maps), -1)
    peak = flat.max(1, keepdims=True)
    at_peak = flat == peak
    share = (at_peak & inside.reshape(1, -1)).sum(1) / at_peak.sum(1)
    return np.where(peak[:, 0] > 0, share, 0.0)


def centred_blob(size: int, sigma_fraction: float) -> np.ndarray:
    """Isotropic Gaussian centred on the image, sigma = sigma_fraction x size."""
    axis = np.arange(size) - (size - 1) / 2
    g = np.exp(-0.5 * (axis / (sigma_fraction * size)) ** 2)
    return np.outer(g, g)


def truth_table(
    maps: np.ndarray,
    index: pd.DataFrame,
    masks: dict[tuple[str, str], np.ndarray],
    threshold: float,
    sigma_fraction: float,
) -> pd.DataFrame:
    """Per disease x age group (with a mask and maps), the scores of the maps and of the centred blob."""
    blob = centred_blob(maps.shape[1], sigma_fraction)[None]
    rows, per_image = [], []
    for disease in DISEASES:
        for group in AGE_GROUPS:
            if (disease, group) not in masks:
                continue
            picked = np.flatnonzero(((index["disease"] == disease) & (index["age_group"] == group)).to_numpy())
            if not len(picked):
                continue
            inside = region(masks[(disease, group)], threshold)
            share, hits = mass_inside(maps[picked], inside), pointing_hits(maps[picked], inside)
            blob_share, blob_hit = mass_inside(blob, inside)[0], pointing_hits(blob, inside)[0]
            per_image.append(
                pd.DataFrame(
                    {
                        "disease": disease,
                        "share": share,
                        "hit": hits,
                        "blob_share": blob_share,
                        "blob_hit": blob_hit,
                        "area": inside.mean(),
                    }
                )
            )
            rows.append(_row(disease, group, per_image[-1]))
    if not rows:
        raise ValueError(
            "no disease x age group has both a region mask and saliency maps; check --regions and --maps-dir"
        )
    pooled = pd.concat(per_image)
    rows += [_row(disease, "all", images) for disease, images in pooled.groupby("disease", sort=False)]
    return pd.DataFrame(rows)


def _row(disease: str, group: str, images: pd.DataFrame) -> dict:
    return {
        "disease": disease,
        "age_group": group,
        "n_images": len(images),
        "region_area": images["area"].mean(),
        "mass_inside": images["share"].mean(),
        "mass_inside_blob": images["blob_share"].mean(),
        "pointing_hit_rate": images["hit"].mean(),
        "pointing_hit_rate_blob": images["blob_hit"].mean(),
        "no_positive_mass": int(images["share"].isna().sum()),
    }


def build_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("--maps-dir", required=True, help="output directory of `syndface occlusion-maps`")
    p.add_argument("--regions", required=True, help="the demo cohort's region masks (regions.npz)")
    add_options_argument(p, TruthCheckOptions)
    p.add_argument("--threshold", type=float, default=0.5, help="region = mask >= threshold x mask maximum")
    p.add_argument(
        "--blob-sigma", type=float, default=0.15, help="centred Gaussian blob's sigma as a fraction of the image size"
    )
    p.add_argument("--out", required=True, help="output TSV (truth_check.tsv)")
    return p


def main(argv: list[str], prog: str = "syndface saliency-truth-check") -> int:
    args = build_parser(prog).parse_args(argv)
    from syndface.demo.regions import load_region_masks
    from syndface.saliency.maps import load_maps

    maps, index = load_maps(args.maps_dir)
    masks = load_region_masks(args.regions, maps.shape[1], args.options.zoom)
    table = truth_table(np.asarray(maps), index, masks, args.threshold, args.blob_sigma)
    write_tsv(
        table,
        Path(args.out),
        header_lines=[
            f"region = planted-signal mask >= {args.threshold} x its maximum (masks from {args.regions}, zoom {args.options.zoom})",
            "mass_inside: share of a map's positive mass in the region (region_area = a flat map's share); "
            "pointing_hit_rate: share of maps whose maximum lies in the region",
            f"*_blob: the same for a centred Gaussian blob, sigma {args.blob_sigma} x image size",
        ],
    )
    for r in table[table["age_group"] == "all"].itertuples():
        log.info(
            "%s: pointing %.2f (blob %.2f), mass inside %.2f (blob %.2f, area %.2f)",
            r.disease,
            r.pointing_hit_rate,
            r.pointing_hit_rate_blob,
            r.mass_inside,
            r.mass_inside_blob,
            r.region_area,
        )
    return 0
