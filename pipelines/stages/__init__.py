"""The stages of the TFX-style pipeline (`python -m pipelines.run`), one module each.

Every stage module exposes `NAME` and `run(artifact_dir, inputs, parameters) -> dict`
(the function `pipelines.stages.execution.run_stage` executes or skips); the wiring
between stages lives in `pipelines.run`. See docs/pipeline.md.

- `example_gen`: builds the dataset's TFRecords (`tfrecords.build_dataset`).
- `statistics`: per-split, per-feature counts, ranges, NaN/inf counts, lengths.
- `trainer`: trains and tests one model (`pipelines.training.train_and_evaluate`).
- `evaluator`: test metrics from the trainer's predictions, and the blessing.
- `pusher`: exports a blessed model for TF Serving (`pipelines.export`).
"""
