"""Command-line pieces every CLI of the project shares (`pipelines.train`,
`pipelines.run`, `pipelines.experiment`, `tuning.search`, `tuning.sweep`).

One set of flags names the configuration — `--dataset`, `--model`, `--hparams FILE`,
`--set key=value …` — and one function turns them into an `M3SAConfig` through
`M3SAConfig.from_overrides`, so that a flag means the same thing in every command. The
data flags (`--data-dir`, `--scale`, `--data-seed`) are checked here too.

Example:

>>> parser = argparse.ArgumentParser()
>>> add_config_arguments(parser)
>>> args = parser.parse_args(["--dataset", "mosi", "--set", "hidden_sizes.text=32"])
>>> config_from_args(args, epochs=3).hidden_sizes["text"]
32
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, List, Optional

from m3sa_tf.config import ConfigError, M3SAConfig

DEFAULT_DATASET = "synthetic-mosi"


def add_config_arguments(parser: argparse.ArgumentParser, *,
                         dataset_required: bool = False) -> None:
    """--dataset, --model, --hparams, --set."""
    parser.add_argument(
        "--dataset", required=dataset_required, default=None,
        help="mosi, sims, mosei or synthetic-mosi/-sims/-mosei"
        + ("" if dataset_required else
           f"; default {DEFAULT_DATASET} (or the dataset named in --hparams)"))
    parser.add_argument(
        "--model", default=None,
        help="m3sa (default) or a baseline: ef_lstm, lf_dnn, tfn, lmf, mult, misa, "
             "mlf_dnn, mtfn, tlf_dnn, self_mm")
    parser.add_argument("--hparams", default=None,
                        help="JSON file of hyper-parameters (the config's JSON form, "
                             "possibly partial) applied over the defaults")
    parser.add_argument(
        "--set", dest="overrides", action="append", nargs="+", default=[],
        metavar="KEY=VALUE",
        help="override any M3SAConfig field (value read as JSON when it parses); "
             "hidden_sizes.text=32 sets one entry of a mapping, model_hparams.NAME=V "
             "one of a baseline's hyper-parameters")


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """--data-dir, --scale, --data-seed."""
    parser.add_argument("--data-dir", default=None,
                        help="TFRecord directory; default $M3SA_DATA_DIR or "
                             "~/tensorflow_datasets (synthetic data is built there if missing)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="synthetic datasets: fraction of the full split sizes, in "
                             "(0, 1] (default 1.0)")
    parser.add_argument("--data-seed", type=int, default=0,
                        help="synthetic datasets: generator seed (default 0)")


def assignments(args: argparse.Namespace) -> List[str]:
    """The flat list of --set items."""
    return [item for group in getattr(args, "overrides", []) for item in group]


def config_from_args(args: argparse.Namespace, **values: Any) -> M3SAConfig:
    """The configuration the flags ask for; `values` are dedicated flags (epochs=…,
    key_modality=…; None means not given) and win over --set."""
    return M3SAConfig.from_overrides(
        getattr(args, "dataset", None),
        hparams_file=getattr(args, "hparams", None),
        assignments=assignments(args),
        default_dataset=DEFAULT_DATASET,
        model=getattr(args, "model", None),
        **values,
    )


def check_scale(scale: float) -> float:
    """--scale must be a fraction of the synthetic data's full size."""
    if not 0.0 < scale <= 1.0:
        raise ConfigError(f"--scale {scale:g}: expected a fraction in (0, 1]")
    return scale


def parse_seeds(text: Optional[str]) -> Optional[List[int]]:
    """"1111,1112" -> [1111, 1112]; None stays None."""
    if text is None:
        return None
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--seeds {text!r}: expected comma-separated integers") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds {text!r}: expected distinct integers")
    return seeds


def parse_int_list(text: str, name: str, bounds) -> List[int]:
    """"2,3,5" or "2-5" (or a mix) -> sorted distinct ints within `bounds` (inclusive);
    a ConfigError names the flag `--name` otherwise."""
    values = set()
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            items = range(int(lo), int(hi) + 1) if sep else [int(part)]
        except ValueError:
            raise ConfigError(
                f"--{name} {text!r}: {part!r} is not an integer or a range a-b") from None
        values.update(items)
    if not values:
        raise ConfigError(f"--{name} {text!r} names no values")
    out = sorted(values)
    if out[0] < bounds[0] or out[-1] > bounds[1]:
        raise ConfigError(f"--{name} values {out} must lie in {bounds[0]}..{bounds[1]}")
    return out


def fail(message: Any, code: int = 2) -> int:
    """Prints `error: message` to stderr and returns the exit code."""
    print(f"error: {message}", file=sys.stderr)
    return code

