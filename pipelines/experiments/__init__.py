"""The paper's experiments as commands (pipelines.experiment)."""
