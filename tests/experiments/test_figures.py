"""pipelines.experiments.figures: the PNGs are readable, their Description JSON matches
the numbers they were given, odd inputs do not crash, and writing is atomic."""

import json
import math
import os

import numpy as np
import pytest
from PIL import Image

from pipelines.experiments import figures

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CELLS = ["T+A+V", "T+A", "T"]
METRICS = ["Has0_acc_2", "Has0_F1_score", "Mult_acc_7", "MAE", "Corr"]


def read_png(path):
    """(width, height, Description JSON) of the PNG at `path`, decoding every pixel."""
    assert os.path.getsize(path) > 0
    with open(path, "rb") as handle:
        assert handle.read(8) == PNG_SIGNATURE
    with Image.open(path) as image:
        image.load()
        assert image.format == "PNG"
        return image.width, image.height, json.loads(image.text["Description"])


def seed_values():
    rng = np.random.default_rng(0)
    base = {"Has0_acc_2": 0.80, "Has0_F1_score": 0.79, "Mult_acc_7": 0.42, "MAE": 0.72,
            "Corr": 0.78}
    return {cell: {m: [float(base[m] - 0.01 * i + 0.005 * rng.standard_normal())
                       for _ in range(3)] for m in METRICS}
            for i, cell in enumerate(CELLS)}


def test_cell_bars_description_matches_the_seed_values(tmp_path):
    values = seed_values()
    paper = {"T+A+V": {"Has0_acc_2": 0.83, "MAE": 0.70}}
    path = str(tmp_path / "bars.png")
    figures.plot_cell_bars(path, CELLS, METRICS, values, title="Fig. 5",
                           reference="T+A+V", paper=paper)
    width, height, plotted = read_png(path)
    assert width > 0 and height > 0
    assert plotted["cells"] == CELLS and plotted["metrics"] == METRICS
    assert plotted["reference"] == "T+A+V"
    for cell in CELLS:
        for metric in METRICS:
            assert plotted["means"][cell][metric] == pytest.approx(np.mean(values[cell][metric]))
            assert plotted["stds"][cell][metric] == pytest.approx(np.std(values[cell][metric]))
            assert plotted["n_seeds"][cell][metric] == 3
    assert plotted["paper"] == {"T+A+V": {"Has0_acc_2": 0.83, "MAE": 0.70}}
    assert sorted(os.listdir(tmp_path)) == ["bars.png"]  # no temporary file left


def test_cell_bars_tolerate_missing_nan_single_seed_and_single_cell(tmp_path):
    values = {
        "T+A+V": {"Has0_acc_2": [0.8, float("nan"), 0.82], "MAE": [0.7]},
        "T+A": {"Has0_acc_2": [float("nan")]},  # nothing finite: left empty
        # "T" not run at all
    }
    path = str(tmp_path / "partial.png")
    figures.plot_cell_bars(path, CELLS, ["Has0_acc_2", "MAE", "Corr"], values,
                           reference="T", paper={"T": {"Corr": float("nan")}})
    _, _, plotted = read_png(path)
    assert plotted["means"]["T+A+V"]["Has0_acc_2"] == pytest.approx(0.81)
    assert plotted["stds"]["T+A+V"]["Has0_acc_2"] == pytest.approx(0.01)
    assert plotted["n_seeds"]["T+A+V"]["Has0_acc_2"] == 2
    assert plotted["means"]["T+A+V"]["MAE"] == pytest.approx(0.7)
    assert plotted["stds"]["T+A+V"]["MAE"] == 0.0  # a single seed
    assert plotted["means"]["T+A"]["Has0_acc_2"] is None
    assert plotted["means"]["T"] == {"Has0_acc_2": None, "MAE": None, "Corr": None}
    assert plotted["paper"] == {"T": {"Corr": None}}

    single = str(tmp_path / "single.png")
    figures.plot_cell_bars(single, ["T"], ["MAE"], {"T": {"MAE": [0.9]}})
    _, _, plotted = read_png(single)
    assert plotted["means"] == {"T": {"MAE": 0.9}} and plotted["stds"] == {"T": {"MAE": 0.0}}
    assert plotted["reference"] is None

    empty = str(tmp_path / "empty.png")
    figures.plot_cell_bars(empty, CELLS, METRICS, {})
    assert read_png(empty)[2]["means"]["T"]["Corr"] is None


def test_cell_bars_are_deterministic(tmp_path):
    first, second = str(tmp_path / "a.png"), str(tmp_path / "b.png")
    for path in (first, second):
        figures.plot_cell_bars(path, CELLS, METRICS[:2], seed_values(), reference="T")
    with open(first, "rb") as a, open(second, "rb") as b:
        assert a.read() == b.read()


def test_condition_bars_description_matches_the_seed_values(tmp_path):
    conditions = ["clean", "missing:audio", "missing:vision", "corrupted:text+vision"]
    values = {
        "clean": {"T+A+V": [0.80, 0.82], "T": [0.78, 0.77]},
        "missing:audio": {"T+A+V": [0.75, float("nan"), 0.77], "T": [0.78]},
        "corrupted:text+vision": {"T+A+V": [0.60, 0.62]},
        # "missing:vision" not run yet
    }
    path = str(tmp_path / "robustness.png")
    figures.plot_condition_bars(path, conditions, ["T+A+V", "T"], "Has0_acc_2", values,
                                title="robustness")
    width, _, plotted = read_png(path)
    assert plotted["metric"] == "Has0_acc_2"
    assert plotted["conditions"] == conditions and plotted["cells"] == ["T+A+V", "T"]
    for condition in conditions:
        for cell in ("T+A+V", "T"):
            seeds = [v for v in values.get(condition, {}).get(cell, []) if math.isfinite(v)]
            if seeds:
                assert plotted["means"][condition][cell] == pytest.approx(np.mean(seeds))
                assert plotted["stds"][condition][cell] == pytest.approx(np.std(seeds))
            else:
                assert plotted["means"][condition][cell] is None
            assert plotted["n_seeds"][condition][cell] == len(seeds)
    assert plotted["stds"]["missing:audio"]["T"] == 0.0

    wide = str(tmp_path / "wide.png")
    many = [f"missing:{i}" for i in range(12)]
    figures.plot_condition_bars(wide, many, ["T+A+V", "T"], "MAE", {})
    assert read_png(wide)[0] > width  # the figure widens with the conditions
    assert sorted(os.listdir(tmp_path)) == ["robustness.png", "wide.png"]


@pytest.mark.parametrize("plot", ["cells", "conditions", "heatmap"])
def test_a_failing_save_leaves_nothing_behind(tmp_path, monkeypatch, plot):
    def broken_savefig(self, *args, **kwargs):
        with open(args[0], "wb") as handle:  # a half-written file, then the failure
            handle.write(PNG_SIGNATURE)
        raise RuntimeError("disk full")

    monkeypatch.setattr(figures.plt.Figure, "savefig", broken_savefig)
    path = str(tmp_path / "out" / "figure.png")
    with pytest.raises(RuntimeError, match="disk full"):
        if plot == "cells":
            figures.plot_cell_bars(path, CELLS, METRICS, seed_values())
        elif plot == "conditions":
            figures.plot_condition_bars(path, ["clean"], CELLS, "MAE",
                                        {"clean": {"T": [0.7]}})
        else:
            figures.plot_grid_heatmap(path, [2], [1], {(2, 1): 0.7}, "MAE")
    assert os.listdir(tmp_path / "out") == []
    assert figures.plt.get_fignums() == []  # the figure was closed all the same


def test_figures_are_closed_after_saving(tmp_path):
    before = len(figures.plt.get_fignums())
    for i in range(5):
        figures.plot_cell_bars(str(tmp_path / "c.png"), CELLS[:1], ["MAE"],
                               {"T+A+V": {"MAE": [0.7 + i / 100]}})
        figures.plot_condition_bars(str(tmp_path / "r.png"), ["clean"], CELLS[:1], "MAE",
                                    {"clean": {"T+A+V": [0.7]}})
    assert len(figures.plt.get_fignums()) == before
    assert sorted(os.listdir(tmp_path)) == ["c.png", "r.png"]


def test_heatmap_is_reexported_from_tuning(tmp_path):
    from tuning import heatmap

    assert heatmap.plot_grid_heatmap is figures.plot_grid_heatmap
    path = str(tmp_path / "heatmap.png")
    heatmap.plot_grid_heatmap(path, [2, 3], [1, 2], {(2, 1): 0.71, (3, 2): float("nan")},
                              "val_Has0_acc_2")
    _, _, plotted = read_png(path)
    assert plotted == {"metric": "val_Has0_acc_2", "n_values": [2, 3], "r_values": [1, 2],
                       "values": [[0.71, None], [None, None]]}
