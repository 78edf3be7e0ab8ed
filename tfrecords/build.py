"""Building datasets: `build_dataset()` and the CLI `python -m tfrecords.build`.

A build runs in a temporary folder inside the data directory and is moved into place
(`os.replace`) only when complete, so a failed build leaves no dataset behind; an already
built dataset is not rebuilt. tensorflow-datasets' own announcements (the temporary
folder it writes to, its config notices, its progress bars) are kept out of the output;
the build reports through its `log` callable and the CLI prints the summary.

CLI:

    python -m tfrecords.build --dataset mosi --source ~/MMSA/MOSI/Processed --data-dir DIR
    python -m tfrecords.build --dataset synthetic-sims --data-dir DIR --scale 0.1 --seed 3
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import sys
import tempfile
from typing import Iterator, List, Optional

from msa_core.io import default_data_dir, read_json, write_json_atomic
from tfrecords import specs
from tfrecords.errors import DatasetError, DatasetNotBuiltError
from tfrecords.info import DatasetInfo

INFO_FILE = "m3sa_dataset_info.json"
# Smaller than tfds' 64 MiB default so that full-size splits come in several files, which
# lets several workers each read whole files (full synthetic-mosi train: 4 files).
MIN_SHARD_BYTES = 16 << 20


def dataset_path(name: str, data_dir: Optional[str] = None, scale: float = 1.0,
                 seed: int = 0) -> str:
    """Where the built dataset `name` lives: `DATA_DIR/<tfds name>/[<config>/]<version>`."""
    from tfrecords.builders.base import VERSION

    data_dir = default_data_dir(data_dir)
    parts = [data_dir, specs.tfds_name(name)]
    if specs.is_synthetic(name):
        parts.append(specs.synthetic_config_name(specs.check_scale(scale), seed))
    parts.append(str(VERSION))
    return os.path.join(*parts)


def read_info(path: str) -> DatasetInfo:
    return DatasetInfo.from_dict(read_json(os.path.join(path, INFO_FILE), error=DatasetError))


def is_built(path: str) -> bool:
    return os.path.isfile(os.path.join(path, INFO_FILE))


def build_command(name: str, data_dir: str, scale: float = 1.0, seed: int = 0) -> str:
    """The CLI command that builds dataset `name` (for error messages)."""
    if specs.is_synthetic(name):
        extra = (f" --scale {scale:g}" if scale != 1.0 else "") + (
            f" --seed {seed}" if seed else "")
        return f"python -m tfrecords.build --dataset {name} --data-dir {data_dir}{extra}"
    folder = {"mosi": "MOSI", "sims": "SIMS", "mosei": "MOSEI"}[name]
    pickle_name = specs.spec_for(name).pickle_name
    return (f"python -m tfrecords.build --dataset {name} --source "
            f"/path/to/{folder}/Processed/{pickle_name} --data-dir {data_dir}")


def _make_builder(name: str, data_dir: str, source: Optional[str], scale: float,
                  seed: int):
    from tfrecords.builders import builder_class
    from tfrecords.builders.synthetic import PREDEFINED_CONFIGS, config_for

    cls = builder_class(name)
    if specs.is_synthetic(name):
        config_name = specs.synthetic_config_name(scale, seed)
        predefined = {c.name for c in PREDEFINED_CONFIGS}
        config = config_name if config_name in predefined else config_for(scale, seed)
        return cls(data_dir=data_dir, config=config)
    return cls(data_dir=data_dir, source_path=source)


def build_dataset(name: str, data_dir: Optional[str] = None, source: Optional[str] = None,
                  scale: float = 1.0, seed: int = 0, *, num_shards: Optional[int] = None,
                  log=None) -> DatasetInfo:
    """Builds dataset `name` into `data_dir` unless it is already built.

    Arguments:
        name: one of `specs.DATASET_NAMES`.
        data_dir: data directory (default `$M3SA_DATA_DIR` or `~/tensorflow_datasets`).
        source: MMSA pickle (file or folder) for a real dataset; unused for synthetic.
        scale: synthetic only: fraction of the real split sizes, in (0, 1].
        seed: synthetic only: generator seed.
        num_shards: files per split (default: tfds picks, by size). Several workers
            read whole files each only when a split has at least one file per worker.
        log: callable taking a progress line (default: silent).

    Returns:
        The `DatasetInfo` of the built dataset.

    Raises:
        DatasetError: bad input (missing source, malformed pickle, ...); nothing is left
            in `data_dir`.
    """
    import tensorflow_datasets as tfds

    log = log or (lambda line: None)
    specs.check_name(name)
    data_dir = default_data_dir(data_dir)
    if specs.is_synthetic(name):
        scale, seed = specs.check_scale(scale), int(seed)
        if source is not None:
            raise DatasetError(f"--source is for the real datasets; {name} is generated")
    else:
        if scale != 1.0 or seed != 0:
            raise DatasetError(f"--scale/--seed apply to the synthetic datasets only, "
                               f"not to {name}")
        if source is None:
            raise DatasetError(
                f"dataset '{name}' is built from MMSA's processed pickle, which you "
                f"download yourself (https://github.com/thuiar/MMSA); then run: "
                f"{build_command(name, data_dir)}")
        from tfrecords import mmsa_pickle

        source = mmsa_pickle.resolve_pickle_path(source, name)
    final = dataset_path(name, data_dir, scale, seed)
    if is_built(final):
        log(f"{name}: already built in {final}")
        return read_info(final)

    os.makedirs(data_dir, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix=f".incomplete-{specs.tfds_name(name)}-",
                               dir=data_dir)
    try:
        log(f"{name}: building into {final}" + (f" from {source}" if source else ""))
        with _quiet_tfds():
            builder = _make_builder(name, workdir, source, scale, seed)
            builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
                manual_dir=os.path.dirname(source) if source else None,
                num_shards=num_shards, min_shard_size=MIN_SHARD_BYTES))
        info = builder.dataset_info()
        info.split_sizes = {s: int(builder.info.splits[s].num_examples)
                            for s in specs.SPLITS}
        built = str(builder.data_path)
        write_json_atomic(os.path.join(built, INFO_FILE), info.to_dict())
        os.makedirs(os.path.dirname(final), exist_ok=True)
        try:
            os.replace(built, final)
        except OSError:
            if not is_built(final):  # not a concurrent build of the same dataset
                raise
        log(f"{name}: done")
        return read_info(final)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        _remove_empty_parents(final, data_dir)


@contextlib.contextmanager
def _quiet_tfds() -> Iterator[None]:
    """Silences tensorflow-datasets while it builds: its stdout announcements (which name
    the temporary build folder, gone once the build is moved into place), its absl
    warnings below ERROR and its progress bars. Failures are exceptions and still reach
    the caller. stdout is redirected for the whole process meanwhile, so other threads'
    prints during a build are dropped too."""
    import tensorflow_datasets as tfds
    from absl import logging as absl_logging
    from tensorflow_datasets.core.utils import tqdm_utils

    verbosity = absl_logging.get_verbosity()
    # tfds has a setter for its progress bars but no getter; restore what was there.
    bars = getattr(tqdm_utils, "_active", True)
    absl_logging.set_verbosity(absl_logging.ERROR)
    tfds.display_progress_bar(False)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        tfds.display_progress_bar(bars)
        absl_logging.set_verbosity(verbosity)


def _remove_empty_parents(path: str, stop: str) -> None:
    # A failed build must not leave empty `<name>/<config>` folders behind either.
    path = os.path.dirname(path)
    while os.path.abspath(path) != os.path.abspath(stop) and os.path.isdir(path):
        try:
            os.rmdir(path)
        except OSError:
            return
        path = os.path.dirname(path)


def format_summary(info: DatasetInfo) -> List[str]:
    lines = [f"dataset {info.name} (family {info.family}, scale {info.scale:g}, "
             f"seed {info.seed})"]
    for split in specs.SPLITS:
        lines.append(f"  {split:5s}: {info.split_sizes.get(split, 0)} samples")
    for m in specs.MODALITIES:
        lines.append(f"  {m:6s}: dim {info.feature_dims[m]}, max length "
                     f"{info.max_lengths[m]}")
    lines.append(f"  labels: fused in [{info.label_range[0]:g}, {info.label_range[1]:g}]"
                 + (", unimodal text/audio/vision" if info.has_unimodal_labels else ""))
    if info.bayes_reference:
        lines.append("  Bayes-optimal reference (posterior mean given all features):")
        for split in specs.SPLITS:
            metrics = info.bayes_reference.get(split, {})
            flat = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()
                             if isinstance(v, float))
            lines.append(f"    {split}: {flat}")
    return lines


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tfrecords.build",
        description="Build an M³SA-TF dataset as TFRecord shards (tensorflow-datasets).")
    parser.add_argument("--dataset", required=True, choices=specs.DATASET_NAMES)
    parser.add_argument("--source", help="MMSA pickle (file or folder) for mosi/sims/mosei")
    parser.add_argument("--data-dir", help="data directory (default $M3SA_DATA_DIR or "
                        "~/tensorflow_datasets)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="synthetic only: fraction of the real split sizes")
    parser.add_argument("--seed", type=int, default=0, help="synthetic only: seed")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        info = build_dataset(args.dataset, args.data_dir, args.source, args.scale,
                             args.seed, log=lambda line: print(line, flush=True))
    except (DatasetError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for line in format_summary(info):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
