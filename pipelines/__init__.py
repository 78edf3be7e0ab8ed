"""What users run: training, evaluation, distribution, export and the TFX-style pipeline.

- `pipelines.training`: the protocol (`train_and_evaluate`, `train_seeds`) and its
  reusable pieces; `python -m pipelines.train` / `python -m pipelines.evaluate` are its CLIs.
- `pipelines.distribute`: `--strategy` resolution and the guarded Keras multi-worker fix.
- `pipelines.checkpointing`: per-epoch checkpoints with resumable early stopping.
- `pipelines.trainer`: `run_fn(fn_args)` for TFX's Trainer.
- `pipelines.export`: the TF Serving SavedModel; `pipelines.run`: the staged pipeline.

Submodules are imported on use, so `import pipelines` does not load TensorFlow.
"""
