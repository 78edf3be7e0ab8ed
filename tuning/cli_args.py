"""Command-line pieces shared by `tuning.search` and `tuning.sweep`.

The base configuration resolves exactly as in `pipelines.train` (its own functions do
it): the dataset's defaults, then `--hparams FILE`, then `--set key=value` (value read as
JSON when it parses, else as a string; `--set hidden_sizes.text=32` sets one entry).

Example:

>>> args = build_example_parser().parse_args(
...     ["--dataset", "synthetic-mosi", "--output-dir", "T", "--set", "n_scales=3"])
>>> base_config_from_args(args).n_scales, sorted(set_keys(args))
(3, ['n_scales'])
"""

from __future__ import annotations

import argparse
import sys
from typing import Set

from m3sa_tf.config import M3SAConfig
from pipelines.train import UsageError, parse_overrides, resolve_config

__all__ = ["UsageError", "add_common_arguments", "base_config_from_args", "fail", "set_keys"]


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True,
                        help="mosi, sims, mosei or synthetic-mosi/-sims/-mosei")
    parser.add_argument("--data-dir", default=None,
                        help="TFRecord data directory (default $M3SA_DATA_DIR or "
                             "~/tensorflow_datasets); synthetic data is built there if missing")
    parser.add_argument("--output-dir", required=True, help="where the results go")
    parser.add_argument("--hparams", default=None,
                        help="base configuration: an M3SAConfig JSON file, as for "
                             "pipelines.train (a subset of keys is applied over the "
                             "dataset's defaults)")
    parser.add_argument("--set", dest="overrides", action="append", nargs="+", default=[],
                        metavar="KEY=VALUE",
                        help="set a base configuration field, as for pipelines.train")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="fraction of each split of synthetic data (default 1.0)")
    parser.add_argument("--data-seed", type=int, default=0,
                        help="seed of the synthetic data (default 0)")
    parser.add_argument("--verbose", type=int, default=0, choices=(0, 1, 2),
                        help="Keras/keras-tuner verbosity (default 0)")


def _set_items(args):
    return [item for group in args.overrides for item in group]


def base_config_from_args(args) -> M3SAConfig:
    """The base configuration, resolved by `pipelines.train.resolve_config`."""
    return resolve_config(argparse.Namespace(
        dataset=args.dataset, hparams=args.hparams, overrides=args.overrides,
        epochs=None, key_modality=None,
    ))


def set_keys(args) -> Set[str]:
    """The configuration fields named by --set (a search holds them fixed)."""
    return set(parse_overrides(_set_items(args)))


def build_example_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_common_arguments(parser)
    return parser


def fail(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code
