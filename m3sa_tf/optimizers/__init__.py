"""Optimizers of M³SA-TF."""

from m3sa_tf.optimizers.fused_adamw import FusedAdamW

__all__ = ["FusedAdamW"]
