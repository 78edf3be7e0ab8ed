"""The M³SA model, its builder and weight transfer between models."""

from m3sa_tf.models.m3sa_model import M3SAModel, build_model, example_features, provisional_key
from m3sa_tf.models.weights import copy_matching_weights

__all__ = ["M3SAModel", "build_model", "copy_matching_weights", "example_features",
           "provisional_key"]
