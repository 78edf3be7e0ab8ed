"""Reporting a run and a list of seeds: mean ± std over seeds and the text tables the
CLI prints."""

from __future__ import annotations

from typing import Any, Dict, Mapping, Sequence

import numpy as np


def _mean_std(values: Sequence[float]) -> Dict[str, Any]:
    array = np.asarray(values, dtype=np.float64)
    return {"mean": float(array.mean()), "std": float(array.std()), "values": [float(v) for v in array]}


def summarize_seeds(per_seed: Mapping[int, Mapping[str, Any]]) -> Dict[str, Any]:
    """Mean ± std (population std, as MMSA reports it) of every numeric test and
    validation metric over the seeds' metrics dicts."""
    seeds = sorted(per_seed)
    summary: Dict[str, Any] = {"seeds": seeds, "runs": {str(s): f"seed_{s}" for s in seeds}}
    for split in ("test", "validation"):
        names = [k for k, v in per_seed[seeds[0]][split].items() if isinstance(v, (int, float))]
        summary[split] = {
            name: _mean_std([per_seed[s][split][name] for s in seeds]) for name in names
        }
    summary["key_modality"] = {str(s): per_seed[s]["key_modality"] for s in seeds}
    summary["best_epoch"] = {str(s): per_seed[s]["best_epoch"] for s in seeds}
    first = per_seed[seeds[0]]
    for key in ("dataset", "family", "task", "bayes_reference"):
        summary[key] = first.get(key)
    return summary


def format_results_table(metrics: Mapping[str, Any]) -> str:
    """A short text table of the test (and validation) metrics next to the synthetic
    generator's Bayes-optimal reference when there is one."""
    reference = metrics.get("bayes_reference") or {}
    names = [k for k, v in metrics["test"].items() if isinstance(v, (int, float))]
    lines = [
        f"{metrics['dataset']} seed {metrics['seed']}: key modality {metrics['key_modality']}, "
        f"best epoch {metrics['best_epoch']} of {metrics['epochs_trained']}, "
        f"{metrics['wall_time_per_epoch_s']:.1f} s/epoch"
        if metrics.get("wall_time_per_epoch_s") is not None
        else f"{metrics['dataset']} seed {metrics['seed']}",
        f"{'metric':<14}{'test':>10}{'valid':>10}{'Bayes ref':>11}",
    ]
    for name in names:
        ref = reference.get(name)
        valid = metrics["validation"].get(name)
        lines.append(
            f"{name:<14}{metrics['test'][name]:>10.4f}"
            f"{(valid if valid is not None else float('nan')):>10.4f}"
            + (f"{ref:>11.4f}" if isinstance(ref, (int, float)) else f"{'':>11}")
        )
    return "\n".join(lines)


def format_seeds_table(summary: Mapping[str, Any]) -> str:
    """Mean ± std of the test metrics over seeds, one line per metric."""
    lines = [f"{summary['dataset']}: {len(summary['seeds'])} seeds {summary['seeds']}"]
    for name, stats in summary["test"].items():
        lines.append(f"{name:<14}{stats['mean']:>10.4f} ± {stats['std']:.4f}")
    return "\n".join(lines)
