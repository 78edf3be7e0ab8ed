"""A TFX-style pipeline: example_gen → statistics, trainer → evaluator → pusher.

This module is the wiring only: which stage reads which upstream artifact, and which
options become each stage's parameters. The stages live in `pipelines.stages`, and
`pipelines.stages.execution.run_stage` executes a stage or, when its inputs did not
change since a finished execution, skips it and reuses that execution's artifact. See
docs/pipeline.md.

    example_gen ─┬─▶ statistics
                 └─▶ trainer ──▶ evaluator ──▶ pusher
    (the evaluator also reads the examples' metadata, the pusher the trained model)

CLI:

    python -m pipelines.run --dataset D [--data-dir DATA] [--source PICKLE]
        [--pipeline-root ROOT] [--serving-dir DIR] [--model-name m3sa] [--scale F]
        [--data-seed S] [--epochs N] [--hparams FILE] [--set k=v ...]
        [--blessing-metric M] [--blessing-threshold X] [--verbose 0|1|2]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import sys
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from pipelines.cli import add_config_arguments, check_scale, config_from_args
from pipelines.stages import evaluator, example_gen, pusher, statistics, trainer
from pipelines.stages.execution import Execution, PipelineError, run_stage


@dataclasses.dataclass(frozen=True)
class PipelineOptions:
    """Everything one pipeline run is given.

    Attributes:
        config: the `M3SAConfig` to train (its `dataset` is the dataset to build).
        root: pipeline root; stage artifacts go to `root/<stage>/<execution_id>/`.
        serving_dir: where the pusher exports (`serving_dir/model_name/<version>/`).
        model_name: served model name.
        data_dir: external TFDS data directory for example_gen, or None to keep the
            TFRecords inside the example_gen artifact.
        source: MMSA pickle of a real dataset.
        scale, data_seed: synthetic datasets: fraction of the full size, generator seed.
        blessing_metric, blessing_threshold: the evaluator's blessing rule.
        verbose: Keras verbosity of the trainer (0 silent, 1 progress bar, 2 a line per
            epoch).
    """

    config: Any
    root: str
    serving_dir: str
    model_name: str = "m3sa"
    data_dir: Optional[str] = None
    source: Optional[str] = None
    scale: float = 1.0
    data_seed: int = 0
    blessing_metric: str = "MAE"
    blessing_threshold: Optional[float] = None
    verbose: int = 2


ParameterFn = Callable[[PipelineOptions, Mapping[str, Execution]], Dict[str, Any]]


@dataclasses.dataclass(frozen=True)
class Node:
    """One stage in the graph: its module, its inputs (input name → upstream node
    name) and how its parameters follow from the options and its inputs."""

    name: str
    run: Callable[..., Mapping[str, Any]]
    inputs: Mapping[str, str]
    parameters: ParameterFn


def _evaluator_parameters(options: PipelineOptions, inputs: Mapping[str, Execution]) -> dict:
    baseline = pusher.last_pushed(
        options.root, options.serving_dir, options.model_name, options.blessing_metric,
        exclude_model_fingerprint=inputs["model"].fingerprint,
    )
    return evaluator.parameters(options.blessing_metric, options.blessing_threshold, baseline)


def pipeline_graph(options: PipelineOptions) -> List[Node]:
    """The stages in execution order (each after the stages it reads)."""
    return [
        Node(example_gen.NAME, example_gen.run, {},
             lambda o, _: example_gen.parameters(
                 o.config.dataset, scale=o.scale, seed=o.data_seed, source=o.source,
                 data_dir=o.data_dir)),
        Node(statistics.NAME, statistics.run, {"examples": example_gen.NAME},
             lambda o, _: statistics.parameters()),
        Node(trainer.NAME, functools.partial(trainer.run, verbose=options.verbose),
             {"examples": example_gen.NAME},
             lambda o, _: trainer.parameters(o.config)),
        Node(evaluator.NAME, evaluator.run,
             {"model": trainer.NAME, "examples": example_gen.NAME}, _evaluator_parameters),
        Node(pusher.NAME, pusher.run, {"model": trainer.NAME, "blessing": evaluator.NAME},
             lambda o, _: pusher.parameters(o.serving_dir, o.model_name)),
    ]


def run_pipeline(options: PipelineOptions, *, log: Callable[[str], None] = print
                 ) -> Dict[str, Execution]:
    """Runs (or skips) every stage in order; returns each stage's execution."""
    from m3sa_tf.metrics import metric_names

    names = metric_names(options.config.family)
    if options.blessing_metric not in names:
        raise PipelineError(
            f"--blessing-metric {options.blessing_metric!r} is not a metric of dataset "
            f"{options.config.dataset!r}; expected one of {list(names)}"
        )
    executions: Dict[str, Execution] = {}
    for node in pipeline_graph(options):
        missing = [up for up in node.inputs.values() if up not in executions]
        if missing:
            raise PipelineError(f"stage {node.name} reads {missing}, which run after it")
        inputs = {name: executions[up] for name, up in node.inputs.items()}
        parameters = node.parameters(options, inputs)
        executions[node.name] = run_stage(options.root, node.name, node.run, inputs,
                                          parameters, log=log)
    return executions


def format_summary(executions: Mapping[str, Execution]) -> str:
    lines = ["stage         status    execution"]
    for name, execution in executions.items():
        status = "skipped" if execution.skipped else "ran"
        lines.append(f"{name:<13} {status:<9} {execution.path}")
    blessing = executions.get(evaluator.NAME)
    if blessing is not None:
        verdict = "blessed" if blessing.outputs.get("blessed") else "not blessed"
        lines.append(f"model {verdict}: {blessing.outputs.get('reason')}")
    push = executions.get(pusher.NAME)
    if push is not None and push.outputs.get("pushed"):
        lines.append(f"serving version {push.outputs['version']}: {push.outputs['path']}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.run",
        description="TFX-style pipeline: example_gen, statistics, trainer, evaluator, "
        "pusher. A rerun skips every stage whose inputs did not change.",
    )
    add_config_arguments(parser, dataset_required=True)
    parser.add_argument("--data-dir", default=None,
                        help="TFDS data directory to build into or reuse (default: inside "
                        "the example_gen artifact)")
    parser.add_argument("--source", default=None,
                        help="real datasets: MMSA processed pickle (file or folder)")
    parser.add_argument("--pipeline-root", default=None,
                        help="where stage artifacts go (default runs/pipeline/DATASET)")
    parser.add_argument("--serving-dir", default=None,
                        help="where the pusher exports (default ROOT/serving)")
    parser.add_argument("--model-name", default="m3sa")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="synthetic datasets: fraction of the full split sizes")
    parser.add_argument("--data-seed", type=int, default=0,
                        help="synthetic datasets: generator seed")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--blessing-metric", default="MAE",
                        help="test metric the blessing compares (default MAE)")
    parser.add_argument("--blessing-threshold", type=float, default=None,
                        help="the model must beat this value of the metric to be pushed")
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2,
                        help="trainer verbosity (Keras fit)")
    return parser


def options_from_args(args: argparse.Namespace) -> PipelineOptions:
    check_scale(args.scale)
    config = config_from_args(args, epochs=args.epochs)
    root = os.path.abspath(os.path.expanduser(
        args.pipeline_root or os.path.join("runs", "pipeline", args.dataset)))
    serving_dir = os.path.abspath(os.path.expanduser(
        args.serving_dir or os.path.join(root, "serving")))
    return PipelineOptions(
        config=config, root=root, serving_dir=serving_dir, model_name=args.model_name,
        data_dir=args.data_dir, source=args.source, scale=args.scale,
        data_seed=args.data_seed, blessing_metric=args.blessing_metric,
        blessing_threshold=args.blessing_threshold, verbose=args.verbose,
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    from m3sa_tf import ConfigError
    from pipelines.export import ExportError
    from pipelines.run_dir import RunDirError
    from tfrecords import DatasetError, DatasetNotBuiltError

    args = build_parser().parse_args(argv)
    try:
        options = options_from_args(args)
        executions = run_pipeline(options)
    except (ConfigError, DatasetError, DatasetNotBuiltError, ExportError, PipelineError,
            RunDirError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(format_summary(executions))
    return 0


if __name__ == "__main__":
    sys.exit(main())
