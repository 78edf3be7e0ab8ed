"""How much of each modality's evidence a model can learn from that modality alone.

    python benchmarks/modality_evidence.py [--dataset synthetic-sims-hard ...] \
        [--runs "M3SA=RUNS/synthetic-sims-hard/default/seed_*"] [--epochs 15] \
        [--output benchmarks/results/modality_evidence.json]

A fusion model can only discount a clip's unreliable modality if it knows, clip by
clip, what each modality says; that is bounded by what it extracts from each modality
on its own. For every modality m of a hard synthetic dataset and every target (m's own
label where the data has one, SIMS-like; the fused label always) this measures, on the
test split:

- **Bayes from m alone**: the exact posterior mean given m's features only
  (`HardBayesReference.posterior_means(stats, modalities=(m,))`), the ceiling;
- **ridge on m's pooled mean** (the penalty chosen on validation);
- **LSTM, last step**: Dense(32, tanh) → LSTM(32) read at the last valid step (the
  paper's extractor and readout), trained on m alone;
- **Conv1D + max**: Dense(32) → Conv1D(32, kernel 8, ReLU) → masked max over time, a
  window detector, trained on m alone;
- **window convolution + max**: the library's `extractor="conv"` layer
  (`WindowConvolution(32)`: kernels of 4, 16 and 48 steps, half of each one's channels
  relative to the clip's mean) → masked max over time, trained on m alone;
- with `--runs NAME=GLOB`, the test `unimodal_accuracy` of finished runs' unimodal heads
  (M³SA's heads, against the modality's own label where there is one, else the fused).

The learned models train with Adam 1e-3 and an MAE loss, early-stopped on validation
(patience 4, best weights restored); every figure is `msa_core.metrics.unimodal_accuracy`,
the binary accuracy M³SA's key-modality rule ranks its heads by. The JSON records the
command, the seeds and the machine.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time
from typing import Dict, List

import numpy as np

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
sys.path.insert(0, os.path.abspath(os.path.dirname(__file__)))

from linear_baseline import fit_ridge  # noqa: E402
from msa_core import metrics as msa_metrics  # noqa: E402
from msa_core.constants import SYNTHETIC_HARD_DATASETS, dataset_family  # noqa: E402
from msa_core.io import write_json_atomic  # noqa: E402
from tfrecords import specs  # noqa: E402
from tfrecords.synthetic import generator_for  # noqa: E402
from train_step import machine_info  # noqa: E402

RESULTS = os.path.join(os.path.dirname(__file__), "results", "modality_evidence.json")
SPLITS = ("train", "valid", "test")
LEARNED = ("lstm_last", "conv_max", "window_conv_max")


def modality_arrays(examples, modality: str, max_length: int):
    """(x [N, T, d] zero-padded, non-finite values as 0 as the loader maps them;
    lengths [N]; {target: labels [N]})."""
    width = np.asarray(examples[0][modality]).shape[1]
    x = np.zeros((len(examples), max_length, width), np.float32)
    lengths = np.zeros(len(examples), np.int32)
    targets: Dict[str, List[float]] = {}
    for i, example in enumerate(examples):
        values = np.asarray(example[modality], np.float32)[:max_length]
        x[i, :len(values)] = np.where(np.isfinite(values), values, 0.0)
        lengths[i] = len(values)
        for name, value in example["labels"].items():
            targets.setdefault(name, []).append(float(value))
    labels = {"fused": np.asarray(targets["fused"], np.float32)}
    if modality in targets:
        labels["own"] = np.asarray(targets[modality], np.float32)
    return x, lengths, labels


def learned_model(kind: str, max_length: int, width: int, seed: int):
    """An MAE-trained regressor over one modality's sequence (see the module doc)."""
    import keras

    keras.utils.set_random_seed(seed)
    x_in = keras.Input((max_length, width), name="x")
    length_in = keras.Input((), dtype="int32", name="length")
    mask = keras.ops.less(keras.ops.arange(max_length)[None, :],
                          keras.ops.expand_dims(length_in, 1))
    if kind == "lstm_last":
        h = keras.layers.Dense(32, activation="tanh")(x_in)
        # An empty sequence: the LSTM returns its zero initial state.
        h = keras.layers.LSTM(32)(h, mask=mask)
    elif kind == "conv_max":
        valid = keras.ops.expand_dims(mask, -1)
        # Zeroed past the length, so the kernel near a clip's end sees what a clip
        # padded with zeros shows, whatever the padding holds.
        h = keras.ops.where(valid, keras.layers.Dense(32)(x_in), 0.0)
        h = keras.layers.Conv1D(32, 8, padding="same", activation="relu")(h)
        # ReLU outputs are >= 0, so 0 at padded steps never wins the max over a valid one,
        # and an empty sequence pools to 0.
        h = keras.ops.max(keras.ops.where(valid, h, 0.0), axis=1)
    elif kind == "window_conv_max":
        from m3sa_tf.layers import SequenceReadout, WindowConvolution

        h = SequenceReadout("max")(WindowConvolution(32)(x_in, mask), mask)
    else:
        raise ValueError(f"kind={kind!r} is not one of {list(LEARNED)}")
    h = keras.layers.Dense(32, activation="relu")(h)
    model = keras.Model([x_in, length_in], keras.layers.Dense(1)(h)[:, 0])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mae")
    return model


def fit_learned(kind, data, target, seed, epochs):
    import keras

    (x_tr, l_tr, y_tr), (x_va, l_va, y_va) = (
        (data[s][0], data[s][1], data[s][2][target]) for s in ("train", "valid"))
    model = learned_model(kind, x_tr.shape[1], x_tr.shape[2], seed)
    history = model.fit([x_tr, l_tr], y_tr, validation_data=([x_va, l_va], y_va),
                        batch_size=64, epochs=epochs, verbose=0, shuffle=True,
                        callbacks=[keras.callbacks.EarlyStopping(
                            patience=4, restore_best_weights=True)])
    best = int(np.argmin(history.history["val_loss"])) + 1
    return (model.predict([data["test"][0], data["test"][1]], batch_size=128,
                          verbose=0).reshape(-1), best)


def run_heads(pattern: str) -> Dict[str, Dict[str, float]]:
    """{modality: {"mean", "values"}} of finished runs' test unimodal accuracy."""
    paths = sorted(glob.glob(os.path.join(pattern, "metrics.json")))
    if not paths:
        raise SystemExit(f"--runs {pattern!r}: no finished run (metrics.json) matches")
    values: Dict[str, List[float]] = {}
    for path in paths:
        with open(path) as handle:
            for m, v in json.load(handle)["test"].get("unimodal_accuracy", {}).items():
                values.setdefault(m, []).append(float(v))
    return {m: {"mean": float(np.mean(v)), "values": v} for m, v in values.items()}


def measure(name: str, seed: int, model_seed: int, epochs: int, scale: float,
            learned=LEARNED) -> dict:
    gen = generator_for(name, scale=scale, seed=seed)
    reference = gen.bayes_reference()
    family = dataset_family(name)
    spec = specs.spec_for(name)
    examples = {split: list(gen.examples(split)) for split in SPLITS}
    stats = np.stack([reference.statistics(e) for e in examples["test"]])
    out = {}
    for m in specs.MODALITIES:
        data = {split: modality_arrays(examples[split], m, spec.max_lengths[m])
                for split in SPLITS}
        bayes = reference.posterior_means(stats, modalities=(m,))
        pooled = {s: data[s][0].sum(1) / np.maximum(data[s][1], 1)[:, None] for s in SPLITS}
        out[m] = {}
        for target in data["test"][2]:
            y = {s: data[s][2][target] for s in SPLITS}
            row = {"bayes_alone": msa_metrics.unimodal_accuracy(
                family, y["test"], bayes["fused" if target == "fused" else m])}
            predict, _ = fit_ridge(pooled["train"], y["train"], pooled["valid"], y["valid"])
            row["ridge_pooled_mean"] = msa_metrics.unimodal_accuracy(
                family, y["test"], predict(pooled["test"]))
            if learned:
                for kind in learned:
                    start = time.time()
                    prediction, best = fit_learned(kind, data, target, model_seed, epochs)
                    row[kind] = msa_metrics.unimodal_accuracy(family, y["test"], prediction)
                    row[f"{kind}_best_epoch"] = best
                    row[f"{kind}_seconds"] = round(time.time() - start, 1)
            out[m][target] = row
            print(name, m, target, {k: round(v, 3) for k, v in row.items()
                                    if not k.endswith(("_epoch", "_seconds"))}, flush=True)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", nargs="+", default=["synthetic-sims-hard"],
                        choices=list(SYNTHETIC_HARD_DATASETS))
    parser.add_argument("--runs", action="append", default=[],
                        help="NAME=GLOB of finished run directories of the (single) "
                             "dataset whose unimodal heads to list beside (repeatable)")
    parser.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    parser.add_argument("--model-seed", type=int, default=1111)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--scale", type=float, default=1.0,
                        help="split sizes x scale (smoke tests only; results are full size)")
    parser.add_argument("--no-learned", action="store_true",
                        help="Bayes and ridge only (no training)")
    parser.add_argument("--learned", default=",".join(LEARNED),
                        help=f"comma-separated learned models to train (default: all of "
                             f"{', '.join(LEARNED)})")
    parser.add_argument("--output", default=RESULTS)
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs {args.epochs}: must be at least 1")
    kinds = tuple(k.strip() for k in args.learned.split(",") if k.strip())
    unknown = [k for k in kinds if k not in LEARNED]
    if unknown or not kinds:
        parser.error(f"--learned {args.learned!r}: expected some of {', '.join(LEARNED)}")
    if args.runs and len(args.dataset) != 1:
        parser.error("--runs lists one dataset's runs: give exactly one --dataset")
    heads = {}
    for item in args.runs:
        label, sep, pattern = item.partition("=")
        if not sep or not label or not pattern:
            parser.error(f"--runs {item!r}: expected NAME=GLOB")
        heads[label] = run_heads(pattern)
    results = {}
    for name in args.dataset:
        start = time.time()
        results[name] = measure(name, args.seed, args.model_seed, args.epochs, args.scale,
                                learned=() if args.no_learned else kinds)
        results[name]["seconds"] = round(time.time() - start, 1)
    write_json_atomic(args.output, {
        "benchmark": "modality_evidence",
        "command": "python benchmarks/modality_evidence.py " + " ".join(
            sys.argv[1:] if argv is None else argv),
        "split": "test",
        "metric": "msa_core.metrics.unimodal_accuracy (Has0_acc_2 / Mult_acc_2)",
        "seed": args.seed, "model_seed": args.model_seed, "epochs": args.epochs,
        "scale": args.scale,
        "results": results,
        "run_heads": heads,
        "machine": machine_info(),
    })
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
