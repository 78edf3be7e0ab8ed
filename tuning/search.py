"""`python -m tuning.search`: a keras-tuner search over a model's hyper-parameters.

    python -m tuning.search --dataset synthetic-mosi --data-dir DATA --output-dir TUNE \\
        [--model m3sa|lf_dnn|...] [--tuner bayesian|hyperband|random] [--max-trials N] \\
        [--epochs N] [--objective val_MAE] [--scale F] [--seed S] [--set key=value ...]

The space is the model's (`tuning.space`): M³SA's n, r, loss weights, … by default, a
baseline's spec `search_space` with `--model NAME`. A key set with `--set` is held fixed
(`--set model_hparams.NAME=V` fixes one of a baseline's own hyper-parameters).
Writes TUNE/best_hparams.json (the M3SAConfig JSON `pipelines.train --hparams` reads),
TUNE/trials.csv (one row per trial) and TUNE/summary.json. Rerunning the same command
continues an interrupted search. With KERASTUNER_TUNER_ID / KERASTUNER_ORACLE_IP /
KERASTUNER_ORACLE_PORT set it takes part in a distributed search (docs/tuning.md).
Exit status: 0 done, 1 no trial completed, 2 bad input, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from m3sa_tf.config import ConfigError  # noqa: E402
from tuning.cli_args import (  # noqa: E402
    UsageError, add_common_arguments, base_config_from_args, check_scale, fail, set_keys,
)
from tuning.tuners import TUNER_KINDS  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tuning.search",
        description="Hyper-parameter search (keras-tuner) over a model of the zoo "
                    "(--model; M3SA by default) with the training code of "
                    "pipelines.train.",
    )
    add_common_arguments(parser)
    parser.add_argument("--tuner", default="bayesian", choices=TUNER_KINDS)
    parser.add_argument("--max-trials", type=int, default=10,
                        help="number of trials (default 10)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="per-trial epoch budget (default: the configuration's "
                             "epochs); early stopping still applies")
    parser.add_argument("--objective", default=None,
                        help="validation metric to optimise (default val_MAE, the fused "
                             "head's validation MAE); e.g. val_loss, val_Has0_acc_2, "
                             "val_Mult_acc_2")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the tuner's sampling (default 0)")
    parser.add_argument("--initial-points", type=int, default=None,
                        help="bayesian: random trials before the Gaussian process "
                             "(default max(2, max_trials // 3))")
    return parser


def _print_summary(summary, output_dir) -> None:
    objective = summary["objective"]
    best = summary["best"]
    print(f"objective: {objective['name']} ({objective['direction']}imise), "
          "measured on the validation split")
    print(f"trials: {summary['trials']} {summary['status_counts']}; this session ran "
          f"{len(summary['trials_run'])} in {summary.get('session_seconds', 0):.1f} s")
    print(f"best trial {best['trial_id']}: {objective['name']} = {best['objective']:.6g}")
    for name, value in sorted(best["hyperparameters"].items()):
        print(f"  {name} = {value}")
    print(f"wrote {os.path.join(output_dir, 'best_hparams.json')} and "
          f"{os.path.join(output_dir, 'trials.csv')}")


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.max_trials < 1:
        return fail(f"--max-trials {args.max_trials} must be >= 1")
    if args.epochs is not None and args.epochs < 1:
        return fail(f"--epochs {args.epochs} must be >= 1")
    try:
        check_scale(args.scale)
    except ConfigError as err:
        return fail(err)

    from tfrecords.errors import DatasetError, DatasetNotBuiltError
    from tuning.objective import ObjectiveError
    from tuning.runner import DEFAULT_OBJECTIVE, NoCompletedTrialError, SearchSettingsError
    from tuning.runner import run_search
    from tuning.tuners import DistributedTuningError

    try:
        base = base_config_from_args(args)
        summary = run_search(
            base, args.data_dir, args.output_dir, tuner=args.tuner,
            max_trials=args.max_trials, epochs=args.epochs,
            objective=args.objective or DEFAULT_OBJECTIVE, scale=args.scale,
            data_seed=args.data_seed, seed=args.seed,
            fixed=set_keys(args),
            initial_points=args.initial_points, verbose=args.verbose,
        )
    except (UsageError, ConfigError, ObjectiveError, SearchSettingsError,
            DistributedTuningError, DatasetError, DatasetNotBuiltError) as err:
        return fail(str(err))
    except NoCompletedTrialError as err:
        return fail(str(err), code=1)
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to continue the search",
              file=sys.stderr)
        return 130
    if summary.get("role") == "worker":
        print(f"worker {summary['tuner_id']} ran trials {summary['trials_run']} in "
              f"{summary['session_seconds']:.1f} s; the chief writes the result files")
        return 0
    if summary.get("role") == "chief":
        print("chief: all workers are done")
    _print_summary(summary, args.output_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
