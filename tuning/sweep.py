"""`python -m tuning.sweep`: the n × r grid of the paper's Fig. 4 through pipelines.training.

    python -m tuning.sweep --dataset synthetic-mosi --data-dir DATA --output-dir SWEEP \\
        [--n 2,3,4,5,6,7] [--r 1-7] [--metric val_Has0_acc_2] [--set key=value ...]

Each cell is one training run (SWEEP/runs/n{n}_r{r}/, the layout of pipelines.train);
SWEEP/sweep.csv holds the table and SWEEP/heatmap_<metric>.png the heat map. Rerunning
skips finished cells. n and r are M³SA's: a configuration of another model (--model) is
refused (exit 2). Exit status: 0 done, 1 a cell failed, 2 bad input, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from m3sa_tf.config import ConfigError  # noqa: E402
from tuning.cli_args import (  # noqa: E402
    UsageError, add_common_arguments, base_config_from_args, check_scale, fail,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tuning.sweep",
        description="Sweep the number of scales n and the channel ratio r (paper Fig. 4) "
                    "with the training protocol of pipelines.train; table + heat map.",
    )
    add_common_arguments(parser)
    parser.add_argument("--n", default="2,3,4,5,6,7",
                        help="numbers of scales, e.g. 2,3,4 or 2-7 (default 2-7)")
    parser.add_argument("--r", default="1,2,3,4,5,6,7",
                        help="channel ratios, e.g. 1,4 or 1-7 (default 1-7)")
    parser.add_argument("--metric", default=None,
                        help="metric of the heat map: val_<name> (default val_Has0_acc_2 "
                             "for MOSI/MOSEI, val_Mult_acc_2 for SIMS) or test_<name>")
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs per cell (default: the configuration's)")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        check_scale(args.scale)
    except ConfigError as err:
        return fail(err)
    if args.epochs is not None and args.epochs < 1:
        return fail(f"--epochs {args.epochs} must be >= 1")

    from tfrecords.errors import DatasetError, DatasetNotBuiltError
    from tuning import space
    from pipelines.training import RunDirError
    from tuning.grid import SweepError, parse_int_list, run_sweep

    try:
        n_values = parse_int_list(args.n, "n", space.N_SCALES_RANGE)
        r_values = parse_int_list(args.r, "r", space.CHANNEL_RATIO_RANGE)
        base = base_config_from_args(args)
        space.require_m3sa(base, "the n × r sweep")
        if args.epochs is not None:
            base = base.replace(epochs=args.epochs)
        rows = run_sweep(base, args.data_dir, args.output_dir, n_values=n_values,
                         r_values=r_values, metric=args.metric, scale=args.scale,
                         data_seed=args.data_seed, verbose=args.verbose)
    except (UsageError, ConfigError, SweepError, DatasetError, DatasetNotBuiltError,
            RunDirError) as err:
        return fail(str(err))
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to continue the sweep", file=sys.stderr)
        return 130
    failed = [r for r in rows if r["status"] != "COMPLETED"]
    metric = rows[0]["metric"]
    done = [r for r in rows if r["value"] is not None]
    if done:
        best = max(done, key=lambda r: r["value"]) if not metric.endswith("MAE") else \
            min(done, key=lambda r: r["value"])
        print(f"best cell: n={best['n_scales']} r={best['channel_ratio']} "
              f"{metric} = {best['value']:.6g}")
    print(f"{len(rows) - len(failed)}/{len(rows)} cells finished; wrote "
          f"{os.path.join(args.output_dir, 'sweep.csv')} and "
          f"{os.path.join(args.output_dir, f'heatmap_{metric}.png')}")
    if failed:
        return fail(f"{len(failed)} cell(s) failed; see the error column of sweep.csv", 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
