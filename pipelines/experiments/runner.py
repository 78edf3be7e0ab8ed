"""Runs an experiment of the catalog: every cell over every seed, then the report.

Layout of an experiment directory EXP:

    EXP/experiment.json           what was asked: experiment, dataset, seeds, cells
    EXP/runs/<cell key>/seed_<s>/ an ordinary `pipelines.train` run directory per cell
                                  and seed (`--runs-dir` puts them elsewhere, e.g. one
                                  directory shared by several experiments)
    EXP/results.csv               one row per cell, seed (and test condition), every metric
    EXP/summary.md                mean ± std per cell, significance against the reference
    EXP/figure.png                grouped bars per metric (heat map for `scales`,
                                  bars per test condition for `robustness`)

A run directory whose `metrics.json` exists is finished and is never trained again; before
anything runs, every existing run directory is checked to hold the same configuration
and data as its cell (a RunDirError names the directory otherwise); a run
killed mid-way resumes after its last checkpointed epoch. Results, summary and figure
are rewritten, atomically, after every finished cell, so a killed experiment leaves a
consistent report of what it finished.

Example:

>>> settings = ExperimentSettings("multiscale", "synthetic-mosi", "EXP",
...                               seeds=(1111, 1112), scale=0.25, epochs=6)
>>> summary = run_experiment(settings)                          # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from m3sa_tf.config import ConfigError, M3SAConfig
from msa_core.io import read_json, write_json_atomic
from pipelines import run_dir as rundir
from pipelines.experiments import catalog
from pipelines.experiments.catalog import Cell, ExperimentError, ExperimentOptions

DEFAULT_SEEDS = (1111, 1112, 1113)
EXPERIMENT_FILE = "experiment.json"
ROBUSTNESS_FILE = "robustness.json"  # in a run directory: its metrics per test condition


@dataclasses.dataclass(frozen=True)
class ExperimentSettings:
    """Everything an experiment run needs; the CLI builds one from its flags.

    Attributes:
        name: the experiment (`catalog.experiment_names()`).
        dataset: the dataset every cell trains and tests on.
        output_dir: EXP.
        seeds: training seeds; every cell runs every seed (paired by seed).
        data_dir, scale, data_seed: the data (as `pipelines.train`).
        epochs: caps every cell's epochs (None: the configuration's).
        hparams_file, assignments: the base configuration's `--hparams` and `--set`,
            applied to every cell before the cell's own overrides.
        runs_dir: where the run directories go (None: EXP/runs).
        options: the experiment's own choices (`catalog.ExperimentOptions`).
        bootstrap_resamples: resamples of the test clips per comparison.
        cells: run only these cells (labels or keys); the reference cell is always
            run, since every comparison needs it. None: every cell.
    """

    name: str
    dataset: str
    output_dir: str
    seeds: Tuple[int, ...] = DEFAULT_SEEDS
    data_dir: Optional[str] = None
    scale: float = 1.0
    data_seed: int = 0
    epochs: Optional[int] = None
    hparams_file: Optional[str] = None
    assignments: Tuple[str, ...] = ()
    runs_dir: Optional[str] = None
    options: ExperimentOptions = ExperimentOptions()
    bootstrap_resamples: int = 1000
    cells: Optional[Tuple[str, ...]] = None

    @property
    def experiment(self) -> catalog.Experiment:
        return catalog.get_experiment(self.name)

    @property
    def runs_root(self) -> str:
        return self.runs_dir or os.path.join(self.output_dir, "runs")

    def run_dir(self, cell: Cell, seed: int) -> str:
        return os.path.join(self.runs_root, cell.key, f"seed_{seed}")


def resolve_cells(settings: ExperimentSettings) -> List[Tuple[Cell, M3SAConfig]]:
    """Each cell with its configuration; every configuration error surfaces here,
    before anything trains."""
    seeds = [int(s) for s in settings.seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ExperimentError(f"--seeds must be distinct integers, got {list(settings.seeds)}")
    if settings.epochs is not None and settings.epochs < 1:
        raise ExperimentError(f"--epochs {settings.epochs} must be >= 1")
    family = M3SAConfig.for_dataset(settings.dataset).family
    options = dataclasses.replace(settings.options, family=family)
    resolved = []
    for cell in _selected(settings.experiment.cells(options), settings.cells):
        try:
            config = M3SAConfig.from_overrides(
                settings.dataset, hparams_file=settings.hparams_file,
                assignments=list(settings.assignments), epochs=settings.epochs,
                **cell.values)
        except ConfigError as err:
            raise ExperimentError(f"cell {cell.label!r} ({cell.key}): {err}") from err
        catalog.check_cell_config(config, cell)
        resolved.append((cell, config))
    settings.experiment.check_reference(resolved[0][1])
    return resolved


def _selected(cells: List[Cell], wanted: Optional[Tuple[str, ...]]) -> List[Cell]:
    if wanted is None:
        return cells
    known = {c.label: c for c in cells}
    known.update({c.key: c for c in cells})
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise ExperimentError(
            f"--cells {list(unknown)}: no such cell; expected labels among "
            f"{[c.label for c in cells]}")
    chosen = {known[w].key for w in wanted} | {cells[0].key}
    return [c for c in cells if c.key in chosen]


def run_experiment(settings: ExperimentSettings, *, verbose: int = 0,
                   log: Callable[[str], None] = print,
                   train_fn: Optional[Callable] = None) -> Dict[str, Any]:
    """Trains the missing runs of every cell, evaluates them (under every test condition
    for `robustness`) and writes results.csv, summary.md and figure.png; returns the
    report (`pipelines.experiments.report.build_report`).

    Args:
        verbose: 0 prints one progress line per run; 1 adds the training's own output.
        train_fn: the training protocol (default
            `pipelines.training.train_and_evaluate`); tests pass a spy.

    A run that raises stops the experiment (after the report of what finished is
    written), since the next cells would mostly fail the same way; rerun the command to
    continue after fixing the cause.
    """
    from pipelines import training
    from pipelines.experiments import report

    train_fn = train_fn or training.train_and_evaluate
    cells = resolve_cells(settings)
    experiment = settings.experiment
    os.makedirs(settings.output_dir, exist_ok=True)
    _write_experiment_file(settings, cells)

    jobs = [(cell, config, seed) for cell, config in cells for seed in settings.seeds]
    total = len(jobs)
    for cell, config, seed in jobs:
        # A finished run is reused only when it is this very configuration and data
        # (a shared --runs-dir may hold the same cell trained with other settings).
        rundir.check_run_dir(settings.run_dir(cell, seed), rundir.run_fingerprint(
            config.replace(seed=seed), settings.scale, settings.data_seed))
    done = sum(_finished(settings, c, s, experiment.robustness) for c, _, s in jobs)
    log(f"experiment {settings.name} ({experiment.source}) on {settings.dataset}: "
        f"{len(cells)} cells × {len(settings.seeds)} seeds = {total} runs, "
        f"{done} finished earlier, {total - done} to run; results in {settings.output_dir}")
    durations: List[float] = []
    cell_seconds: Dict[str, float] = {}
    try:
        for index, (cell, config, seed) in enumerate(jobs, start=1):
            run_dir = settings.run_dir(cell, seed)
            if _finished(settings, cell, seed, experiment.robustness):
                continue
            left = total - done - 1
            eta = ""
            if durations:
                per_run = sum(durations) / len(durations)
                eta = f", ~{per_run:.0f} s per run, ~{per_run * (left + 1) / 60:.0f} min left"
            log(f"[{done}/{total} done, 1 running, {left} left{eta}] {cell.label} "
                f"seed {seed} → {os.path.relpath(run_dir, settings.output_dir)}")
            started = time.monotonic()
            metrics = train_fn(config.replace(seed=seed), settings.data_dir, run_dir,
                               scale=settings.scale, data_seed=settings.data_seed,
                               verbose=verbose)
            if experiment.robustness:
                evaluate_robustness(settings, config.replace(seed=seed), run_dir)
            seconds = time.monotonic() - started
            durations.append(seconds)
            done += 1
            headline = catalog.HEADLINE_METRIC[config.family]
            log(f"    {cell.label} seed {seed}: test {headline} = "
                f"{metrics['test'].get(headline, float('nan')):.4f} ({seconds:.0f} s)")
            cell_seconds[cell.key] = cell_seconds.get(cell.key, 0.0) + seconds
            last_of_cell = all(_finished(settings, cell, s, experiment.robustness)
                               for s in settings.seeds)
            if last_of_cell:
                built = report.write_report(settings, cells)
                stat = built["table"].get(f"{cell.key}|clean", {}).get(headline)
                if stat is not None:
                    log(f"cell {cell.label} finished: test {headline} {stat['mean']:.4f} "
                        f"± {stat['std']:.4f} over {stat['n']} seeds "
                        f"({cell_seconds[cell.key]:.0f} s this session)")
    finally:
        # Whatever stopped the loop, the report covers every finished run.
        summary = report.write_report(settings, cells)
    log(f"experiment {settings.name}: {done}/{total} runs finished; "
        f"{os.path.join(settings.output_dir, report.SUMMARY_FILE)}")
    return summary


def evaluate_robustness(settings: ExperimentSettings, config: M3SAConfig,
                        run_dir: str) -> Dict[str, Any]:
    """Scores a finished run's best model on the test split under every test condition
    (missing or corrupted modalities); writes ROBUSTNESS_FILE and one predictions CSV
    per condition into the run directory."""
    import keras

    from pipelines.experiments import perturbations
    from pipelines.protocol import load_data

    path = os.path.join(run_dir, ROBUSTNESS_FILE)
    if os.path.exists(path):
        return read_json(path, error=rundir.RunDirError)
    model = keras.saving.load_model(os.path.join(run_dir, rundir.MODEL_FILE))
    eval_sets, info = load_data(config, settings.data_dir, scale=settings.scale,
                                data_seed=settings.data_seed, keep_ids=True,
                                shuffle=False, splits=("test",))
    conditions = perturbations.conditions(tuple(config.modalities))
    predictions: Dict[str, Any] = {}
    out = perturbations.evaluate_conditions(
        model, eval_sets["test"], info.family, tuple(config.modalities), conditions,
        seed=settings.data_seed, predictions=predictions)
    for name, arrays in predictions.items():
        if name != "clean":  # the clean test predictions are the run's own test.csv
            rundir.write_predictions_csv(
                os.path.join(run_dir, rundir.PREDICTIONS_DIR, condition_file(name)), arrays)
    # Written last: its presence marks the evaluation as finished.
    write_json_atomic(path, out)
    return out


def condition_file(condition: str) -> str:
    """The predictions file of a test condition ("clean" is the ordinary test.csv)."""
    if condition == "clean":
        return "test.csv"
    return "test@" + condition.replace(":", "-") + ".csv"


def _finished(settings: ExperimentSettings, cell: Cell, seed: int, robustness: bool) -> bool:
    run_dir = settings.run_dir(cell, seed)
    if not os.path.exists(os.path.join(run_dir, rundir.METRICS_FILE)):
        return False
    return not robustness or os.path.exists(os.path.join(run_dir, ROBUSTNESS_FILE))


def _write_experiment_file(settings: ExperimentSettings, cells) -> None:
    write_json_atomic(os.path.join(settings.output_dir, EXPERIMENT_FILE), {
        "experiment": settings.name,
        "title": settings.experiment.title,
        "source": settings.experiment.source,
        "dataset": settings.dataset,
        "seeds": list(settings.seeds),
        "scale": settings.scale,
        "data_seed": settings.data_seed,
        "epochs_cap": settings.epochs,
        "assignments": list(settings.assignments),
        "hparams_file": settings.hparams_file,
        "runs_dir": settings.runs_root,
        "command": " ".join(["python -m pipelines.experiment"] + sys.argv[1:])
        if sys.argv and sys.argv[0].endswith("experiment.py") else None,
        "cells": [{"label": c.label, "key": c.key, "overrides": c.values,
                   "config": cfg.to_dict()} for c, cfg in cells],
    })


def read_settings_file(output_dir: str) -> Dict[str, Any]:
    """EXP/experiment.json, or an ExperimentError naming what is missing."""
    path = os.path.join(output_dir, EXPERIMENT_FILE)
    if not os.path.exists(path):
        raise ExperimentError(f"{output_dir} holds no {EXPERIMENT_FILE}; is it an experiment?")
    return read_json(path, error=ExperimentError)


__all__ = ["DEFAULT_SEEDS", "ExperimentSettings", "condition_file", "evaluate_robustness",
           "resolve_cells", "run_experiment"]
