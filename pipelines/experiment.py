"""`python -m pipelines.experiment NAME`: one of the paper's experiments, over seeds,
with its table, figure and significance.

    python -m pipelines.experiment NAME --dataset D --output-dir EXP [--data-dir DATA]
        [--seeds 1111,1112,1113] [--epochs N] [--scale F] [--set key=value ...]
        [--hparams FILE] [--runs-dir RUNS] [--cells LABEL,...] [--quick]
        [--models tfn,lmf,...]                        (baselines, robustness)
        [--n 2-7] [--r 1-7]                           (scales)
        [--word-vectors GLOVE.txt --word-vectors-vocab vocab.txt]   (transfer)
        [--modality-dropout 0.3]                      (robustness)

NAME is one of baselines (Tables II/III), scales (Fig. 4), modalities (Fig. 5), transfer
(Fig. 6), multiscale (Fig. 7), fusion (Fig. 8), extractor (Fig. 9) or robustness
(missing / corrupted modalities at test time and modality dropout; beyond the paper).
Each cell and seed is an ordinary `pipelines.train` run directory
(EXP/runs/<cell>/seed_<s>/): rerunning the command after a kill resumes, and never
retrains a finished run. EXP/results.csv, EXP/summary.md and EXP/figure.png are
rewritten after every finished cell. `--quick` is a first look on synthetic data: a
quarter of the clips, six epochs, learning rate 1e-3 (flags given explicitly win).

Exit status: 0 done, 1 a run failed, 2 bad input, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

from m3sa_tf.config import ConfigError
from pipelines.cli import (
    add_data_arguments,
    assignments,
    check_scale,
    fail,
    parse_int_list,
    parse_seeds,
)
from pipelines.experiments import catalog

QUICK_SCALE = 0.25
QUICK_EPOCHS = 6
QUICK_LEARNING_RATE = 1e-3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.experiment",
        # --quick looks for the flags given explicitly; abbreviations would hide them.
        allow_abbrev=False,
        description="Run one of the paper's experiments over seeds: every cell is a "
                    "training run; writes results.csv, summary.md (with paired tests and "
                    "bootstrap intervals against the reference cell) and figure.png.",
    )
    parser.add_argument("name", choices=catalog.experiment_names(), metavar="NAME",
                        help="one of: " + ", ".join(catalog.experiment_names()))
    parser.add_argument("--dataset", required=True,
                        help="mosi, sims, mosei or synthetic-mosi/-sims/-mosei")
    parser.add_argument("--output-dir", required=True, help="the experiment directory EXP")
    add_data_arguments(parser)
    parser.add_argument("--seeds", default=",".join(map(str, _default_seeds())),
                        help="comma-separated training seeds (default %(default)s)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="cap on every cell's epochs (default: the configuration's)")
    parser.add_argument("--hparams", default=None,
                        help="JSON file of hyper-parameters applied to every cell")
    parser.add_argument(
        "--set", dest="overrides", action="append", nargs="+", default=[],
        metavar="KEY=VALUE", help="override an M3SAConfig field in every cell (the "
                                  "cell's own setting wins where they meet)")
    parser.add_argument("--runs-dir", default=None,
                        help="where the run directories go (default EXP/runs); share one "
                             "between experiments to reuse their common cells")
    parser.add_argument("--cells", default=None,
                        help="run only these cells: comma-separated labels as summary.md "
                             "names them (e.g. 'T+A,T+V'); the reference cell always runs")
    parser.add_argument("--models", default=None,
                        help="baselines/robustness: comma-separated models of the zoo "
                             "(default: every model the data supports / lf_dnn,tfn,lmf)")
    parser.add_argument("--n", default=None, help="scales: numbers of scales (default 2-7)")
    parser.add_argument("--r", default=None, help="scales: channel ratios (default 1-7)")
    parser.add_argument("--word-vectors", default=None,
                        help="transfer: a local GloVe-format file for an extra cell")
    parser.add_argument("--word-vectors-vocab", default=None,
                        help="transfer: vocabulary of the data's token ids (line i = id i)")
    parser.add_argument("--modality-dropout", type=float,
                        default=catalog.DEFAULT_MODALITY_DROPOUT,
                        help="robustness: rate of the cell trained with modality dropout "
                             "(default %(default)s)")
    parser.add_argument("--bootstrap-resamples", type=int, default=1000,
                        help="resamples of the test clips per comparison (default 1000)")
    parser.add_argument("--quick", action="store_true",
                        help=f"synthetic data only: --scale {QUICK_SCALE} --epochs "
                             f"{QUICK_EPOCHS} --set learning_rate={QUICK_LEARNING_RATE}")
    parser.add_argument("--verbose", action="store_true",
                        help="show each training's own progress output")
    return parser


def _default_seeds():
    from pipelines.experiments.runner import DEFAULT_SEEDS

    return DEFAULT_SEEDS


def settings_from_args(args: argparse.Namespace, argv: Sequence[str]):
    """The `ExperimentSettings` the flags ask for (ConfigError / ExperimentError)."""
    from pipelines.experiments.runner import ExperimentSettings

    sets = assignments(args)
    if args.quick:
        if not args.dataset.startswith("synthetic-"):
            raise ConfigError(f"--quick is for the synthetic datasets, not {args.dataset!r}")
        given = " ".join(argv)
        if "--scale" not in given:
            args.scale = QUICK_SCALE
        if args.epochs is None:
            args.epochs = QUICK_EPOCHS
        if not any(item.split("=", 1)[0].strip() == "learning_rate" for item in sets):
            sets = [f"learning_rate={QUICK_LEARNING_RATE!r}"] + sets
    check_scale(args.scale)
    if args.bootstrap_resamples < 100:
        raise ConfigError(f"--bootstrap-resamples {args.bootstrap_resamples}: expected >= 100")
    options = catalog.ExperimentOptions(
        models=tuple(m.strip() for m in args.models.split(",") if m.strip())
        if args.models else None,
        n_values=tuple(parse_int_list(args.n, "n", catalog.FIG4_N_SCALES)) if args.n else None,
        r_values=tuple(parse_int_list(args.r, "r", catalog.FIG4_CHANNEL_RATIOS))
        if args.r else None,
        word_vectors=args.word_vectors,
        word_vectors_vocab=args.word_vectors_vocab,
        modality_dropout=args.modality_dropout,
    )
    if args.word_vectors and not os.path.exists(args.word_vectors):
        raise ConfigError(f"--word-vectors {args.word_vectors}: no such file")
    return ExperimentSettings(
        name=args.name, dataset=args.dataset, output_dir=args.output_dir,
        seeds=tuple(parse_seeds(args.seeds)), data_dir=args.data_dir, scale=args.scale,
        data_seed=args.data_seed, epochs=args.epochs, hparams_file=args.hparams,
        assignments=tuple(sets), runs_dir=args.runs_dir, options=options,
        bootstrap_resamples=args.bootstrap_resamples,
        cells=tuple(c.strip() for c in args.cells.split(",") if c.strip())
        if args.cells else None,
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import tensorflow as tf

    import tfrecords
    from pipelines.experiments.runner import resolve_cells, run_experiment

    # Every cell builds and traces new models in this one process; TensorFlow's warning
    # about "excessive retracing" is the expected consequence, and it would bury the
    # progress lines.
    tf.get_logger().setLevel("ERROR")
    from pipelines.run_dir import RunDirError

    try:
        settings = settings_from_args(args, argv)
        resolve_cells(settings)
    except (ConfigError, catalog.ExperimentError) as err:
        return fail(err)
    try:
        run_experiment(settings, verbose=1 if args.verbose else 0)
    except (ConfigError, catalog.ExperimentError, RunDirError, tfrecords.DatasetError,
            tfrecords.DatasetNotBuiltError) as err:
        return fail(err)
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to continue (finished runs are kept)",
              file=sys.stderr)
        return 130
    except Exception as err:  # a run that crashed: its finished neighbours are reported
        print(f"error: a run failed: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
