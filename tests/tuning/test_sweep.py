"""`python -m tuning.sweep` over a 2 × 1 corner of the paper's n × r grid (Fig. 4).

The sweep is interrupted (Ctrl-C) before its last cell, then rerun with the same
command: finished cells are not trained again, and the table and heat map cover the
whole grid.
"""

import json
import os

import pytest

from pipelines import training
from tests.tuning.helpers import DATASET, SCALE, set_args
from tuning import results, sweep
from tuning.grid import TABLE_FILE

# Two cells: every cell is a full training run, the costliest thing in this suite.
N_VALUES = (2, 3)
R_VALUES = (1,)
METRIC = "val_Has0_acc_2"
REAL_TRAINING = training.train_and_evaluate
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _argv(data_dir, output_dir):
    return ["--dataset", DATASET, "--data-dir", data_dir, "--output-dir", output_dir,
            "--n", ",".join(map(str, N_VALUES)), "--r", ",".join(map(str, R_VALUES)),
            "--epochs", "1", "--scale", str(SCALE), "--metric", METRIC,
            *set_args(), "--set", "key_modality=text"]


class TrainingSpy:
    """Passes every call on to the real training protocol and records the cells it was
    asked to train; with `interrupt_at`, a Ctrl-C arrives instead of that cell."""

    def __init__(self, interrupt_at=None):
        self.interrupt_at = interrupt_at
        self.cells = []

    def __call__(self, config, *args, **kwargs):
        cell = (config.n_scales, config.channel_ratio)
        if cell == self.interrupt_at:
            raise KeyboardInterrupt()
        self.cells.append(cell)
        return REAL_TRAINING(config, *args, **kwargs)


@pytest.fixture(scope="module")
def interrupted_then_rerun_sweep(tuning_data_dir, tmp_path_factory):
    output_dir = str(tmp_path_factory.mktemp("sweep"))
    last_cell = (N_VALUES[-1], R_VALUES[-1])
    with pytest.MonkeyPatch.context() as patch:
        first = TrainingSpy(interrupt_at=last_cell)
        patch.setattr(training, "train_and_evaluate", first)
        first_code = sweep.main(_argv(tuning_data_dir, output_dir))
        rows_after_interrupt = results.read_csv(os.path.join(output_dir, TABLE_FILE))
        second = TrainingSpy()
        patch.setattr(training, "train_and_evaluate", second)
        second_code = sweep.main(_argv(tuning_data_dir, output_dir))
    return {"output_dir": output_dir, "first_code": first_code, "first": first,
            "rows_after_interrupt": rows_after_interrupt, "second_code": second_code,
            "second": second, "rows": results.read_csv(os.path.join(output_dir, TABLE_FILE))}


def test_an_interrupted_sweep_exits_130_keeping_its_finished_cells(
        interrupted_then_rerun_sweep):
    sweep_run = interrupted_then_rerun_sweep
    assert sweep_run["first_code"] == 130
    statuses = {(int(r["n_scales"]), int(r["channel_ratio"])): r["status"]
                for r in sweep_run["rows_after_interrupt"]}
    last_cell = (N_VALUES[-1], R_VALUES[-1])
    assert statuses.pop(last_cell) == "PENDING"
    assert set(statuses.values()) == {"COMPLETED"}


def test_the_rerun_trains_only_the_unfinished_cell(interrupted_then_rerun_sweep):
    sweep_run = interrupted_then_rerun_sweep
    assert sweep_run["second_code"] == 0
    every_cell = [(n, r) for n in N_VALUES for r in R_VALUES]
    assert sweep_run["first"].cells == every_cell[:-1]
    assert sweep_run["second"].cells == every_cell[-1:]
    # The cells finished before the interruption keep their rows unchanged.
    before = {r["run_dir"]: r for r in sweep_run["rows_after_interrupt"]
              if r["status"] == "COMPLETED"}
    after = {r["run_dir"]: r for r in sweep_run["rows"]}
    for run_dir, row in before.items():
        assert after[run_dir] == row


def test_the_table_has_one_row_per_cell_with_the_runs_validation_metric(
        interrupted_then_rerun_sweep):
    sweep_run = interrupted_then_rerun_sweep
    rows = sweep_run["rows"]
    assert [(int(r["n_scales"]), int(r["channel_ratio"])) for r in rows] == [
        (n, r) for n in N_VALUES for r in R_VALUES]
    for row in rows:
        assert row["status"] == "COMPLETED" and row["metric"] == METRIC
        with open(os.path.join(sweep_run["output_dir"], row["run_dir"],
                               "metrics.json")) as handle:
            metrics = json.load(handle)
        assert metrics["hyperparameters"]["n_scales"] == int(row["n_scales"])
        assert metrics["hyperparameters"]["channel_ratio"] == int(row["channel_ratio"])
        assert float(row["value"]) == pytest.approx(metrics["validation"]["Has0_acc_2"])
        assert float(row[METRIC]) == float(row["value"])
        assert float(row["test_Has0_acc_2"]) == pytest.approx(metrics["test"]["Has0_acc_2"])
        assert 0.0 <= float(row["value"]) <= 1.0


def test_the_heat_map_is_a_png_of_the_grid_and_its_values(interrupted_then_rerun_sweep):
    from PIL import Image

    sweep_run = interrupted_then_rerun_sweep
    path = os.path.join(sweep_run["output_dir"], f"heatmap_{METRIC}.png")
    with open(path, "rb") as handle:
        assert handle.read(8) == PNG_SIGNATURE
    with Image.open(path) as image:
        image.load()  # decodes every pixel: a truncated file fails here
        assert image.format == "PNG" and image.width > 0 and image.height > 0
        plotted = json.loads(image.text["Description"])
    assert plotted["metric"] == METRIC
    assert plotted["n_values"] == list(N_VALUES) and plotted["r_values"] == list(R_VALUES)
    table = {(int(r["n_scales"]), int(r["channel_ratio"])): float(r["value"])
             for r in sweep_run["rows"]}
    assert len(plotted["values"]) == len(N_VALUES)
    for i, n in enumerate(N_VALUES):
        assert len(plotted["values"][i]) == len(R_VALUES)
        for j, r in enumerate(R_VALUES):
            assert plotted["values"][i][j] == pytest.approx(table[(n, r)])
