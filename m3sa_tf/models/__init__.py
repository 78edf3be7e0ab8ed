"""The model zoo: M³SA, the baselines, their common base class and registry."""

from m3sa_tf.models.base import SERVED_OUTPUTS, MultimodalModel
from m3sa_tf.models.m3sa_model import M3SAModel, example_features, provisional_key
from m3sa_tf.models.registry import (
    ModelSpec,
    build_model,
    check_data_supports,
    get_spec,
    model_names,
)
from m3sa_tf.models.weights import copy_matching_weights

__all__ = ["M3SAModel", "ModelSpec", "MultimodalModel", "SERVED_OUTPUTS", "build_model",
           "check_data_supports", "copy_matching_weights", "example_features", "get_spec",
           "model_names", "provisional_key"]
