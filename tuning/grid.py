"""The n × r sweep of the paper's Fig. 4, run through the training protocol itself.

Every cell (n_scales = n, channel_ratio = r, everything else from the base
configuration) is one `pipelines.training.train_and_evaluate` run in
`OUTPUT_DIR/runs/n{n}_r{r}/`: the same data, model, early stopping, key-modality rule and
run directory as `pipelines.train`. A cell whose run directory already holds
`metrics.json` is finished and is not run again, so an interrupted sweep continues where
it stopped. After every cell the sweep rewrites, atomically,

    OUTPUT_DIR/sweep.csv                one row per cell: n, r, status, the metric,
                                        every validation and test metric, seconds
    OUTPUT_DIR/heatmap_<metric>.png     the chosen metric over the grid

Example:

>>> rows = run_sweep(M3SAConfig.for_dataset("synthetic-mosi", epochs=5), "DATA", "SWEEP",
...                  n_values=[2, 5], r_values=[1, 4],
...                  metric="val_Has0_acc_2")                       # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
import time
import traceback
from typing import Any, Callable, Dict, List, Optional, Sequence

from m3sa_tf.config import ConfigError, M3SAConfig
from msa_core.io import read_json, write_csv_atomic, write_json_atomic
from pipelines import cli, training
from pipelines.run_dir import RunDirError
from tuning import space
from tuning.heatmap import plot_grid_heatmap
from tuning.objective import metric_names

TABLE_FILE = "sweep.csv"
CELL_FILE = "sweep_cell.json"  # written into a cell's run directory when it finishes
DEFAULT_METRIC = {"mosi": "val_Has0_acc_2", "sims": "val_Mult_acc_2"}


class SweepError(ValueError):
    """A grid or metric that the sweep cannot use."""


def parse_int_list(text: str, name: str, bounds) -> List[int]:
    """`pipelines.cli.parse_int_list` ("2,3,5", "2-5"), failing with a SweepError."""
    try:
        return cli.parse_int_list(text, name, bounds)
    except ConfigError as err:
        raise SweepError(str(err)) from None


def check_metric(metric: str, family: str) -> str:
    """`metric` must be a validation or test MSA metric of the dataset family."""
    known = metric_names(family)
    prefix, _, base = metric.partition("_")
    if prefix not in ("val", "test") or base not in known:
        raise SweepError(
            f"metric {metric!r} is not one of val_<name> or test_<name> with <name> in "
            f"{known} (the {family!r} dataset family)"
        )
    return metric


def cell_dir(output_dir: str, n: int, r: int) -> str:
    return os.path.join(output_dir, "runs", f"n{n}_r{r}")


def flatten_metrics(metrics: Dict[str, Any]) -> Dict[str, float]:
    """`{"valid": {"MAE": …}, "test": {…}}` (or already flat) → {"val_MAE": …, "test_MAE": …}.

    Only plain numbers are kept; a multi-seed run's {"mean": …, "std": …} entries give
    the mean.
    """
    prefixes = {"valid": "val_", "validation": "val_", "val": "val_", "test": "test_"}
    flat: Dict[str, float] = {}
    for key, value in metrics.items():
        if key in prefixes and isinstance(value, dict):
            for name, number in value.items():
                number = number.get("mean") if isinstance(number, dict) else number
                if isinstance(number, (int, float)) and not isinstance(number, bool):
                    flat[prefixes[key] + name] = float(number)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[key] = float(value)
    return flat


def _read_finished(run_dir: str) -> Optional[Dict[str, Any]]:
    path = os.path.join(run_dir, "metrics.json")
    if not os.path.exists(path):
        return None
    metrics = read_json(path, error=RunDirError)
    seconds = None
    cell_path = os.path.join(run_dir, CELL_FILE)
    if os.path.exists(cell_path):
        seconds = read_json(cell_path, error=RunDirError).get("seconds")
    return {"metrics": flatten_metrics(metrics), "seconds": seconds}


def run_sweep(base_config: M3SAConfig, data_dir: Optional[str], output_dir: str, *,
              n_values: Sequence[int], r_values: Sequence[int], metric: Optional[str] = None,
              scale: float = 1.0, data_seed: int = 0, verbose: int = 0,
              train_fn: Optional[Callable] = None,
              log: Callable[[str], None] = print) -> List[Dict[str, Any]]:
    """Runs the missing cells of the grid; returns the table rows (also in sweep.csv).

    Args:
        metric: the metric of the heat map, `val_<name>` (default: val_Has0_acc_2 for
            MOSI-family data, val_Mult_acc_2 for SIMS) or `test_<name>`.
        train_fn: the training protocol (default `pipelines.training.train_and_evaluate`).

    A cell that raises is recorded as FAILED with its error and the sweep goes on
    (configuration errors, which would fail every cell, stop it at once).
    """
    space.require_m3sa(base_config, "the n × r sweep")
    if train_fn is None:
        train_fn = training.train_and_evaluate
    metric = check_metric(metric or DEFAULT_METRIC[base_config.family], base_config.family)
    for n in n_values:
        if not space.N_SCALES_RANGE[0] <= n <= space.N_SCALES_RANGE[1]:
            raise SweepError(f"n={n} is outside {space.N_SCALES_RANGE}")
    for r in r_values:
        if not space.CHANNEL_RATIO_RANGE[0] <= r <= space.CHANNEL_RATIO_RANGE[1]:
            raise SweepError(f"r={r} is outside {space.CHANNEL_RATIO_RANGE}")
    os.makedirs(output_dir, exist_ok=True)
    write_json_atomic(os.path.join(output_dir, "sweep.json"), {
        "base_config": base_config.to_dict(), "n_values": list(n_values),
        "r_values": list(r_values), "metric": metric, "scale": scale, "data_seed": data_seed,
    })

    cells: Dict[tuple, Dict[str, Any]] = {}
    for n in n_values:
        for r in r_values:
            run_dir = cell_dir(output_dir, n, r)
            finished = _read_finished(run_dir)
            cells[(n, r)] = ({"status": "COMPLETED", "cached": True, **finished}
                             if finished else {"status": "PENDING"})

    def write_results() -> List[Dict[str, Any]]:
        rows = []
        metric_columns = set()
        for (n, r), cell in sorted(cells.items()):
            row = {"n_scales": n, "channel_ratio": r, "status": cell["status"],
                   "metric": metric,
                   "value": cell.get("metrics", {}).get(metric)}
            row.update(cell.get("metrics", {}))
            metric_columns.update(cell.get("metrics", {}))
            row["seconds"] = cell.get("seconds")
            row["run_dir"] = os.path.relpath(cell_dir(output_dir, n, r), output_dir)
            row["error"] = cell.get("error")
            rows.append(row)
        ordered = sorted(metric_columns, key=lambda k: (not k.startswith("val_"), k))
        columns = (["n_scales", "channel_ratio", "status", "metric", "value"] + ordered
                   + ["seconds", "run_dir", "error"])
        write_csv_atomic(os.path.join(output_dir, TABLE_FILE), rows, columns)
        values = {key: cell.get("metrics", {}).get(metric, math.nan)
                  for key, cell in cells.items()}
        plot_grid_heatmap(
            os.path.join(output_dir, f"heatmap_{metric}.png"), list(n_values),
            list(r_values), values, metric,
            title=f"{metric} on {base_config.dataset} (n × r)",
        )
        return rows

    rows = write_results()
    for (n, r), cell in sorted(cells.items()):
        if cell["status"] == "COMPLETED":
            log(f"cell n={n} r={r}: finished earlier, {metric} = {cell['metrics'].get(metric)}")
            continue
        config = base_config.replace(n_scales=n, channel_ratio=r)
        run_dir = cell_dir(output_dir, n, r)
        log(f"cell n={n} r={r}: training into {run_dir}")
        started = time.monotonic()
        try:
            metrics = train_fn(config, data_dir, run_dir, scale=scale, data_seed=data_seed,
                               verbose=verbose)
        except (ConfigError, RunDirError):
            raise  # every cell would fail the same way
        except Exception as err:  # one broken cell must not cost the finished ones
            cell.update(status="FAILED", error=f"{type(err).__name__}: {err}",
                        seconds=round(time.monotonic() - started, 3))
            log(f"cell n={n} r={r}: FAILED: {err}")
            if verbose:
                traceback.print_exc()
        else:
            seconds = round(time.monotonic() - started, 3)
            write_json_atomic(os.path.join(run_dir, CELL_FILE),
                              {"n_scales": n, "channel_ratio": r, "seconds": seconds})
            cell.update(status="COMPLETED", metrics=flatten_metrics(metrics), seconds=seconds)
            log(f"cell n={n} r={r}: {metric} = {cell['metrics'].get(metric)} "
                f"({seconds:.1f} s)")
        rows = write_results()
    return rows
