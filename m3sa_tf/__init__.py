"""M³SA in Keras 3: layers, model, losses, metrics and the configuration object."""

from m3sa_tf.config import ConfigError, M3SAConfig, MODALITIES

__version__ = "0.1.0"
__all__ = ["ConfigError", "M3SAConfig", "MODALITIES", "__version__"]
