"""The GAN's figures (the pictures of the paper's Figure 2): a disease x age grid and age-progression strips."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _panel(rows: int, cols: int, cell_inches: float = 1.2) -> tuple[Any, np.ndarray]:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows, cols, figsize=(cols * cell_inches + 0.8, rows * cell_inches + 0.5), squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
    return fig, axes


def sample_grid_figure(
    cells: dict[tuple[str, str], np.ndarray], row_names: Sequence[str], col_names: Sequence[str], title: str
) -> Any:
    """One image per (row, column) cell, e.g. disease x age group; empty cells stay blank."""
    fig, axes = _panel(len(row_names), len(col_names))
    for i, row in enumerate(row_names):
        axes[i, 0].set_ylabel(row, fontsize=8)
        for j, col in enumerate(col_names):
            if (row, col) in cells:
                axes[i, j].imshow(cells[(row, col)])
            if i == 0:
                axes[i, j].set_title(col.replace("_", " "), fontsize=8)
    fig.suptitle(title, fontsize=9)
    return fig


def progression_figure(
    strips: Sequence[tuple[str, Sequence[np.ndarray]]], step_names: Sequence[str], title: str
) -> Any:
    """One row per identity (labelled by disease), one column per step of the age interpolation."""
    fig, axes = _panel(max(len(strips), 1), len(step_names))
    for i, (label, images) in enumerate(strips):
        axes[i, 0].set_ylabel(label, fontsize=8)
        for j, image in enumerate(images):
            axes[i, j].imshow(image)
    for j, name in enumerate(step_names):
        axes[0, j].set_title(f"t = {name}", fontsize=8)
    fig.suptitle(title, fontsize=9)
    return fig


# --- `syndface gan-figures`: what a fold's chosen generator draws ------------------------------


def render_cells(G, identities: int, psi: float, noise: str, seed: int, fold: int):
    """(grid cells {(row name, age): image}, row names, progression strips) from G at every
    disease x age label and along the infant -> older adult interpolation, `identities` latents
    per disease; z and noise come from per-identity seeds, as the fakes' do."""
    import torch

    from syndface.gan.fakes import AGE_STEPS, latents, noise_seeds, render
    from syndface.gan.networks import N_DISEASES, label_vectors
    from syndface.seeding import derive_seed
    from syndface.taxonomy import AFFECTED, AGE_GROUPS, DISEASES

    id_seeds = [derive_seed(seed, "gan-figures", fold, i) for i in range(identities)]
    rows, cell_seeds, diseases, ages = [], [], [], []
    for i, s in enumerate(id_seeds):
        for d in DISEASES:
            rows.append(f"{d} #{i + 1}")
            for a in AGE_GROUPS:
                cell_seeds.append(s)
                diseases.append(d)
                ages.append(a)
    seeds = np.array(cell_seeds)
    images = render(G, latents(seeds, G.arch.z_dim), label_vectors(diseases, ages), psi, 64, noise, noise_seeds(seeds))
    cells = {(rows[k // len(AGE_GROUPS)], ages[k]): images[k] for k in range(len(images))}
    strip_seeds, labels, names = [], [], []
    for d in AFFECTED:
        for i, s in enumerate(id_seeds):
            names.append(f"{d} #{i + 1}")
            for t in AGE_STEPS:
                strip_seeds.append(s)
                label = torch.zeros(N_DISEASES + len(AGE_GROUPS))
                label[DISEASES.index(d)] = 1
                label[N_DISEASES] = 1 - t
                label[N_DISEASES + len(AGE_GROUPS) - 1] = t
                labels.append(label)
    seeds = np.array(strip_seeds)
    strip_images = render(G, latents(seeds, G.arch.z_dim), torch.stack(labels), psi, 64, noise, noise_seeds(seeds))
    steps = len(AGE_STEPS)
    strips = [(name, list(strip_images[k * steps : (k + 1) * steps])) for k, name in enumerate(names)]
    return cells, rows, strips


def main(argv: list[str], prog: str = "syndface gan-figures") -> int:
    import argparse
    from pathlib import Path

    from syndface.gan.networks import load_network
    from syndface.gan.options import FakesOptions
    from syndface.io import save_figure
    from syndface.options import add_options_argument
    from syndface.runtime import configure, resolve_device
    from syndface.taxonomy import AGE_GROUPS

    parser = argparse.ArgumentParser(
        prog=prog, description="a fold's chosen GAN snapshot: disease x age grid and age-progression strips"
    )
    parser.add_argument("--network", required=True, help="results/gan/fold{k}/network.pt")
    parser.add_argument("--fold", type=int, required=True)
    parser.add_argument("--identities", type=int, default=2, help="latents per disease")
    add_options_argument(parser, FakesOptions)
    parser.add_argument("--grid", required=True, help="output PNG: diseases x age groups")
    parser.add_argument("--progression", required=True, help="output PNG: infant -> older adult strips")
    parser.add_argument("--num-threads", type=int, default=1)
    args = parser.parse_args(argv)
    opts = args.options

    device = resolve_device(opts.device)
    configure(device, args.num_threads)
    G, ckpt = load_network(args.network, device)
    chosen = ckpt.get("selected", {})
    where = f"kimg {chosen['kimg']:g} ({chosen.get('select')})" if "kimg" in chosen else "final"
    if chosen.get("fid") is not None and not np.isnan(float(chosen.get("fid", np.nan))):
        where += f", FID {chosen['fid']:.3g}"
    cells, rows, strips = render_cells(G, args.identities, opts.psi, opts.noise, opts.seed, args.fold)
    title = f"GAN fold {args.fold}, snapshot {where}; psi {opts.psi}, noise {opts.noise}"
    save_figure(sample_grid_figure(cells, rows, AGE_GROUPS, title), Path(args.grid))
    from syndface.gan.fakes import AGE_STEPS

    save_figure(
        progression_figure(strips, [f"{t:g}" for t in AGE_STEPS], f"{title}: infant -> older adult"),
        Path(args.progression),
    )
    return 0
