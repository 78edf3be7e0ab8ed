"""`python -m pipelines.evaluate`: re-evaluate a finished run directory on one split.

    python -m pipelines.evaluate --run RUN [--split test|valid|train] [--data-dir DATA]

Loads RUN/model.keras and RUN/dataset.json, predicts the split, prints its metrics and
writes RUN/evaluation_<split>.json and RUN/predictions/<split>.csv (atomically).
User errors print `error: ...` and exit 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Optional, Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.evaluate",
        description="Re-evaluate a finished M³SA run directory on one split.",
    )
    parser.add_argument("--run", required=True, help="run directory written by pipelines.train")
    parser.add_argument("--split", default="test", choices=("train", "valid", "test"))
    parser.add_argument("--data-dir", default=None,
                        help="TFRecord directory; default $M3SA_DATA_DIR or ~/tensorflow_datasets")
    parser.add_argument("--no-write", action="store_true", help="print only")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not os.path.isdir(args.run):
        print(f"error: --run {args.run}: no such directory", file=sys.stderr)
        return 2
    import tfrecords
    from m3sa_tf import ConfigError
    from pipelines.protocol import evaluate_run
    from pipelines.run_dir import RunDirError

    try:
        result = evaluate_run(args.run, args.split, args.data_dir, write=not args.no_write)
    except (ConfigError, RunDirError, tfrecords.DatasetNotBuiltError,
            tfrecords.DatasetError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
