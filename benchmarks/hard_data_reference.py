"""Does the hard synthetic family discriminate between models? Bayes, ridge, a small GRU.

    python benchmarks/hard_data_reference.py [--dataset synthetic-mosi-hard synthetic-sims-hard]
        [--seed 0] [--gru-seed 1111] [--no-gru] [--output benchmarks/results/hard_data_reference.json]

For each dataset (full size, generator seed `--seed`), on the test split:

- the Bayes reference (`tfrecords.synthetic_hard.HardBayesReference`, the exact posterior
  mean: the best possible predictor in squared error);
- a ridge on each modality's masked mean, concatenated, alpha chosen on valid MAE
  (exactly `benchmarks/linear_baseline.py`'s learner);
- a small GRU: per modality a Dense(32) on every step, a GRU(32) over the valid steps
  (Keras masking from the lengths), the three final states concatenated, Dense(32, relu),
  Dense(1); L1 loss (MMSA's), Adam 1e-3, batch 32, at most 20 epochs, early stopping on
  valid loss (patience 4, best weights restored); seed `--gru-seed`.

The same Bayes and ridge figures of the easy family (`synthetic-mosi`, `synthetic-sims`,
same seed) are recorded next to them, so the gap Bayes − ridge can be compared.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
sys.path.insert(0, os.path.abspath(os.path.dirname(__file__)))

from linear_baseline import fit_ridge, masked_means  # noqa: E402
from msa_core.constants import SYNTHETIC_HARD_DATASETS, dataset_family  # noqa: E402
from msa_core.io import write_json_atomic  # noqa: E402
from msa_core.metrics import compute_metrics  # noqa: E402
from tfrecords import specs  # noqa: E402
from tfrecords.synthetic import generator_for  # noqa: E402

RESULTS = os.path.join(os.path.dirname(__file__), "results", "hard_data_reference.json")
SPLITS = ("train", "valid", "test")


def _padded(examples, name):
    spec = specs.spec_for(name)
    n = len(examples)
    out = {}
    for m in specs.MODALITIES:
        x = np.zeros((n, spec.max_lengths[m], spec.feature_dims[m]), np.float32)
        lengths = np.zeros(n, np.int32)
        for i, e in enumerate(examples):
            v = np.asarray(e[m], np.float32)
            x[i, :len(v)] = np.where(np.isfinite(v), v, 0.0)
            lengths[i] = len(v)
        out[m], out[f"{m}_length"] = x, lengths
    return out


def small_gru(name, data, seed):
    """Trains the small GRU on train, early-stops on valid; predictions on valid/test."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    spec = specs.spec_for(name)
    inputs, states = {}, []
    for m in specs.MODALITIES:
        x = keras.Input((spec.max_lengths[m], spec.feature_dims[m]), name=m)
        length = keras.Input((), dtype="int32", name=f"{m}_length")
        inputs[m], inputs[f"{m}_length"] = x, length
        mask = keras.layers.Lambda(
            lambda n, t=spec.max_lengths[m]: keras.ops.less(
                keras.ops.arange(t)[None, :], keras.ops.expand_dims(n, 1)))(length)
        h = keras.layers.Dense(32, activation="tanh")(x)
        # An empty sequence: the GRU returns its zero initial state.
        states.append(keras.layers.GRU(32)(h, mask=mask))
    h = keras.layers.Dense(32, activation="relu")(keras.layers.Concatenate()(states))
    model = keras.Model(inputs, keras.layers.Dense(1)(h)[:, 0])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mae")
    x_tr, y_tr = data["train"]
    x_va, y_va = data["valid"]
    start = time.time()
    history = model.fit(
        x_tr, y_tr, validation_data=(x_va, y_va), batch_size=32, epochs=20, verbose=0,
        shuffle=True, callbacks=[keras.callbacks.EarlyStopping(
            patience=4, restore_best_weights=True)])
    seconds = time.time() - start
    del tf
    best = int(np.argmin(history.history["val_loss"]))
    return {split: model.predict(data[split][0], batch_size=128, verbose=0)
            for split in ("valid", "test")}, {
        "epochs_run": len(history.history["loss"]), "best_epoch": best + 1,
        "train_seconds": round(seconds, 1), "parameters": int(model.count_params())}


def _metrics(family, y, p):
    return {k: float(v) for k, v in compute_metrics(family, y, p).items()}


def run(name: str, seed: int, gru_seed: int, with_gru: bool, scale: float = 1.0) -> dict:
    gen = generator_for(name, scale=scale, seed=seed)
    ref = gen.bayes_reference()
    family = dataset_family(name)
    examples = {split: list(gen.examples(split)) for split in SPLITS}
    pooled = {split: masked_means(examples[split]) for split in SPLITS}
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = (pooled[s] for s in SPLITS)
    predict, alpha = fit_ridge(x_tr, y_tr, x_va, y_va)
    out = {"split_sizes": {s: len(examples[s]) for s in SPLITS}}
    bayes = {}
    for split, y in (("valid", y_va), ("test", y_te)):
        stats = np.stack([ref.statistics(e) for e in examples[split]])
        bayes[split] = _metrics(family, y, ref.posterior_means(stats)["fused"])
    out["bayes"] = bayes
    out["ridge_pooled_means"] = {
        "alpha_chosen_on_valid_mae": alpha,
        "valid": _metrics(family, y_va, predict(x_va)),
        "test": _metrics(family, y_te, predict(x_te))}
    if with_gru:
        data = {split: (_padded(examples[split], name), pooled[split][1].astype(np.float32))
                for split in SPLITS}
        del examples
        predictions, info = small_gru(name, data, gru_seed)
        out["small_gru"] = {**info, "seed": gru_seed,
                            "valid": _metrics(family, y_va, predictions["valid"]),
                            "test": _metrics(family, y_te, predictions["test"])}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", nargs="+",
                        default=["synthetic-mosi-hard", "synthetic-sims-hard"],
                        choices=list(SYNTHETIC_HARD_DATASETS))
    parser.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    parser.add_argument("--gru-seed", type=int, default=1111)
    parser.add_argument("--no-gru", action="store_true")
    parser.add_argument("--no-easy", action="store_true",
                        help="skip the easy family's Bayes/ridge figures")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="split sizes x scale (smoke tests only; results are full size)")
    parser.add_argument("--output", default=RESULTS)
    args = parser.parse_args(argv)
    results = {}
    names = list(args.dataset)
    if not args.no_easy:
        names += [n.removesuffix("-hard") for n in args.dataset]
    for name in names:
        start = time.time()
        results[name] = run(name, args.seed, args.gru_seed,
                            with_gru=specs.is_hard(name) and not args.no_gru,
                            scale=args.scale)
        results[name]["seconds"] = round(time.time() - start, 1)
        row = {model: results[name][model]["test"] for model in
               ("bayes", "ridge_pooled_means", "small_gru") if model in results[name]}
        key = "Has0_acc_2" if dataset_family(name) == "mosi" else "Mult_acc_2"
        print(name, {m: (round(v[key], 4), round(v["MAE"], 4), round(v["Corr"], 4))
                     for m, v in row.items()}, flush=True)
    write_json_atomic(args.output, {
        "benchmark": "hard_data_reference",
        "command": "python benchmarks/hard_data_reference.py " + " ".join(
            sys.argv[1:] if argv is None else argv),
        "seed": args.seed,
        "scale": args.scale,
        "split": "test metrics under 'test'; valid under 'valid'",
        "results": results,
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": os.cpu_count()},
    })
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
