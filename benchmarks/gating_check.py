"""Does a trained model discount a clip's unreliable modality? Prediction shifts under
corruption, model against model.

    python benchmarks/gating_check.py --group "M3SA=RUNS/default/seed_*" \
        --group "equal fusion=RUNS/equal_fusion/seed_*" [--data-dir DATA] \
        [--output benchmarks/results/gating_check.json]

Each group is a set of finished `pipelines.train` run directories (a glob; typically one
per seed) of one model on one dataset. For each run its best model predicts the test
split clean and with each modality *corrupted* (replaced by another test clip's, the
`robustness` experiment's condition) and *missing*; recorded per modality:

- `shift`: mean |prediction(corrupted) − prediction(clean)| over the test clips;
- `relative_shift`: that divided by the standard deviation of the clean predictions, so
  that a model whose predictions span a wider range is not penalised for it;
- the headline accuracy (`Has0_acc_2` / `Mult_acc_2`) clean and under the condition.

On the hard synthetic family a modality is, clip by clip, present, absent or flipped; a
model that weighs each clip's modalities by how reliable they look moves less when one
of them is swapped for another clip's than a model that averages them with fixed
weights. Means ± std over each group's runs are written to the JSON and printed.

With `--references DATASET` (a hard synthetic dataset, at the runs' `--scale` and
`--data-seed`), two predictors that need no training run are measured under the same
conditions on the same test clips: the Bayes reference (the exact posterior mean; it
knows each modality may be absent or flipped, so it shows how far the ideal predictor
discounts a swapped-in modality) and the ridge on pooled means (a fixed linear
weighting: how much a model that never gates moves). Their donors are drawn with numpy
(`--seed`), not the models' tf derangement, so the figures compare as averages.

With `--compare MODEL,PEER` (repeatable) the two groups' runs are paired by seed and
`pipelines.experiments.gating.gating_verdict` judges, per modality, whether MODEL moves
less than PEER when the modality is swapped; a modality is judged only where the Bayes
reference (with `--references`) itself moves less than PEER. `--require` turns the
verdict into a check: exit 1 unless every judged modality passes.

    python benchmarks/gating_check.py --references synthetic-sims-hard \
        --group "M3SA=RUNS/default/seed_*" --group "equal fusion=RUNS/equal_fusion/seed_*" \
        --compare "M3SA,equal fusion" --require
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shlex
import sys
import time
from typing import Dict, List

import numpy as np

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
sys.path.insert(0, os.path.abspath(os.path.dirname(__file__)))

from msa_core.io import write_json_atomic  # noqa: E402
from pipelines.experiments.gating import gating_verdict, shift_record  # noqa: E402
from train_step import machine_info  # noqa: E402

RESULTS = os.path.join(os.path.dirname(__file__), "results", "gating_check.json")
HEADLINE = {"mosi": "Has0_acc_2", "sims": "Mult_acc_2"}


def check_run(run_dir: str, data_dir=None) -> Dict[str, Dict[str, float]]:
    import keras

    from m3sa_tf import M3SAConfig
    from pipelines import run_dir as rundir
    from pipelines.experiments import perturbations
    from pipelines.protocol import load_data

    with open(os.path.join(run_dir, rundir.METRICS_FILE)) as handle:
        metrics = json.load(handle)
    with open(os.path.join(run_dir, rundir.CONFIG_FILE)) as handle:
        config = M3SAConfig.from_dict(json.load(handle))
    model = keras.saving.load_model(os.path.join(run_dir, rundir.MODEL_FILE))
    eval_sets, info = load_data(config, data_dir, scale=metrics["scale"],
                                data_seed=metrics["data_seed"], keep_ids=True,
                                shuffle=False, splits=("test",))
    modalities = tuple(config.modalities)
    names = ["clean"] + [f"{kind}:{m}" for kind in ("corrupted", "missing")
                         for m in modalities]
    predictions: Dict[str, dict] = {}
    scores = perturbations.evaluate_conditions(
        model, eval_sets["test"], info.family, modalities, names, seed=0,
        predictions=predictions)
    clean = predictions["clean"]
    headline = HEADLINE[info.family]
    for name in names[1:]:
        if not np.array_equal(predictions[name]["id"], clean["id"]):
            raise RuntimeError(f"{run_dir}: {name} predictions are not in the clean order")
    return shift_record({n: predictions[n]["fused"] for n in names},
                             {n: scores[n][headline] for n in names})


def reference_shifts(dataset: str, scale: float, data_seed: int, seed: int = 0):
    """{"Bayes": {...}, "ridge on pooled means": {...}}: `check_run`'s record for the
    two references on the test split of a hard synthetic dataset."""
    from linear_baseline import fit_ridge, masked_means

    from msa_core.constants import dataset_family
    from msa_core.metrics import compute_metrics
    from tfrecords import specs
    from tfrecords.synthetic import generator_for

    generator = generator_for(dataset, scale=scale, seed=data_seed)
    bayes = generator.bayes_reference()
    family = dataset_family(dataset)
    examples = {split: list(generator.examples(split)) for split in ("train", "valid", "test")}
    (x_tr, y_tr), (x_va, y_va) = masked_means(examples["train"]), masked_means(examples["valid"])
    linear, _ = fit_ridge(x_tr, y_tr, x_va, y_va)
    predictors = {
        "Bayes": lambda rows: bayes.posterior_means(
            np.stack([bayes.statistics(e) for e in rows]))["fused"],
        "ridge on pooled means": lambda rows: linear(masked_means(rows)[0]),
    }
    test = examples["test"]
    labels = np.array([float(e["labels"]["fused"]) for e in test])
    rng = np.random.default_rng(seed)
    n = len(test)
    donors = (np.arange(n) + rng.integers(1, n, size=n)) % n  # never the clip itself
    # A modality's own arrays: the text is its features and its token ids.
    own = {m: [m] + (["text_token_ids", "text_segment_ids"] if m == "text" else [])
           for m in specs.MODALITIES}
    conditions = {"clean": test}
    for m in specs.MODALITIES:
        conditions[f"corrupted:{m}"] = [
            dict(e, **{k: test[d][k] for k in own[m]}) for e, d in zip(test, donors)]
        conditions[f"missing:{m}"] = [
            dict(e, **{k: np.asarray(e[k])[:0] for k in own[m]}) for e in test]
    headline = HEADLINE[family]
    out = {}
    for name, predict in predictors.items():
        predictions = {c: np.asarray(predict(rows), np.float64)
                       for c, rows in conditions.items()}
        out[name] = shift_record(predictions, {
            c: compute_metrics(family, labels, p)[headline] for c, p in predictions.items()})
    return out


def summarise(per_run: List[Dict[str, Dict[str, float]]]) -> Dict[str, Dict[str, dict]]:
    summary = {}
    for condition in per_run[0]:
        summary[condition] = {}
        for key in per_run[0][condition]:
            values = np.array([r[condition][key] for r in per_run])
            summary[condition][key] = {
                "mean": float(values.mean()),
                "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                "values": values.tolist()}
    return summary


def markdown(groups: Dict[str, dict]) -> str:
    conditions = [c for c in next(iter(groups.values()))["summary"] if c != "clean"]
    lines = ["| model | clean acc | " + " | ".join(
        f"{c} rel. shift (acc)" for c in conditions) + " |",
        "|---|---|" + "---|" * len(conditions)]
    for name, group in groups.items():
        s = group["summary"]
        cells = [f"{s[c]['relative_shift']['mean']:.3f} ± {s[c]['relative_shift']['std']:.3f}"
                 f" ({s[c]['accuracy']['mean']:.3f})" for c in conditions]
        lines.append(f"| {name} ({len(group['runs'])} runs) | "
                     f"{s['clean']['accuracy']['mean']:.3f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdict_text(verdict) -> str:
    lines = [f"{verdict['model']} against {verdict['peer']}, relative shift with one "
             f"modality swapped (seeds {verdict['seeds']}):"]
    for modality, v in verdict["modalities"].items():
        ideal = "" if v["reference"] is None else f", Bayes {v['reference']:.3f}"
        p = "n/a" if v["p_value"] is None else f"{v['p_value']:.3f}"
        state = ("not judged: the ideal moves more than the peer" if not v["expected"]
                 else "moves less" if v["passes"] else "does NOT move less")
        lines.append(f"  {modality}: {v['model']:.3f} vs {v['peer']:.3f}{ideal} "
                     f"(paired p {p}): {state}")
    lines.append("passed" if verdict["passed"] else "FAILED")
    return "\n".join(lines)


def run_seed(run_dir: str):
    with open(os.path.join(run_dir, "metrics.json")) as handle:
        return json.load(handle).get("seed")


def parse_group(text: str):
    name, sep, pattern = text.partition("=")
    if not sep or not name or not pattern:
        raise argparse.ArgumentTypeError(f"--group {text!r}: expected NAME=GLOB")
    runs = sorted(p for p in glob.glob(os.path.expanduser(pattern))
                  if os.path.isfile(os.path.join(p, "metrics.json")))
    if not runs:
        raise argparse.ArgumentTypeError(
            f"--group {text!r}: no finished run directory (with metrics.json) matches")
    return name, runs


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--group", action="append", type=parse_group, required=True,
                        help="NAME=GLOB of finished run directories (repeatable)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--references", default=None, metavar="DATASET",
                        help="also measure the Bayes reference and the ridge on pooled "
                             "means on this hard synthetic dataset's test split")
    parser.add_argument("--scale", type=float, default=None,
                        help="the references' data scale (default: the first run's)")
    parser.add_argument("--data-seed", type=int, default=None,
                        help="the references' generator seed (default: the first run's)")
    parser.add_argument("--seed", type=int, default=0, help="the references' donor draw")
    parser.add_argument("--compare", action="append", default=[], metavar="MODEL,PEER",
                        help="judge group MODEL against group PEER, paired by seed: does "
                             "it move less when a modality is swapped, where the Bayes "
                             "reference (with --references) moves less than PEER? "
                             "(repeatable)")
    parser.add_argument("--require", action="store_true",
                        help="with --compare: exit 1 unless every compared model passes")
    parser.add_argument("--output", default=RESULTS)
    args = parser.parse_args(argv)
    names = [name for name, _ in args.group]
    comparisons = []
    for text in args.compare:
        pair = [part.strip() for part in text.split(",")]
        if len(pair) != 2 or any(part not in names for part in pair):
            parser.error(f"--compare {text!r}: expected MODEL,PEER, two of the "
                         f"groups' names {names}")
        comparisons.append(pair)
    if args.require and not comparisons:
        parser.error("--require needs --compare MODEL,PEER")
    runs_of = dict(args.group)
    for name in {n for pair in comparisons for n in pair}:
        # Runs are paired by seed, so a compared group needs one run per seed.
        seeds = [run_seed(r) for r in runs_of[name]]
        if None in seeds or len(set(seeds)) != len(seeds):
            parser.error(f"--compare: group {name!r} needs one run per seed to pair by "
                         f"seed; its runs' seeds are {dict(zip(runs_of[name], seeds))}")
    if args.references:
        # Checked before any model is loaded: the references must see the runs' data.
        with open(os.path.join(args.group[0][1][0], "metrics.json")) as handle:
            first = json.load(handle)
        if first.get("dataset") != args.references:
            parser.error(f"--references {args.references!r}: the runs are on "
                         f"{first.get('dataset')!r}; the references must use the same data")
    started = time.time()
    groups = {}
    for name, runs in args.group:
        per_run = [check_run(r, args.data_dir) for r in runs]
        groups[name] = {"runs": runs, "seeds": [run_seed(r) for r in runs],
                        "per_run": per_run, "summary": summarise(per_run)}
        print(f"{name}: {len(runs)} runs checked", flush=True)
    if args.references:
        scale = first["scale"] if args.scale is None else args.scale
        data_seed = first["data_seed"] if args.data_seed is None else args.data_seed
        for name, record in reference_shifts(args.references, scale, data_seed,
                                             args.seed).items():
            groups[name] = {"runs": [f"{args.references} scale {scale} data seed "
                                     f"{data_seed}"], "per_run": [record],
                            "summary": summarise([record])}
    verdicts = []
    reference = groups["Bayes"]["per_run"][0] if "Bayes" in groups else None
    for pair in comparisons:
        model, peer = (dict(zip(groups[n]["seeds"], groups[n]["per_run"])) for n in pair)
        modalities = [c.split(":", 1)[1] for c in groups[pair[0]]["per_run"][0]
                      if c.startswith("corrupted:")]
        verdicts.append(dict(gating_verdict(model, peer, modalities, reference=reference),
                             model=pair[0], peer=pair[1]))
    write_json_atomic(args.output, {
        "benchmark": "gating_check",
        "command": "python benchmarks/gating_check.py " + shlex.join(argv or sys.argv[1:]),
        "machine": machine_info(),
        "wall_seconds": round(time.time() - started, 1),
        "groups": groups,
        "verdicts": verdicts,
    })
    print(markdown(groups))
    for verdict in verdicts:
        print(verdict_text(verdict))
    if args.require and not all(v["passed"] for v in verdicts):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
