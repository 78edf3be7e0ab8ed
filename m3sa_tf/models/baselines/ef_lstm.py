"""EF-LSTM: early fusion of the three modalities, step by step, read by a stacked LSTM.

After MMSA's `EF_LSTM` (benchmarked in Yu et al., CH-SIMS, ACL 2020), which concatenates
the word-aligned text, audio and vision features at every step, batch-normalises them and
reads them with a stacked LSTM, its last layer's final state going through a dropout, a
ReLU layer, another dropout and a linear output.

MMSA runs it on word-aligned data only (every modality has one step per word). Our data
is unaligned: each modality has its own number of steps and its own valid length per
clip. All three modalities of a clip span the same time, so `resample_to_steps` maps each
modality's *valid* steps onto a common grid of `fusion_steps` equal slices of the clip
(an overlap-weighted average, i.e. adaptive average pooling with fractional bins), and the
grids are concatenated step by step. The grid is built from the lengths alone, so values
past a length never enter it, and a zero-length modality contributes zeros.
"""

import keras
from keras import layers, ops

from m3sa_tf.layers.masking import valid_lengths
from m3sa_tf.models.base import MultimodalModel
from m3sa_tf.models.registry import ModelSpec


def resample_to_steps(sequence, mask, steps):
    """Each row's valid steps stretched or squeezed onto `steps` equal time slices.

    Step i of a row of length L is taken to cover the time span [i/L, (i+1)/L) of the
    clip and grid step s the span [s/S, (s+1)/S); grid step s is the average of the
    steps it overlaps, weighted by the overlap. This preserves the time-average (the
    grid's mean over s equals the masked mean over i) and a piecewise-constant signal:
    repeating every step k times gives the same grid. Steps past the length get weight
    0, so padding cannot change the grid; a row of length 0 gives zeros.

    Args:
        sequence: float [B, T, D], zero past the lengths.
        mask: bool [B, T], right-padded.
        steps: S, the number of grid steps (a Python int).

    Returns:
        float [B, S, D].

    Example:
        >>> import numpy as np
        >>> x = np.array([[[1.0], [3.0], [9.0]]], "float32")  # length 2, one padded step
        >>> mask = np.array([[True, True, False]])
        >>> ops.convert_to_numpy(resample_to_steps(x, mask, 4))[0, :, 0].tolist()
        [1.0, 1.0, 3.0, 3.0]
    """
    dtype = "float32"
    lengths = ops.maximum(valid_lengths(mask, dtype), 1.0)[:, None, None]  # [B, 1, 1]
    source = ops.cast(ops.arange(ops.shape(sequence)[1]), dtype)[None, None, :]
    grid = ops.cast(ops.arange(steps), dtype)[None, :, None]
    source_start, source_end = source / lengths, (source + 1.0) / lengths  # [B, 1, T]
    grid_start, grid_end = grid / steps, (grid + 1.0) / steps  # [1, S, 1]
    overlap = ops.relu(ops.minimum(source_end, grid_end)
                       - ops.maximum(source_start, grid_start))  # [B, S, T]
    # The explicit mask keeps padded steps out even where float rounding of i/L near 1
    # would leave them a sliver of overlap; × S turns overlaps into weights summing to 1.
    weights = overlap * float(steps) * ops.cast(mask, dtype)[:, None, :]
    return ops.matmul(weights, ops.cast(sequence, dtype))


@keras.saving.register_keras_serializable(package="m3sa_tf")
class EFLSTM(MultimodalModel):
    """Early-fusion LSTM over the modalities resampled to a common time grid.

    Hyper-parameters (`config.model_hparams`; MMSA's names where it has them):
    `hidden_dims` LSTM (and ReLU layer) width, `num_layers` stacked LSTM layers,
    `dropout` between the LSTM layers and before/after the ReLU layer, `fusion_steps` S,
    the grid every modality is resampled to (see `resample_to_steps`).

    Forward: per modality `resample_to_steps` → concatenate the grids along features
    [B, S, ΣD_m] → batch norm over each feature channel → `num_layers` LSTMs (dropout
    between them) → final state → dropout → Dense(`hidden_dims`, ReLU) → dropout →
    Dense(1). Every grid step is valid, so the LSTMs need no mask.

    Outputs: `fused` [B].

    Works for any subset of the modalities (the grids of those present are joined).

    Example:
        >>> from m3sa_tf import M3SAConfig
        >>> from m3sa_tf.models import example_features
        >>> cfg = M3SAConfig.for_dataset("mosi", model="ef_lstm",
        ...                              model_hparams=EFLSTM.TINY_HPARAMS)
        >>> model = EFLSTM(cfg, {"text": 6, "audio": 3, "vision": 2}, False)
        >>> model(example_features({"text": 6, "audio": 3, "vision": 2}))["fused"].shape
        TensorShape([2])
    """

    # Small widths for tests and examples.
    TINY_HPARAMS = {"hidden_dims": 8, "num_layers": 2, "dropout": 0.0, "fusion_steps": 6}

    def __init__(self, config, feature_dims, has_unimodal_labels, **kwargs):
        super().__init__(config, feature_dims, has_unimodal_labels, **kwargs)
        hp = self.config.model_hparams
        seed = self.config.seed
        self.fusion_steps = int(hp["fusion_steps"])
        self.fusion_width = sum(self.input_width(m) for m in self.modalities)
        hidden, rate = int(hp["hidden_dims"]), float(hp["dropout"])
        self.norm = layers.BatchNormalization(axis=-1, **self.sublayer_kwargs("norm"))
        self.lstms = [
            layers.LSTM(hidden, return_sequences=i < hp["num_layers"] - 1,
                        **self.sublayer_kwargs(f"lstm_{i + 1}"))
            for i in range(int(hp["num_layers"]))
        ]
        # PyTorch's multi-layer LSTM drops the outputs of every layer but the last.
        self.between_dropouts = [
            layers.Dropout(rate, seed=seed + i, dtype=self.dtype_policy)
            for i in range(len(self.lstms) - 1)
        ]
        self.state_dropout = layers.Dropout(rate, seed=seed + 20, dtype=self.dtype_policy)
        self.hidden_dropout = layers.Dropout(rate, seed=seed + 21, dtype=self.dtype_policy)
        self.linear = layers.Dense(hidden, activation="relu", **self.sublayer_kwargs("linear"))
        self.out = layers.Dense(1, **self.sublayer_kwargs("out"))

    def fuse(self, sequences, masks):
        """[B, S, ΣD_m]: the modalities' grids, joined step by step."""
        grids = [resample_to_steps(sequences[m], masks[m], self.fusion_steps)
                 for m in self.modalities]
        return ops.concatenate(grids, axis=-1)

    def forward(self, sequences, masks, training=False):
        hidden = self.norm(self.fuse(sequences, masks), training=training)
        for i, lstm in enumerate(self.lstms):
            hidden = lstm(hidden, training=training)
            if i < len(self.between_dropouts):
                hidden = self.between_dropouts[i](hidden, training=training)
        hidden = self.state_dropout(hidden, training=training)
        hidden = self.hidden_dropout(self.linear(hidden), training=training)
        return {"fused": ops.reshape(self.out(hidden), (-1,))}


# MMSA's config_regression.json, ef_lstm: "mosi" for MOSI and MOSEI (MMSA's MOSEI entry
# differs: 256 wide, 2 layers), "sims" for CH-SIMS. `fusion_steps` is ours: the length of
# the word-aligned sequences MMSA feeds this model (50 words on MOSI/MOSEI, 39 on SIMS).
EF_LSTM_HPARAMS = {
    "mosi": {"hidden_dims": 128, "num_layers": 4, "dropout": 0.5, "fusion_steps": 50},
    "sims": {"hidden_dims": 32, "num_layers": 3, "dropout": 0.5, "fusion_steps": 39},
}
EF_LSTM_TRAINING = {
    "mosi": {"batch_size": 32, "learning_rate": 1e-3, "weight_decay": 5e-3,
             "early_stopping_patience": 8, "gradient_clip_norm": None},
    "sims": {"batch_size": 128, "learning_rate": 5e-4, "weight_decay": 1e-3,
             "early_stopping_patience": 8, "gradient_clip_norm": None},
}
# MMSA's config_tune.json ranges (its weight decay 0 is left out of the log range).
EF_LSTM_SEARCH_SPACE = {
    "hidden_dims": ("choice", [16, 32, 64, 128, 256]),
    "num_layers": ("int", 2, 4),
    "dropout": ("choice", [0.2, 0.3, 0.4, 0.5]),
    "batch_size": ("choice", [32, 64, 128]),
    "learning_rate": ("float", 5e-4, 5e-3, "log"),
    "weight_decay": ("float", 1e-4, 5e-3, "log"),
}

SPEC = ModelSpec(
    name="ef_lstm",
    title="EF-LSTM",
    model_class=EFLSTM,
    hparams=EF_LSTM_HPARAMS,
    training=EF_LSTM_TRAINING,
    search_space=EF_LSTM_SEARCH_SPACE,
    reference="MMSA models/singleTask/EF_LSTM.py; Williams et al. 2018",
)
