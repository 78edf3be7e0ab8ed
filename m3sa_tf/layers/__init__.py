"""The layers of M³SA (paper §III), one per module."""

from m3sa_tf.layers.contrastive_projection import ContrastiveProjection
from m3sa_tf.layers.early_fusion import EarlyFusion
from m3sa_tf.layers.key_modality_fusion import KeyModalityFusion
from m3sa_tf.layers.late_fusion import LateFusion
from m3sa_tf.layers.multi_scale_block import MultiScaleBlock
from m3sa_tf.layers.fused_lstm import FusedLSTM
from m3sa_tf.layers.scale_squeeze_excitation import ScaleSqueezeExcitation
from m3sa_tf.layers.sentiment_head import SentimentHead
from m3sa_tf.layers.sequence_readout import SequenceReadout
from m3sa_tf.layers.window_convolution import WindowConvolution

__all__ = [
    "ContrastiveProjection",
    "EarlyFusion",
    "KeyModalityFusion",
    "LateFusion",
    "MultiScaleBlock",
    "FusedLSTM",
    "ScaleSqueezeExcitation",
    "SentimentHead",
    "SequenceReadout",
    "WindowConvolution",
]
