"""Constants and helpers of the serving and pipeline tests."""

import csv
import os

import numpy as np

DATASET = "synthetic-mosi"
SCALE = 0.03  # 39 / 7 / 21 examples
# Small widths, one epoch, a fixed key and a dense extractor keep a training run to a
# few seconds of compute; the export path does not depend on the model's size.
TINY_OVERRIDES = {
    "epochs": 1,
    "batch_size": 32,
    "key_modality": "text",
    "extractor": "dense",
    "n_scales": 2,
    "channel_ratio": 1,
    "hidden_sizes": {"text": 8, "audio": 4, "vision": 4},
    "fusion_dim": 8,
    "num_heads": 1,
    "contrastive_dim": 8,
}


def load_split_arrays(data_dir, split="test"):
    """All of one split as numpy arrays (ids as str), in the file's order."""
    import tfrecords

    datasets, _ = tfrecords.load_dataset(
        DATASET, data_dir, scale=SCALE, seed=0, batch_size=1024, shuffle=False,
        keep_ids=True, splits=(split,),
    )
    features, labels = next(iter(datasets[split]))
    arrays = {name: value.numpy() for name, value in features.items()}
    arrays["id"] = np.array([v.decode("utf-8") for v in arrays["id"]])
    return arrays, {name: value.numpy() for name, value in labels.items()}


def read_predictions_csv(path):
    """{id: {column: float}} of a run's predictions/test.csv."""
    with open(path, newline="", encoding="utf-8") as handle:
        return {
            row["id"]: {k: float(v) for k, v in row.items() if k != "id" and v != ""}
            for row in csv.DictReader(handle)
        }


def project_root():
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def pipeline_argv(root, data_dir, *extra):
    """`python -m pipelines.run` arguments for the tiny model on the tiny dataset."""
    import json

    argv = ["--dataset", DATASET, "--data-dir", data_dir, "--pipeline-root", str(root),
            "--scale", str(SCALE), "--verbose", "0", "--set"]
    argv += [f"{k}={json.dumps(v)}" for k, v in TINY_OVERRIDES.items()]
    return argv + list(extra)


def run_pipeline(argv):
    """Runs the pipeline as the CLI would; returns (executions, log lines)."""
    from pipelines import run

    lines = []
    options = run.options_from_args(run.build_parser().parse_args(argv))
    executions = run.run_pipeline(options, log=lines.append)
    return executions, lines
