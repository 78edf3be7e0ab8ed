"""`python -m pipelines.train`: train M³SA with the paper's protocol.

    python -m pipelines.train --dataset D --data-dir DATA --output-dir RUN \\
        [--epochs N] [--seeds S,...] [--key-modality auto|text|audio|vision] \\
        [--strategy auto|default|mirrored|multi-worker] [--hparams FILE] [--scale F] \\
        [--set key=value ...]

Hyper-parameters resolve in this order, later winning: the dataset's defaults
(`M3SAConfig.for_dataset`), `--hparams FILE` (the config's JSON form, possibly partial),
`--set key=value` (any M3SAConfig field; the value is read as JSON when it parses, else
as a string; `--set hidden_sizes.text=32` sets one entry of a mapping), and the
dedicated flags (`--epochs`, `--key-modality`). Rerunning the same command after a kill
resumes after the last finished epoch. User errors print `error: ...` and exit 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Dict, List, Optional, Sequence

from m3sa_tf.config import KEY_MODALITIES, ConfigError, M3SAConfig

DEFAULT_DATASET = "synthetic-mosi"


class UsageError(ValueError):
    """A command-line value that cannot be used."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.train",
        description="Train and evaluate M³SA (best epoch by validation loss, early "
        "stopping, one test with the best weights).",
    )
    parser.add_argument("--dataset", default=None,
                        help=f"mosi, sims, mosei or synthetic-*; default {DEFAULT_DATASET} "
                        "(or the dataset named in --hparams)")
    parser.add_argument("--data-dir", default=None,
                        help="TFRecord directory; default $M3SA_DATA_DIR or ~/tensorflow_datasets")
    parser.add_argument("--output-dir", default=None, help="run directory; default runs/<dataset>")
    parser.add_argument("--epochs", type=int, default=None, help="maximum epochs")
    parser.add_argument("--seeds", default=None,
                        help="comma-separated seeds, e.g. 1111,1112,1113 (mean ± std)")
    parser.add_argument("--key-modality", choices=KEY_MODALITIES, default=None)
    parser.add_argument("--strategy", default="auto",
                        choices=("auto", "default", "mirrored", "multi-worker"))
    parser.add_argument("--hparams", default=None, help="JSON file of hyper-parameters")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="fraction of the synthetic datasets' full size (default 1.0)")
    parser.add_argument("--data-seed", type=int, default=0, help="synthetic generator seed")
    parser.add_argument("--set", dest="overrides", action="append", nargs="+", default=[],
                        metavar="KEY=VALUE", help="override any M3SAConfig field")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _check_type(key: str, value: Any) -> None:
    """The value's JSON type must fit the field's default (bool, int, number, string,
    mapping, list); config validation then checks the range."""
    defaults = M3SAConfig().to_dict()
    default = defaults[key]
    if default is None:
        return
    if isinstance(default, bool):
        ok = isinstance(value, bool)
        expected = "true or false"
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
        expected = "an integer"
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        expected = "a number"
    elif isinstance(default, str):
        ok = isinstance(value, str)
        expected = "a string"
    elif isinstance(default, dict):
        ok = isinstance(value, dict)
        expected = "a JSON object"
    else:
        ok = isinstance(value, list)
        expected = "a JSON list"
    if not ok:
        raise UsageError(f"--set {key}={json.dumps(value)}: expected {expected}")


def parse_overrides(items: Sequence[str]) -> Dict[str, Any]:
    """`["lr=1e-3", "hidden_sizes.text=32"]` → {"lr": 0.001, "hidden_sizes": {"text": 32}}."""
    fields = set(M3SAConfig().to_dict())
    overrides: Dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise UsageError(f"--set {item!r}: expected KEY=VALUE")
        key, raw = item.split("=", 1)
        key = key.strip()
        value = _parse_value(raw)
        if "." in key:
            field, entry = key.split(".", 1)
            if field not in fields or not isinstance(M3SAConfig().to_dict()[field], dict):
                raise UsageError(
                    f"--set {key}: {field!r} is not a mapping field of M3SAConfig"
                )
            overrides.setdefault(field, {})[entry] = value
            continue
        if key not in fields:
            raise UsageError(
                f"--set {key}: unknown hyper-parameter; expected one of {sorted(fields)}"
            )
        _check_type(key, value)
        if isinstance(value, dict):
            overrides.setdefault(key, {}).update(value)
        else:
            overrides[key] = value
    return overrides


def parse_seeds(text: Optional[str]) -> Optional[List[int]]:
    if text is None:
        return None
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"--seeds {text!r}: expected comma-separated integers") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise UsageError(f"--seeds {text!r}: expected distinct integers")
    return seeds


def resolve_config(args: argparse.Namespace) -> M3SAConfig:
    """The M3SAConfig the flags ask for (see the module docstring for the order)."""
    file_values: Dict[str, Any] = {}
    if args.hparams:
        try:
            with open(args.hparams, "r", encoding="utf-8") as handle:
                file_values = json.load(handle)
        except OSError as err:
            raise UsageError(f"--hparams {args.hparams}: cannot read it ({err.strerror})") from None
        except json.JSONDecodeError as err:
            raise UsageError(f"--hparams {args.hparams}: not valid JSON ({err})") from None
        if not isinstance(file_values, dict):
            raise UsageError(f"--hparams {args.hparams}: expected a JSON object of hyper-parameters")
    file_dataset = file_values.pop("dataset", None)
    if args.dataset and file_dataset and args.dataset != file_dataset:
        raise UsageError(
            f"--dataset {args.dataset} disagrees with {args.hparams}, which is for {file_dataset}"
        )
    dataset = args.dataset or file_dataset or DEFAULT_DATASET
    values = dict(file_values)
    for key, value in parse_overrides([i for group in args.overrides for i in group]).items():
        if isinstance(value, dict) and isinstance(values.get(key), dict):
            values[key] = {**values[key], **value}
        else:
            values[key] = value
    if args.epochs is not None:
        values["epochs"] = args.epochs
    if args.key_modality is not None:
        values["key_modality"] = args.key_modality
    return M3SAConfig.for_dataset(dataset, **values)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        config = resolve_config(args)
        seeds = parse_seeds(args.seeds)
        if not args.scale > 0:
            raise UsageError(f"--scale {args.scale}: expected a number > 0")
    except (UsageError, ConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    # TensorFlow is imported only once the flags are known to be good.
    import tfrecords
    from pipelines import distribute, training

    output_dir = args.output_dir or os.path.join("runs", config.dataset)
    try:
        strategy = distribute.resolve_strategy(args.strategy)
        kwargs = dict(scale=args.scale, data_seed=args.data_seed, strategy=strategy,
                      verbose=0 if args.quiet else 1)
        if seeds is None:
            training.train_and_evaluate(config, args.data_dir, output_dir, **kwargs)
        else:
            training.train_seeds(config, seeds, args.data_dir, output_dir, **kwargs)
    except (
        ConfigError,
        tfrecords.DatasetNotBuiltError,
        tfrecords.DatasetError,
        distribute.StrategyError,
        training.RunDirError,
    ) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
