"""The figures of the paper's experiments, written as PNGs.

- `plot_grid_heatmap`: one metric over the n × r grid (Fig. 4).
- `plot_cell_bars`: one panel per metric, one bar per cell (mean ± std over seeds, the
  seeds as dots), the reference cell hatched, the paper's numbers as diamonds (Figs. 5–9).
- `plot_condition_bars`: one metric under each test condition of the robustness
  experiment, one bar per cell within each condition.

Every figure is written atomically, and its PNG "Description" text chunk holds the plotted
numbers as JSON, so a test (or a reader) can check the picture against its table.

Example:

>>> import os, tempfile
>>> seeds = {"T+A+V": {"MAE": [0.71, 0.73], "Corr": [0.80, 0.78]},
...          "T": {"MAE": [0.80, 0.82]}}
>>> with tempfile.TemporaryDirectory() as directory:
...     path = os.path.join(directory, "bars.png")
...     plot_cell_bars(path, ["T+A+V", "T"], ["MAE", "Corr"], seeds, reference="T+A+V")
...     os.path.getsize(path) > 0
True
"""

from __future__ import annotations

import json
import math
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI; set before pyplot is imported

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from msa_core.io import atomic_path  # noqa: E402

DPI = 100
SEED_JITTER = 0.25  # the seed dots spread over this fraction of a bar's width
REFERENCE_HATCH = "//"


# --------------------------------------------------------------------------- Fig. 4


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
        _save(fig, path, grid_description(n_values, r_values, grid, metric))
    finally:
        plt.close(fig)


def grid_description(n_values, r_values, grid, metric: str) -> str:
    """The JSON stored in the heat map's PNG "Description" chunk."""
    values = [[float(v) if np.isfinite(v) else None for v in row] for row in grid]
    return json.dumps({"metric": metric, "n_values": [int(n) for n in n_values],
                       "r_values": [int(r) for r in r_values], "values": values})


# --------------------------------------------------------------------------- Figs. 5–9


def plot_cell_bars(path: str, cells: Sequence[str], metrics: Sequence[str],
                   values: Mapping[str, Mapping[str, Sequence[float]]], *,
                   title: str = "", reference: Optional[str] = None,
                   paper: Optional[Mapping[str, Mapping[str, float]]] = None) -> None:
    """Writes grouped bars comparing `cells` on each of `metrics` to `path` (PNG).

    `values[cell][metric]` lists the per-seed values. Each metric gets its own panel (up
    to 3 a row, since accuracies, MAE and Corr live on different scales); in a panel each
    cell, in the given order, gets a bar at its mean over the seeds with a ±1 std error
    bar (population std, as `pipelines.reporting` reports it), its seeds as dots and its
    mean written above it. Non-finite seed values are ignored; a cell or metric with no
    finite value (not run yet) leaves its slot empty. The `reference` cell is hatched and
    named in the legend; `paper[cell][metric]`, when given, is drawn as a black diamond.
    The y axis spans the plotted numbers with some padding rather than starting at 0, so
    that a difference of a point shows.

    The PNG's "Description" chunk holds JSON with `cells`, `metrics`, `reference`,
    `means` and `stds` ({cell: {metric: number or null}}), `n_seeds` and `paper`.
    """
    cells, metrics = list(cells), list(metrics)
    paper = paper or {}
    stats = {cell: {metric: _summary((values.get(cell) or {}).get(metric))
                    for metric in metrics} for cell in cells}
    colors = _cell_colors(cells)
    columns = max(1, min(3, len(metrics)))
    rows = max(1, math.ceil(len(metrics) / columns))
    panel_width = max(2.6, 0.9 + 0.55 * len(cells))
    fig, axes = plt.subplots(rows, columns, squeeze=False,
                             figsize=(panel_width * columns, 0.6 + 3.0 * rows))
    try:
        x = np.arange(len(cells))
        for index, metric in enumerate(metrics):
            ax = axes[index // columns][index % columns]
            means = [stats[cell][metric][0] for cell in cells]
            stds = [stats[cell][metric][1] for cell in cells]
            seeds = [stats[cell][metric][2] for cell in cells]
            marks = [_finite_or_none((paper.get(cell) or {}).get(metric)) for cell in cells]
            low, high = _y_limits(means, stds, seeds, marks)
            ax.set_ylim(low, high)
            for i, cell in enumerate(cells):
                if means[i] is not None:
                    _bar(ax, x[i], 0.7, means[i], stds[i], seeds[i], low, colors[cell],
                         cell == reference, annotate=True, span=high - low)
                if marks[i] is not None:
                    ax.plot([x[i]], [marks[i]], marker="D", color="black", markersize=5,
                            linestyle="none", zorder=5)
            if all(mean is None for mean in means):
                ax.text(0.5, 0.5, "not run", transform=ax.transAxes, ha="center",
                        va="center", color="gray")
            ax.set_xticks(x, cells, rotation=30 if len(cells) > 3 else 0,
                          ha="right" if len(cells) > 3 else "center", fontsize=8)
            ax.set_xlim(-0.6, len(cells) - 0.4)
            ax.set_title(metric, fontsize=10)
            ax.tick_params(axis="y", labelsize=8)
            ax.grid(axis="y", alpha=0.3)
        for index in range(len(metrics), rows * columns):
            axes[index // columns][index % columns].axis("off")
        has_paper = any(_finite_or_none((paper.get(c) or {}).get(m)) is not None
                        for c in cells for m in metrics)
        handles = _legend_handles(reference if reference in cells else None, has_paper)
        if title:
            fig.suptitle(title, fontsize=11)
        if handles:
            fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8,
                       frameon=False)
        fig.tight_layout(rect=(0, 0.07 if handles else 0, 1, 1))
        description = {
            "cells": cells, "metrics": metrics, "reference": reference,
            "means": {c: {m: stats[c][m][0] for m in metrics} for c in cells},
            "stds": {c: {m: stats[c][m][1] for m in metrics} for c in cells},
            "n_seeds": {c: {m: len(stats[c][m][2]) for m in metrics} for c in cells},
            "paper": {c: {m: _finite_or_none(v) for m, v in (paper.get(c) or {}).items()
                          if m in metrics} for c in cells if c in paper},
        }
        _save(fig, path, json.dumps(description))
    finally:
        plt.close(fig)


# --------------------------------------------------------------------------- robustness


def plot_condition_bars(path: str, conditions: Sequence[str], cells: Sequence[str],
                        metric: str,
                        values: Mapping[str, Mapping[str, Sequence[float]]], *,
                        title: str = "") -> None:
    """Writes `metric` under each test condition to `path` (PNG), one bar per cell.

    `values[condition][cell]` lists the per-seed values of `metric` for that cell tested
    under that condition ("clean", "missing:audio", "corrupted:text+vision", ...). The
    conditions run along the x axis (labels rotated; the figure widens with their
    number), and within each group the cells stand side by side in the given order, each
    at its mean over the seeds with a ±1 std error bar and its seeds as dots. A missing
    or non-finite entry leaves its slot empty.

    The PNG's "Description" chunk holds JSON with `metric`, `conditions`, `cells`, and
    `means`, `stds` and `n_seeds` as {condition: {cell: number or null}}.
    """
    conditions, cells = list(conditions), list(cells)
    stats = {condition: {cell: _summary((values.get(condition) or {}).get(cell))
                         for cell in cells} for condition in conditions}
    colors = _cell_colors(cells)
    group = 0.8
    width = group / max(1, len(cells))
    fig_width = max(4.0, 1.6 + len(conditions) * (0.25 * len(cells) + 0.35))
    fig, ax = plt.subplots(figsize=(fig_width, 4.0))
    try:
        flat = [stats[c][cell] for c in conditions for cell in cells]
        low, high = _y_limits([s[0] for s in flat], [s[1] for s in flat],
                              [s[2] for s in flat], [])
        ax.set_ylim(low, high)
        for g, condition in enumerate(conditions):
            for k, cell in enumerate(cells):
                mean, std, seeds = stats[condition][cell]
                if mean is not None:
                    centre = g - group / 2 + width * (k + 0.5)
                    _bar(ax, centre, width, mean, std, seeds, low, colors[cell], False,
                         annotate=False, span=high - low)
        if all(s[0] is None for s in flat):
            ax.text(0.5, 0.5, "not run", transform=ax.transAxes, ha="center", va="center",
                    color="gray")
        ax.set_xticks(np.arange(len(conditions)), conditions, rotation=35, ha="right",
                      fontsize=8)
        ax.set_xlim(-0.6, len(conditions) - 0.4)
        ax.set_ylabel(metric)
        ax.set_title(title or metric, fontsize=11)
        ax.grid(axis="y", alpha=0.3)
        if cells:
            ax.legend(handles=[Patch(facecolor=colors[c], label=c) for c in cells],
                      fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0),
                      frameon=False)
        fig.tight_layout()
        description = {
            "metric": metric, "conditions": conditions, "cells": cells,
            "means": {c: {cell: stats[c][cell][0] for cell in cells} for c in conditions},
            "stds": {c: {cell: stats[c][cell][1] for cell in cells} for c in conditions},
            "n_seeds": {c: {cell: len(stats[c][cell][2]) for cell in cells}
                        for c in conditions},
        }
        _save(fig, path, json.dumps(description))
    finally:
        plt.close(fig)


# --------------------------------------------------------------------------- helpers


def _save(fig, path: str, description: str) -> None:
    with atomic_path(path) as tmp_path:
        fig.savefig(tmp_path, format="png", dpi=DPI, metadata={"Description": description})


def _finite_or_none(value: Any) -> Optional[float]:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _summary(seed_values: Optional[Sequence[float]]
             ) -> Tuple[Optional[float], Optional[float], List[float]]:
    """(mean, population std, finite seed values); (None, None, []) when none is finite."""
    finite = [v for v in (_finite_or_none(s) for s in (seed_values or [])) if v is not None]
    if not finite:
        return None, None, []
    array = np.asarray(finite, dtype=np.float64)
    return float(array.mean()), float(array.std()), finite


def _cell_colors(cells: Sequence[str]) -> Dict[str, Any]:
    palette = plt.get_cmap("tab10")
    return {cell: palette(i % 10) for i, cell in enumerate(cells)}


def _y_limits(means, stds, seeds, marks) -> Tuple[float, float]:
    """Limits around every plotted number, padded so bars, error bars, dots, diamonds
    and the annotations above the bars fit; not anchored at 0."""
    points: List[float] = []
    for mean, std in zip(means, stds):
        if mean is not None:
            points += [mean - (std or 0.0), mean + (std or 0.0)]
    for group in seeds:
        points += list(group)
    points += [m for m in marks if m is not None]
    if not points:
        return 0.0, 1.0
    low, high = min(points), max(points)
    span = high - low
    if span <= 0:
        span = max(abs(high) * 0.05, 0.01)
    return low - 0.35 * span, high + 0.30 * span


def _bar(ax, centre: float, width: float, mean: float, std: float, seeds: List[float],
         floor: float, color, is_reference: bool, *, annotate: bool, span: float) -> None:
    """One bar rising from the axis floor to `mean`, its error bar, seeds and label."""
    ax.bar([centre], [mean - floor], bottom=floor, width=width, color=color,
           alpha=0.85 if not is_reference else 0.6,
           edgecolor="black" if is_reference else color,
           linewidth=1.6 if is_reference else 0.5,
           hatch=REFERENCE_HATCH if is_reference else None, zorder=2)
    ax.errorbar([centre], [mean], yerr=[std], color="black", capsize=3, linewidth=1,
                zorder=3)
    if seeds:
        offsets = (np.linspace(-0.5, 0.5, len(seeds)) if len(seeds) > 1
                   else np.zeros(1)) * width * SEED_JITTER * 2
        ax.scatter(centre + offsets, seeds, s=9, color="black", alpha=0.6,
                   edgecolors="none", zorder=4)
    if annotate:
        top = max([mean + std] + list(seeds))
        ax.text(centre, top + 0.03 * span, _three_digits(mean), ha="center", va="bottom",
                fontsize=7, zorder=6)


def _three_digits(value: float) -> str:
    """`value` to 3 significant digits, trailing zeros kept (0.75 -> "0.750")."""
    return f"{value:#.3g}".rstrip(".")


def _legend_handles(reference: Optional[str], has_paper: bool) -> List[Any]:
    handles: List[Any] = []
    if reference is not None:
        handles.append(Patch(facecolor="white", edgecolor="black", hatch=REFERENCE_HATCH,
                             label=f"reference: {reference}"))
    if has_paper:
        handles.append(Line2D([], [], marker="D", color="black", linestyle="none",
                              markersize=5, label="paper"))
    return handles
