"""Heat map of one metric over the n × r grid (the paper's Fig. 4), as a PNG.

Example:

>>> plot_grid_heatmap("SWEEP/heatmap.png", [2, 3], [1, 2],
...                   {(2, 1): 0.71, (2, 2): 0.74, (3, 1): 0.69}, "val_Has0_acc_2")
"""

from __future__ import annotations

import json
import math
from typing import Mapping, Sequence, Tuple

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI; set before pyplot is imported

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from msa_core.io import atomic_path  # noqa: E402


def plot_grid_heatmap(path: str, n_values: Sequence[int], r_values: Sequence[int],
                      values: Mapping[Tuple[int, int], float], metric: str,
                      title: str = "") -> None:
    """Writes a heat map of `values[(n, r)]` to `path` (PNG, atomically).

    Rows are the numbers of scales n, columns the channel ratios r; a cell without a
    finite value (not run yet, or failed) is left blank. Each cell is annotated. The
    PNG's "Description" text chunk holds the plotted grid as JSON (`metric`, `n_values`,
    `r_values`, `values`: rows by n, null for a blank cell), so the picture can be
    checked against the table it came from.
    """
    grid = np.full((len(n_values), len(r_values)), np.nan)
    for i, n in enumerate(n_values):
        for j, r in enumerate(r_values):
            value = values.get((n, r))
            if value is not None and math.isfinite(value):
                grid[i, j] = value
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * len(r_values), 1.2 + 0.7 * len(n_values)))
    try:
        image = ax.imshow(np.ma.masked_invalid(grid), cmap="viridis", aspect="auto",
                          origin="lower")
        ax.set_xticks(range(len(r_values)), [str(r) for r in r_values])
        ax.set_yticks(range(len(n_values)), [str(n) for n in n_values])
        ax.set_xlabel("channel ratio r")
        ax.set_ylabel("number of scales n")
        ax.set_title(title or metric)
        finite = grid[np.isfinite(grid)]
        middle = float(np.mean([finite.min(), finite.max()])) if finite.size else 0.0
        for i in range(grid.shape[0]):
            for j in range(grid.shape[1]):
                if np.isfinite(grid[i, j]):
                    ax.text(j, i, f"{grid[i, j]:.4g}", ha="center", va="center",
                            color="black" if grid[i, j] > middle else "white", fontsize=8)
        fig.colorbar(image, ax=ax, label=metric)
        fig.tight_layout()
        with atomic_path(path) as tmp_path:
            fig.savefig(tmp_path, format="png", dpi=100,
                        metadata={"Description": grid_description(n_values, r_values,
                                                                  grid, metric)})
    finally:
        plt.close(fig)


def grid_description(n_values, r_values, grid, metric: str) -> str:
    """The JSON stored in the heat map's PNG "Description" chunk."""
    values = [[float(v) if np.isfinite(v) else None for v in row] for row in grid]
    return json.dumps({"metric": metric, "n_values": [int(n) for n in n_values],
                       "r_values": [int(r) for r in r_values], "values": values})
