"""`python -m pipelines.train`: train M³SA, or a baseline, with the paper's protocol.

    python -m pipelines.train --dataset D [--model NAME] --data-dir DATA --output-dir RUN \\
        [--epochs N] [--seeds S,...] [--key-modality auto|text|audio|vision] \\
        [--strategy auto|default|mirrored|multi-worker] [--hparams FILE] [--scale F] \\
        [--set key=value ...] [--quick]

`--quick` is a first look in a few minutes on synthetic data (a quarter of the clips, six
epochs, learning rate 1e-3). Hyper-parameters resolve in this order, later winning (`M3SAConfig.from_overrides`): the
dataset's and model's defaults, `--hparams FILE` (the config's JSON form, possibly
partial), `--set key=value` (any M3SAConfig field; the value is read as JSON when it
parses, else as a string; `--set hidden_sizes.text=32` sets one entry of a mapping,
`--set model_hparams.rank=4` one of a baseline's hyper-parameters), and the dedicated
flags (`--epochs`, `--key-modality`). Rerunning the same command after a kill resumes
after the last finished epoch. User errors print `error: ...` and exit 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

from m3sa_tf.config import KEY_MODALITIES, ConfigError
from pipelines.cli import (
    add_config_arguments,
    add_data_arguments,
    check_scale,
    config_from_args,
    fail,
    parse_seeds,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.train",
        description="Train and evaluate M³SA or a baseline (best epoch by validation "
        "loss, early stopping, one test with the best weights).",
    )
    add_config_arguments(parser)
    add_data_arguments(parser)
    parser.add_argument("--output-dir", default=None,
                        help="run directory; default runs/<dataset> (runs/<dataset>-<model> "
                             "for a baseline)")
    parser.add_argument("--epochs", type=int, default=None, help="maximum epochs")
    parser.add_argument("--seeds", default=None,
                        help="comma-separated seeds, e.g. 1111,1112,1113 (mean ± std)")
    parser.add_argument("--key-modality", choices=KEY_MODALITIES, default=None)
    parser.add_argument("--strategy", default="auto",
                        choices=("auto", "default", "mirrored", "multi-worker"))
    parser.add_argument("--quick", action="store_true",
                        help="a first look in a few minutes on synthetic data: "
                             f"{QUICK_DESCRIPTION} (flags given explicitly win)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


# At a quarter of synthetic-mosi M³SA learns within six epochs at 1e-3 (README: acc-2
# 0.72, Corr 0.66 on test, Bayes 0.80 / 0.84); at Table I's 5e-5 and 128 clips it would
# still be at chance after five.
QUICK_SCALE = 0.25
QUICK_VALUES = {"epochs": 6, "learning_rate": 1e-3}
QUICK_DESCRIPTION = "--scale 0.25 --epochs 6 --set learning_rate=1e-3"


def apply_quick(args: argparse.Namespace, argv: Sequence[str]) -> None:
    """Fills in the --quick preset where the user gave no value of their own."""
    if not args.quick:
        return
    given = " ".join(argv)
    if "--scale" not in given:
        args.scale = QUICK_SCALE
    if args.epochs is None:
        args.epochs = QUICK_VALUES["epochs"]
    if "learning_rate=" not in given:
        args.overrides = [["learning_rate=" + repr(QUICK_VALUES["learning_rate"])]] + list(
            args.overrides)


def resolve_config(args: argparse.Namespace):
    """The M3SAConfig the flags ask for (see the module docstring for the order)."""
    return config_from_args(args, epochs=args.epochs, key_modality=args.key_modality)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        apply_quick(args, argv)
        config = resolve_config(args)
        if args.quick and not config.dataset.startswith("synthetic-"):
            raise ConfigError(f"--quick is for the synthetic datasets, not {config.dataset!r}")
        seeds = parse_seeds(args.seeds)
        check_scale(args.scale)
    except ConfigError as err:
        return fail(err)

    import tfrecords
    from pipelines import distribute, training

    default_dir = config.dataset if config.model == "m3sa" else f"{config.dataset}-{config.model}"
    output_dir = args.output_dir or os.path.join("runs", default_dir)
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
        return fail(err)
    return 0


if __name__ == "__main__":
    sys.exit(main())
