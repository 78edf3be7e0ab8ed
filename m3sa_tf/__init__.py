"""M³SA in Keras 3: layers, model, losses, metrics and the configuration object."""

from m3sa_tf.config import ConfigError, M3SAConfig, MODALITIES
from m3sa_tf.losses import M3SALoss, SubtaskWeightScheduler
from m3sa_tf.models import M3SAModel, build_model, copy_matching_weights

__version__ = "0.1.0"
__all__ = [
    "ConfigError",
    "M3SAConfig",
    "M3SALoss",
    "M3SAModel",
    "MODALITIES",
    "SubtaskWeightScheduler",
    "__version__",
    "build_model",
    "copy_matching_weights",
]
