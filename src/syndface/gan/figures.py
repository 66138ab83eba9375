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
