"""The project's own Tables II/III: every model of the zoo trained with its defaults by
the same protocol, next to the ridge baseline and the synthetic data's Bayes reference.

    python benchmarks/zoo_table.py --datasets synthetic-sims,synthetic-mosi \\
        [--models lf_dnn,tfn,...] [--seeds 1111] [--epochs N] [--runs-dir RUNS] \\
        [--data-dir DATA] [--output benchmarks/results/zoo_table.json]

Each (dataset, model) is an ordinary `pipelines.train` run directory
(RUNS/<dataset>/<model>/seed_<s>/), so a killed table resumes where it stopped and a
finished run is never trained again. Models that need unimodal labels are skipped on
data without them. Writes JSON (test metrics mean ± std over the seeds, best epoch,
epochs trained, wall time per epoch, parameter count, the machine) and prints a
markdown table. `--epochs` caps the epochs of every run (early stopping still applies);
each row records its cap (`max_epochs`).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from msa_core.io import read_json, write_json_atomic  # noqa: E402

COLUMNS = {
    "mosi": ("Has0_acc_2", "Has0_F1_score", "Non0_acc_2", "Mult_acc_7", "MAE", "Corr"),
    "sims": ("Mult_acc_2", "Mult_acc_3", "Mult_acc_5", "F1_score", "MAE", "Corr"),
}


def _parse_list(text):
    return [part.strip() for part in text.split(",") if part.strip()]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="synthetic-sims,synthetic-mosi")
    parser.add_argument("--models", default=None, help="default: every model of the zoo")
    parser.add_argument("--seeds", default="1111")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--runs-dir", default="runs/zoo")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--output", default=os.path.join(HERE, "results", "zoo_table.json"))
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from m3sa_tf import ConfigError, M3SAConfig
    from m3sa_tf.models import get_spec, model_names
    from pipelines import training

    models = _parse_list(args.models) if args.models else list(model_names())
    seeds = [int(s) for s in _parse_list(args.seeds)]
    ridge = read_json(os.path.join(HERE, "results", "linear_baseline.json"))["results"]
    # Rows of earlier invocations stay: a table can be filled in several sittings.
    table = (read_json(args.output).get("results", {}) if os.path.exists(args.output) else {})
    for dataset in _parse_list(args.datasets):
        rows = dict((table.get(dataset) or {}).get("models", {}))
        for name in models:
            overrides = {"model": name}
            if args.epochs is not None:
                overrides["epochs"] = args.epochs
            try:
                config = M3SAConfig.for_dataset(dataset, **overrides)
            except ConfigError as err:
                print(f"[{dataset}] {name}: skipped ({err})", flush=True)
                continue
            run_dir = os.path.join(args.runs_dir, dataset, name)
            started = time.time()
            print(f"[{dataset}] {name}: training {len(seeds)} seed(s) in {run_dir}", flush=True)
            summary = training.train_seeds(config, seeds, args.data_dir, run_dir,
                                           scale=args.scale, verbose=0)
            per_seed = [read_json(os.path.join(run_dir, f"seed_{s}", "metrics.json"))
                        for s in seeds]
            rows[name] = {
                "title": get_spec(name).title,
                "test": {k: {"mean": v["mean"], "std": v["std"]}
                         for k, v in summary["test"].items()},
                "validation_loss": summary["validation"]["loss"],
                "best_epoch": [m["best_epoch"] for m in per_seed],
                "epochs_trained": [m["epochs_trained"] for m in per_seed],
                "wall_time_per_epoch_s": [m["wall_time_per_epoch_s"] for m in per_seed],
                "parameters": per_seed[0].get("parameters"),
                "max_epochs": config.epochs,
                "run_dir": run_dir,
                "seconds_this_invocation": round(time.time() - started, 1),
            }
            print(f"[{dataset}] {name}: done in {time.time() - started:.0f} s", flush=True)
            table[dataset] = {"models": rows, "bayes_reference": summary.get("bayes_reference"),
                              "ridge": (ridge.get(dataset) or {}).get("test")}
            _write(args, table, seeds)
    _write(args, table, seeds)
    print(format_markdown(table))
    return 0


def _write(args, table, seeds):
    write_json_atomic(args.output, {
        "benchmark": "zoo_table",
        "command": "python benchmarks/zoo_table.py " + " ".join(sys.argv[1:]),
        "seeds": seeds,
        "epochs_cap": args.epochs,
        "scale": args.scale,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "python": platform.python_version()},
        "results": table,
    })


def format_markdown(table) -> str:
    lines = []
    for dataset, entry in table.items():
        family = "sims" if "sims" in dataset else "mosi"
        cols = COLUMNS[family]
        lines.append(f"\n{dataset}\n")
        lines.append("| model | " + " | ".join(cols) + " | params | s/epoch | best/trained |")
        lines.append("|---" * (len(cols) + 4) + "|")
        for name, row in entry["models"].items():
            cells = []
            for col in cols:
                stat = row["test"].get(col)
                cells.append("" if stat is None else
                             f"{stat['mean']:.3f} ± {stat['std']:.3f}")
            secs = [s for s in row["wall_time_per_epoch_s"] if s is not None]
            lines.append(
                f"| {row['title']} | " + " | ".join(cells)
                + f" | {row['parameters']:,} | {sum(secs) / max(len(secs), 1):.1f} | "
                + ",".join(f"{b}/{t}" for b, t in zip(row["best_epoch"], row["epochs_trained"]))
                + " |")
        for label, ref in (("ridge", entry.get("ridge")), ("Bayes", entry.get("bayes_reference"))):
            if ref:
                lines.append(f"| {label} | " + " | ".join(
                    "" if ref.get(c) is None else f"{ref[c]:.3f}" for c in cols) + " | | | |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
