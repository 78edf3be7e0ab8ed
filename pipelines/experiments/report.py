"""The report of an experiment: results.csv, summary.md and figure.png.

Everything here is computed from the run directories alone (their `metrics.json`,
`predictions/test*.csv` and, for `robustness`, `robustness.json`), so the report of a
half-finished experiment covers what finished and can be rebuilt at any time.

The significance of a difference between a cell and the reference cell is judged twice
(`pipelines.experiments.significance`): a paired t-test over the seeds they share
(training noise; Holm-adjusted over the cells of a metric) and a paired bootstrap over
the test clips (which test clips happened to be drawn). A cell is called better or
worse only when both agree; otherwise the table says "n.s.".
"""

from __future__ import annotations

import math
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from msa_core.io import read_csv, read_json, write_csv_atomic, write_text_atomic
from msa_core.metrics import metric_names
from pipelines import run_dir as rundir
from pipelines.experiments import catalog, significance

RESULTS_FILE = "results.csv"
SUMMARY_FILE = "summary.md"
FIGURE_FILE = "figure.png"
ALPHA = 0.05


def collect(settings, cells) -> Dict[str, Any]:
    """Rows of results.csv and the per-seed test predictions of every finished run.

    Returns {"rows": [...], "family": str, "predictions": {(cell key, condition):
    {seed: (ids, labels, fused)}}, "bayes": {metric: value} or None}.
    """
    from pipelines.experiments.runner import ROBUSTNESS_FILE, condition_file

    family = cells[0][1].family
    names = metric_names(family)
    rows: List[Dict[str, Any]] = []
    predictions: Dict[Tuple[str, str], Dict[int, tuple]] = {}
    bayes = None
    for cell, _config in cells:
        for seed in settings.seeds:
            run_dir = settings.run_dir(cell, seed)
            metrics_path = os.path.join(run_dir, rundir.METRICS_FILE)
            if not os.path.exists(metrics_path):
                continue
            metrics = read_json(metrics_path, error=rundir.RunDirError)
            bayes = bayes or metrics.get("bayes_reference")
            by_condition = {"clean": metrics["test"]}
            robustness_path = os.path.join(run_dir, ROBUSTNESS_FILE)
            if settings.experiment.robustness:
                if not os.path.exists(robustness_path):
                    continue
                by_condition = read_json(robustness_path, error=rundir.RunDirError)
            for condition, test in by_condition.items():
                row = {"experiment": settings.name, "dataset": settings.dataset,
                       "cell": cell.label, "cell_key": cell.key, "seed": seed,
                       "condition": condition}
                row.update({f"test_{n}": test.get(n) for n in names})
                row.update({f"val_{n}": metrics["validation"].get(n) for n in names})
                row.update({
                    "val_loss": metrics["validation"].get("loss"),
                    "key_modality": metrics.get("key_modality"),
                    "best_epoch": metrics.get("best_epoch"),
                    "epochs_trained": metrics.get("epochs_trained"),
                    "wall_time_per_epoch_s": metrics.get("wall_time_per_epoch_s"),
                    "parameters": metrics.get("parameters"),
                    "run_dir": os.path.relpath(run_dir, settings.output_dir),
                })
                rows.append(row)
                path = os.path.join(run_dir, rundir.PREDICTIONS_DIR, condition_file(condition))
                if os.path.exists(path):
                    predictions.setdefault((cell.key, condition), {})[seed] = \
                        _read_predictions(path)
    return {"rows": rows, "family": family, "predictions": predictions, "bayes": bayes}


def _read_predictions(path: str) -> tuple:
    records = sorted(read_csv(path), key=lambda r: r["id"])
    ids = [r["id"] for r in records]
    labels = np.array([float(r["label"]) for r in records])
    fused = np.array([float(r["fused"]) for r in records])
    return ids, labels, fused


def _values(rows, cell_key: str, condition: str, metric: str) -> Dict[int, float]:
    out = {}
    for row in rows:
        if row["cell_key"] == cell_key and row["condition"] == condition:
            value = row.get(f"test_{metric}")
            if value is not None:
                out[int(row["seed"])] = float(value)
    return out


def compare(collected, reference, other, condition: str, metric: str,
            resamples: int) -> Optional[Dict[str, Any]]:
    """`other` − `reference` on one metric and test condition: the paired test over the
    seeds both finished and the bootstrap over test clips (None without two such seeds
    or without their predictions)."""
    rows = collected["rows"]
    ref = _values(rows, reference.key, condition, metric)
    oth = _values(rows, other.key, condition, metric)
    seeds = sorted(set(ref) & set(oth))
    if not seeds:
        return None
    test = significance.paired_seed_test([ref[s] for s in seeds], [oth[s] for s in seeds])
    out = {"seeds": seeds, "test": test, "interval": None}
    ref_pred = collected["predictions"].get((reference.key, condition), {})
    oth_pred = collected["predictions"].get((other.key, condition), {})
    if all(s in ref_pred and s in oth_pred for s in seeds):
        ids = ref_pred[seeds[0]][0]
        if all(ref_pred[s][0] == ids and oth_pred[s][0] == ids for s in seeds):
            labels = ref_pred[seeds[0]][1]
            out["interval"] = significance.bootstrap_difference(
                labels, np.stack([ref_pred[s][2] for s in seeds]),
                np.stack([oth_pred[s][2] for s in seeds]), metric, collected["family"],
                n_resamples=resamples, seed=0)
    return out


def build_report(settings, cells) -> Dict[str, Any]:
    """The numbers of summary.md: per cell and condition mean ± std of every figure
    metric, and every comparison with the reference cell."""
    collected = collect(settings, cells)
    family = collected["family"]
    experiment = settings.experiment
    metrics = catalog.FIGURE_METRICS[family]
    conditions = _conditions(collected["rows"])
    reference = cells[0][0]
    table: Dict[str, Dict[str, Dict[str, Any]]] = {}
    for cell, _ in cells:
        for condition in conditions:
            for metric in metrics:
                values = _values(collected["rows"], cell.key, condition, metric)
                if values:
                    v = np.array(list(values.values()))
                    table.setdefault(f"{cell.key}|{condition}", {})[metric] = {
                        "mean": float(v.mean()), "std": float(v.std()), "n": len(v),
                        "values": values}
    compared_metrics = ((catalog.HEADLINE_METRIC[family],) if experiment.robustness
                        else metrics)
    comparisons: Dict[str, Dict[str, Any]] = {}
    for condition in conditions:
        for metric in compared_metrics:
            found = {}
            for cell, _ in cells[1:]:
                result = compare(collected, reference, cell, condition, metric,
                                 settings.bootstrap_resamples)
                if result is not None:
                    found[cell.key] = result
            adjusted = significance.holm_adjust(
                [found[k]["test"]["p_value"] for k in found])
            for key, p_adj in zip(found, adjusted):
                found[key]["p_holm"] = p_adj
                test = dict(found[key]["test"], p_value=p_adj)
                found[key]["verdict"] = (
                    significance.verdict(test, found[key]["interval"], alpha=ALPHA)
                    if found[key]["interval"] is not None else "n.s.")
                comparisons[f"{key}|{condition}|{metric}"] = found[key]
    return {"collected": collected, "family": family, "metrics": metrics,
            "conditions": conditions, "table": table, "comparisons": comparisons,
            "reference": reference,
            "paper": experiment.paper_numbers(family, [c for c, _ in cells])}


def _conditions(rows) -> List[str]:
    seen: List[str] = []
    for row in rows:
        if row["condition"] not in seen:
            seen.append(row["condition"])
    if "clean" in seen:
        seen.remove("clean")
    return ["clean"] + seen


def write_report(settings, cells) -> Dict[str, Any]:
    """Writes results.csv, summary.md and figure.png (each atomically); returns the
    report of `build_report`."""
    report = build_report(settings, cells)
    rows = report["collected"]["rows"]
    family = report["family"]
    names = metric_names(family)
    columns = (["experiment", "dataset", "cell", "cell_key", "seed", "condition"]
               + [f"test_{n}" for n in names] + [f"val_{n}" for n in names]
               + ["val_loss", "key_modality", "best_epoch", "epochs_trained",
                  "wall_time_per_epoch_s", "parameters", "run_dir"])
    write_csv_atomic(os.path.join(settings.output_dir, RESULTS_FILE), rows, columns)
    write_text_atomic(os.path.join(settings.output_dir, SUMMARY_FILE),
                      format_summary(settings, cells, report))
    if rows:
        write_figure(settings, cells, report)
    return report


# ---------------------------------------------------------------------- markdown
def _fmt(value: Optional[float], digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def _signed(value: float) -> str:
    return f"{value:+.3f}"


def _best_keys(report, cells, condition: str, metric: str) -> List[str]:
    means = {c.key: report["table"].get(f"{c.key}|{condition}", {}).get(metric, {}).get("mean")
             for c, _ in cells}
    means = {k: v for k, v in means.items() if v is not None}
    if not means:
        return []
    best = (max if significance.higher_is_better(metric) else min)(means.values())
    return [k for k, v in means.items() if v == best]


def format_summary(settings, cells, report) -> str:
    experiment = settings.experiment
    family = report["family"]
    metrics = report["metrics"]
    reference = report["reference"]
    rows = report["collected"]["rows"]
    finished_runs = len({(r["cell_key"], r["seed"]) for r in rows})
    total_runs = len(cells) * len(settings.seeds)
    lines = [
        f"# `{settings.name}` on {settings.dataset}: {experiment.title} "
        f"(paper {experiment.source})",
        "",
        f"Seeds {', '.join(map(str, settings.seeds))} · data scale {settings.scale:g} "
        f"(data seed {settings.data_seed}) · epochs "
        + (f"≤ {settings.epochs}" if settings.epochs else "as configured")
        + (f" · --set {' '.join(settings.assignments)}" if settings.assignments else "")
        + f" · {finished_runs}/{total_runs} runs finished · reference cell: "
        f"**{reference.label}**",
        "",
    ]
    if experiment.robustness:
        lines += _robustness_tables(settings, cells, report)
    else:
        lines += _cell_tables(settings, cells, report, metrics)
    lines += [
        "",
        "How to read the comparisons: Δ is the cell's test metric minus the reference "
        "cell's, averaged over the seeds both finished. *p* is a paired t-test over those "
        "seeds (training noise), Holm-adjusted over the cells compared on the same metric; "
        f"the interval is a {int(significance_confidence() * 100)}% paired bootstrap over "
        f"the test clips ({settings.bootstrap_resamples} resamples; the same clips for both "
        "cells and every seed). A cell is marked **better** or **worse** only when "
        f"p < {ALPHA} and the interval excludes 0; otherwise n.s. (not shown to differ).",
        "",
        f"Per-seed numbers: `{RESULTS_FILE}`; runs: "
        f"`{os.path.relpath(settings.runs_root, settings.output_dir)}`; figure: "
        f"`{FIGURE_FILE}`.",
    ]
    fewest = min((len(c["seeds"]) for c in report["comparisons"].values()), default=None)
    if fewest is not None and fewest < 3:
        lines += ["", f"Only {fewest} seed(s) in some comparisons: the t-test then has "
                  f"{max(fewest - 1, 0)} degree(s) of freedom and rarely reaches p < {ALPHA}, "
                  "so n.s. there mostly means too few seeds; p=0 means the same Δ on every "
                  "seed. Rerun with a longer --seeds to add seeds (finished runs are kept)."]
    if family == "sims" and report["paper"]:
        lines += ["", "The *paper* rows are Table II of the paper, measured on the real "
                  "CH-SIMS; beside synthetic data only their order is comparable."]
    return "\n".join(lines) + "\n"


def significance_confidence() -> float:
    return 0.95


def _cell_tables(settings, cells, report, metrics) -> List[str]:
    reference = report["reference"]
    lines = ["## Test metrics (mean ± std over seeds)", "",
             "| cell | seeds | " + " | ".join(metrics) + " |",
             "|---|---|" + "---|" * len(metrics)]
    bests = {m: _best_keys(report, cells, "clean", m) for m in metrics}
    for cell, _ in cells:
        entry = report["table"].get(f"{cell.key}|clean", {})
        seeds = max((v["n"] for v in entry.values()), default=0)
        values = []
        for m in metrics:
            stat = entry.get(m)
            if stat is None:
                values.append("–")
                continue
            text = f"{stat['mean']:.3f} ± {stat['std']:.3f}"
            values.append(f"**{text}**" if cell.key in bests[m] else text)
        name = cell.label + (" (ref.)" if cell.key == reference.key else "")
        lines.append(f"| {name} | {seeds} | " + " | ".join(values) + " |")
    for label, numbers in report["paper"].items():
        lines.append(f"| *paper: {label}* | | "
                     + " | ".join(_fmt(numbers.get(m)) for m in metrics) + " |")
    bayes = report["collected"]["bayes"]
    if bayes:
        lines.append("| *Bayes reference* | | "
                     + " | ".join(_fmt(bayes.get(m)) for m in metrics) + " |")
    lines += ["", f"## Against the reference ({reference.label})", "",
              "| cell | " + " | ".join(metrics) + " |",
              "|---|" + "---|" * len(metrics)]
    for cell, _ in cells[1:]:
        values = [_comparison_text(report["comparisons"].get(f"{cell.key}|clean|{m}"))
                  for m in metrics]
        lines.append(f"| {cell.label} | " + " | ".join(values) + " |")
    return lines


def _comparison_text(result) -> str:
    if result is None:
        return "–"
    test, interval = result["test"], result["interval"]
    parts = [_signed(test["mean_difference"])]
    if interval is not None:
        parts.append(f"[{_signed(interval['low'])}, {_signed(interval['high'])}]")
    p = result.get("p_holm")
    parts.append("p=–" if p is None else f"p={p:.2g}")
    verdict = result.get("verdict", "n.s.")
    parts.append(f"**{verdict}**" if verdict != "n.s." else verdict)
    return " ".join(parts)


def _robustness_tables(settings, cells, report) -> List[str]:
    metric = catalog.HEADLINE_METRIC[report["family"]]
    conditions = report["conditions"]
    reference = report["reference"]
    lines = [f"## Test {metric} under each condition (mean ± std over seeds)", "",
             "A *missing* modality is zeroed with length 0; a *corrupted* one is replaced "
             "by another test clip's (see docs/experiments.md).", "",
             "| cell | " + " | ".join(conditions) + " |",
             "|---|" + "---|" * len(conditions)]
    for cell, _ in cells:
        values = []
        for condition in conditions:
            stat = report["table"].get(f"{cell.key}|{condition}", {}).get(metric)
            values.append("–" if stat is None else f"{stat['mean']:.3f} ± {stat['std']:.3f}")
        lines.append(f"| {cell.label} | " + " | ".join(values) + " |")
    lines += ["", f"## {metric}: each cell against {reference.label}, per condition", "",
              "| cell | " + " | ".join(conditions) + " |",
              "|---|" + "---|" * len(conditions)]
    for cell, _ in cells[1:]:
        values = [_comparison_text(report["comparisons"].get(f"{cell.key}|{c}|{metric}"))
                  for c in conditions]
        lines.append(f"| {cell.label} | " + " | ".join(values) + " |")
    return lines


# ---------------------------------------------------------------------- figure
def write_figure(settings, cells, report) -> None:
    from pipelines.experiments import figures

    path = os.path.join(settings.output_dir, FIGURE_FILE)
    family = report["family"]
    title = f"{settings.name} on {settings.dataset} ({settings.experiment.source})"
    if settings.experiment.heat_map:
        metric = catalog.HEADLINE_METRIC[family]
        values = {}
        for cell, config in cells:
            stat = report["table"].get(f"{cell.key}|clean", {}).get(metric)
            if stat is not None:
                values[(config.n_scales, config.channel_ratio)] = stat["mean"]
        n_values = sorted({cfg.n_scales for _, cfg in cells})
        r_values = sorted({cfg.channel_ratio for _, cfg in cells})
        figures.plot_grid_heatmap(path, n_values, r_values, values,
                                  f"test {metric}", title=title)
        return
    if settings.experiment.robustness:
        metric = catalog.HEADLINE_METRIC[family]
        values = {cond: {c.label: list(_per_seed(report, c, cond, metric)) for c, _ in cells}
                  for cond in report["conditions"]}
        figures.plot_condition_bars(path, report["conditions"], [c.label for c, _ in cells],
                                    metric, values, title=title)
        return
    values = {c.label: {m: list(_per_seed(report, c, "clean", m)) for m in report["metrics"]}
              for c, _ in cells}
    figures.plot_cell_bars(path, [c.label for c, _ in cells], list(report["metrics"]), values,
                           title=title, reference=report["reference"].label,
                           paper=report["paper"] or None)


def _per_seed(report, cell, condition: str, metric: str) -> Sequence[float]:
    stat = report["table"].get(f"{cell.key}|{condition}", {}).get(metric)
    return [] if stat is None else [stat["values"][s] for s in sorted(stat["values"])]


__all__ = ["FIGURE_FILE", "RESULTS_FILE", "SUMMARY_FILE", "build_report", "collect",
           "compare", "format_summary", "write_report"]
