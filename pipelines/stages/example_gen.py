"""ExampleGen: the dataset's TFRecords, built by `tfrecords.build_dataset`.

Artifact (`ROOT/example_gen/<id>/`):
- `examples.json`: dataset name, scale, seed, where the TFRecords are (`data_dir`,
  relative to the artifact when they live inside it), the built dataset's path inside
  that data directory, a content fingerprint of the built dataset, and its `DatasetInfo`;
- `data/`: the TFDS data directory holding the build, unless the pipeline was given an
  external `--data-dir` (then the build goes there, where `pipelines.train` and
  `tfrecords.build` share it, and an already built dataset is reused as is).

Parameters: `dataset`, `scale`, `seed`, `source` (real datasets: the MMSA pickle),
`data_dir` (external data directory or None), and `external_state`: the content
fingerprint of the dataset already built in the external data directory (None when it
is not built) and the size and modification time of the source pickle. They make a
rebuilt external dataset or a replaced pickle rerun this stage and everything after it.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Optional

from msa_core.io import read_json, write_json_atomic
from pipelines.stages.execution import Execution, PipelineError, fingerprint_tree

NAME = "example_gen"
EXAMPLES_FILE = "examples.json"
LOCAL_DATA_DIR = "data"


def parameters(dataset: str, *, scale: float = 1.0, seed: int = 0,
               source: Optional[str] = None, data_dir: Optional[str] = None) -> dict:
    """This stage's parameters, including the state of what lies outside the pipeline
    root (module docstring)."""
    from tfrecords.build import dataset_path, is_built

    data_dir = os.path.abspath(os.path.expanduser(data_dir)) if data_dir else None
    source = os.path.abspath(os.path.expanduser(source)) if source else None
    state: dict = {"built_dataset": None, "source": None}
    if data_dir is not None:
        path = dataset_path(dataset, data_dir, scale, seed)
        if is_built(path):
            state["built_dataset"] = fingerprint_tree(path)
    if source is not None and os.path.exists(source):
        stat = os.stat(source)
        state["source"] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    return {"dataset": dataset, "scale": float(scale), "seed": int(seed), "source": source,
            "data_dir": data_dir, "external_state": state}


def run(artifact_dir: str, inputs: Mapping[str, Execution], params: Mapping[str, Any]) -> dict:
    import tfrecords
    from tfrecords.build import dataset_path

    local = params["data_dir"] is None
    data_dir = os.path.join(artifact_dir, LOCAL_DATA_DIR) if local else params["data_dir"]
    info = tfrecords.build_dataset(
        params["dataset"], data_dir, source=params["source"], scale=params["scale"],
        seed=params["seed"], log=lambda line: print(f"[{NAME}] {line}", flush=True),
    )
    built = dataset_path(params["dataset"], data_dir, params["scale"], params["seed"])
    examples = {
        "dataset": params["dataset"],
        "scale": params["scale"],
        "seed": params["seed"],
        "data_dir": LOCAL_DATA_DIR if local else data_dir,
        "dataset_path": os.path.relpath(built, data_dir),
        "data_fingerprint": fingerprint_tree(built),
        "info": info.to_dict(),
    }
    write_json_atomic(os.path.join(artifact_dir, EXAMPLES_FILE), examples)
    return {"dataset": params["dataset"], "split_sizes": info.split_sizes,
            "data_fingerprint": examples["data_fingerprint"]}


def read_examples(execution: Execution) -> dict:
    """The artifact's `examples.json`, with `data_dir` made absolute."""
    examples = read_json(os.path.join(execution.path, EXAMPLES_FILE), error=PipelineError)
    if not os.path.isabs(examples["data_dir"]):
        examples["data_dir"] = os.path.join(execution.path, examples["data_dir"])
    return examples
