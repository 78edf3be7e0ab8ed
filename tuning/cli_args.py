"""Command-line pieces shared by `tuning.search` and `tuning.sweep`.

The base configuration resolves exactly as in every other CLI (`pipelines.cli`, over
`M3SAConfig.from_overrides`): the dataset's and model's defaults, then `--hparams FILE`,
then `--set key=value` (value read as JSON when it parses, else as a string;
`--set hidden_sizes.text=32` sets one entry).

Example:

>>> args = build_example_parser().parse_args(
...     ["--dataset", "synthetic-mosi", "--output-dir", "T", "--set", "n_scales=3"])
>>> base_config_from_args(args).n_scales, sorted(set_keys(args))
(3, ['n_scales'])
"""

from __future__ import annotations

import argparse

from m3sa_tf.config import ConfigError, M3SAConfig, parse_assignments
from pipelines.cli import (
    add_config_arguments,
    add_data_arguments,
    assignments,
    check_scale,
    config_from_args,
    fail,
)
from tuning.space import fixed_keys

# A bad flag value is a configuration error like any other.
UsageError = ConfigError

__all__ = ["UsageError", "add_common_arguments", "base_config_from_args", "check_scale",
           "fail", "set_keys"]


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, dataset_required=True)
    add_data_arguments(parser)
    parser.add_argument("--output-dir", required=True, help="where the results go")
    parser.add_argument("--verbose", type=int, default=0, choices=(0, 1, 2),
                        help="Keras/keras-tuner verbosity (default 0)")


def base_config_from_args(args) -> M3SAConfig:
    """The base configuration of a search or sweep."""
    return config_from_args(args)


def set_keys(args) -> set:
    """The configuration keys `--set` holds fixed in a search: each field it sets, and
    `model_hparams.NAME` for each baseline hyper-parameter (`--set model_hparams.rank=4`
    fixes rank alone)."""
    return fixed_keys(parse_assignments(assignments(args)))


def build_example_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_common_arguments(parser)
    return parser
