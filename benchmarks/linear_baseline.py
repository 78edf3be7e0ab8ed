"""A linear learner's test metrics on the synthetic datasets, between chance and Bayes.

    python benchmarks/linear_baseline.py [--dataset synthetic-mosi synthetic-sims]
        [--seed 0] [--output benchmarks/results/linear_baseline.json]

The Bayes reference the builders record knows the generator; a model trained on the
same 1,284 (MOSI) or 1,368 (SIMS) samples does not. To judge the gap between a trained
M³SA and that reference, this fits what a careful practitioner would try first: ridge
regression (alpha chosen on the valid split, never test) on each sample's masked mean of
every modality's features, concatenated. Its test metrics, under the dataset family's
names, are written as JSON next to the Bayes reference of the same split.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys

import numpy as np

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from msa_core.constants import SYNTHETIC_DATASETS, dataset_family  # noqa: E402
from msa_core.io import write_json_atomic  # noqa: E402
from msa_core.metrics import compute_metrics  # noqa: E402
from tfrecords import specs  # noqa: E402
from tfrecords.synthetic import SyntheticGenerator  # noqa: E402

RESULTS = os.path.join(os.path.dirname(__file__), "results", "linear_baseline.json")
ALPHAS = np.logspace(-2, 4, 13)


def masked_means(examples):
    """Per sample: the mean over the valid steps of each modality, concatenated."""
    rows, labels = [], []
    for example in examples:
        parts = []
        for modality in specs.MODALITIES:
            x = np.asarray(example[modality], dtype=np.float64)
            x = np.where(np.isfinite(x), x, 0.0)  # -inf audio, as the loader maps it
            parts.append(x.mean(axis=0) if len(x) else np.zeros(x.shape[1]))
        rows.append(np.concatenate(parts))
        labels.append(float(example["labels"]["fused"]))
    return np.stack(rows), np.asarray(labels)


def ridge(x, y, alpha):
    """Closed-form ridge with an unpenalised intercept, on standardised features."""
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-8
    z = (x - mean) / scale
    w = np.linalg.solve(z.T @ z + alpha * np.eye(z.shape[1]), z.T @ (y - y.mean()))
    return lambda q: ((q - mean) / scale) @ w + y.mean()


def fit_ridge(x_tr, y_tr, x_va, y_va):
    """(predict, alpha): the ridge whose alpha in ALPHAS has the lowest validation MAE
    (the first such alpha on a tie)."""
    valid_mae = {float(a): float(np.mean(np.abs(ridge(x_tr, y_tr, a)(x_va) - y_va)))
                 for a in ALPHAS}
    alpha = min(valid_mae, key=valid_mae.get)
    return ridge(x_tr, y_tr, alpha), alpha


def run(name: str, seed: int) -> dict:
    gen = SyntheticGenerator(name, scale=1.0, seed=seed)
    data = {split: masked_means(gen.examples(split)) for split in ("train", "valid", "test")}
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = data["train"], data["valid"], data["test"]
    predict, alpha = fit_ridge(x_tr, y_tr, x_va, y_va)
    family = dataset_family(name)
    return {
        "features": "masked mean of each modality, concatenated "
                    f"({x_tr.shape[1]} dims), standardised",
        "alpha_chosen_on_valid_mae": alpha,
        "valid": compute_metrics(family, y_va, predict(x_va)),
        "test": compute_metrics(family, y_te, predict(x_te)),
        "split_sizes": {split: int(len(v[1])) for split, v in data.items()},
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", nargs="+", default=["synthetic-mosi", "synthetic-sims"],
                        choices=sorted(SYNTHETIC_DATASETS))
    parser.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    parser.add_argument("--output", default=RESULTS)
    args = parser.parse_args(argv)
    results = {}
    for name in args.dataset:
        results[name] = run(name, args.seed)
        test = results[name]["test"]
        print(name, {k: round(v, 4) for k, v in test.items()}, flush=True)
    write_json_atomic(args.output, {
        "benchmark": "linear_baseline",
        "command": "python benchmarks/linear_baseline.py " + " ".join(
            sys.argv[1:] if argv is None else argv),
        "seed": args.seed,
        "results": results,
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
    })
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
