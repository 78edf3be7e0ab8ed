"""What the zoo contract does not check for EF-LSTM, MLF-DNN and TLF-DNN: EF-LSTM's
resampling of unaligned modalities to one grid, MLF-DNN's weighted multi-task L1 and
TLF-DNN's contrastive term."""

import numpy as np
import pytest
import keras

from m3sa_tf.config import ConfigError
from m3sa_tf.losses.m3sa_loss import M3SALoss
from m3sa_tf.losses.subtask_weight_scheduler import SubtaskWeightScheduler
from m3sa_tf.models.baselines.ef_lstm import resample_to_steps
from m3sa_tf.models.baselines.mlf_dnn import MLFDNN
from m3sa_tf.models.baselines.tlf_dnn import TLFDNN
from tests.baselines.conftest import FEATURE_DIMS, build_tiny, tiny_batch


def _numpy(value):
    return keras.ops.convert_to_numpy(value)


# ---------------------------------------------------------------- EF-LSTM


def _ragged_rows(seed=0):
    rng = np.random.default_rng(seed)
    lengths = np.array([5, 1, 0, 3], "int32")
    values = rng.normal(size=(4, 7, 2)).astype("float32")
    mask = np.arange(7)[None, :] < lengths[:, None]
    return values * mask[..., None], mask, lengths


@pytest.mark.parametrize("steps", [1, 3, 4, 11])
def test_resampling_keeps_each_rows_time_average_and_zeros_an_empty_row(steps):
    values, mask, lengths = _ragged_rows()
    grid = _numpy(resample_to_steps(values, mask, steps))
    assert grid.shape == (4, steps, 2)
    for row, length in enumerate(lengths):
        expected = values[row, :length].mean(axis=0) if length else np.zeros(2)
        np.testing.assert_allclose(grid[row].mean(axis=0), expected, atol=1e-5)
    np.testing.assert_array_equal(grid[2], 0.0)


def test_resampling_ignores_values_past_the_length():
    values, mask, _ = _ragged_rows()
    noisy = np.where(mask[..., None], values, 1e3).astype("float32")
    np.testing.assert_allclose(_numpy(resample_to_steps(noisy, mask, 5)),
                               _numpy(resample_to_steps(values, mask, 5)), atol=1e-5)


def test_resampling_sees_a_stretched_sequence_as_the_same_signal():
    values, mask, lengths = _ragged_rows()
    stretched = np.repeat(values, 3, axis=1)  # every step three times: a 3× frame rate
    stretched_mask = np.arange(21)[None, :] < 3 * lengths[:, None]
    np.testing.assert_allclose(_numpy(resample_to_steps(stretched, stretched_mask, 4)),
                               _numpy(resample_to_steps(values, mask, 4)), atol=1e-5)


def test_ef_lstm_fuses_modalities_of_different_lengths_on_one_grid():
    model, config, _ = build_tiny("ef_lstm")
    features = tiny_batch(batch_size=4, seed=3)
    sequences, masks = model.encode_inputs(features)
    joined = _numpy(model.fuse(sequences, masks))
    steps = config.model_hparams["fusion_steps"]
    assert joined.shape == (4, steps, sum(model.input_width(m) for m in model.modalities))
    # Audio recorded at twice the frame rate (each frame repeated) predicts the same.
    faster = dict(features)
    faster["audio"] = np.repeat(features["audio"], 2, axis=1)
    faster["audio_length"] = 2 * features["audio_length"]
    np.testing.assert_allclose(_numpy(model(faster)["fused"]), _numpy(model(features)["fused"]),
                               rtol=1e-4, atol=1e-5)


def test_ef_lstm_runs_on_a_subset_of_the_modalities():
    model, _, _ = build_tiny("ef_lstm", modalities=("text", "vision"))
    features = tiny_batch(batch_size=3, modalities=("text", "vision"))
    assert _numpy(model(features)["fused"]).shape == (3,)


# ---------------------------------------------------------------- MLF-DNN


def _sims_labels(batch_size, seed=0):
    rng = np.random.default_rng(seed)
    return {k: rng.uniform(-1, 1, batch_size).astype("float32")
            for k in ("fused", "text", "audio", "vision")}


_NO_DECAY = {"text_weight_decay": 0.0, "audio_weight_decay": 0.0, "vision_weight_decay": 0.0}


def test_mlf_dnn_loss_is_mmsas_weighted_sum_of_the_four_l1_errors():
    weights = {"fused_weight": 0.6, "text_weight": 0.2, "audio_weight": 0.8,
               "vision_weight": 0.3}
    model, _, _ = build_tiny("mlf_dnn", model_hparams=dict(weights, **_NO_DECAY))
    features, labels = tiny_batch(batch_size=6, seed=1), _sims_labels(6)
    outputs = model(features)
    expected = sum(weights[f"{k}_weight"] * np.mean(np.abs(_numpy(outputs[k]) - labels[k]))
                   for k in ("fused", "text", "audio", "vision"))
    loss = float(model.compute_loss(features, labels, outputs))
    assert loss == pytest.approx(expected, rel=1e-5)


def test_mlf_dnn_adds_each_subnetworks_own_l2_penalty_and_none_on_the_heads():
    decays = {"text": 1e-2, "audio": 0.0, "vision": 3e-2}
    hparams = {f"{m}_weight_decay": c for m, c in decays.items()}
    model, _, _ = build_tiny("mlf_dnn", model_hparams=hparams)
    undecayed, _, _ = build_tiny("mlf_dnn", model_hparams=_NO_DECAY)
    features, labels = tiny_batch(batch_size=4, seed=2), _sims_labels(4)
    outputs = model(features)
    expected = sum(0.5 * c * sum(np.sum(_numpy(w) ** 2)
                                 for w in model.subnets[m].trainable_weights)
                   for m, c in decays.items())
    penalty = (float(model.compute_loss(features, labels, outputs))
               - float(undecayed.compute_loss(features, labels, outputs)))
    assert penalty == pytest.approx(expected, rel=1e-4)
    assert float(model.subnet_penalty()) == pytest.approx(expected, rel=1e-5)


def test_mlf_dnn_skips_the_heads_whose_labels_are_missing():
    model, config, _ = build_tiny("mlf_dnn", model_hparams=_NO_DECAY)
    features = tiny_batch(batch_size=5, seed=2)
    labels = {"fused": _sims_labels(5)["fused"]}
    outputs = model(features)
    expected = config.model_hparams["fused_weight"] * np.mean(
        np.abs(_numpy(outputs["fused"]) - labels["fused"]))
    assert float(model.compute_loss(features, labels, outputs)) == pytest.approx(expected,
                                                                               rel=1e-5)


def test_mlf_dnn_refuses_data_without_unimodal_labels():
    _, config, _ = build_tiny("mlf_dnn")
    with pytest.raises(ConfigError, match="unimodal labels"):
        MLFDNN(config, FEATURE_DIMS, has_unimodal_labels=False)


def test_mlf_dnn_serves_one_head_per_modality():
    model, _, _ = build_tiny("mlf_dnn")
    assert model.served_output_names() == ["fused", "text", "audio", "vision"]


# ---------------------------------------------------------------- TLF-DNN


def _eq26_terms(a, b, temperature):
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    s = a @ b.T / temperature
    positive = np.diag(s)
    negatives = np.exp(s)[~np.eye(len(s), dtype=bool)].sum()
    return -np.exp(positive) * np.log(np.exp(positive) / (np.exp(positive) + negatives))


def test_tlf_dnn_loss_is_the_fused_l1_plus_the_weighted_pair_terms_of_eq_26():
    weights = {"text_audio": 0.3, "text_vision": 0.2, "audio_vision": 0.1}
    model, config, _ = build_tiny("tlf_dnn", contrastive_weights=weights, temperature=0.7,
                                  contrastive_dim=5)
    features = tiny_batch(batch_size=6, seed=3)
    labels = {"fused": np.linspace(-2, 2, 6).astype("float32")}
    outputs = {k: _numpy(v) for k, v in model(features).items()}
    assert outputs["embedding_text"].shape == (6, 5)
    per_sample = config.fused_weight * np.abs(outputs["fused"] - labels["fused"])
    for pair, weight in weights.items():
        first, second = pair.split("_")
        per_sample = per_sample + weight * _eq26_terms(
            outputs[f"embedding_{first}"], outputs[f"embedding_{second}"], 0.7)
    loss = float(model.compute_loss(features, labels, model(features)))
    assert loss == pytest.approx(per_sample.mean(), rel=1e-4)
    assert loss > float(np.mean(np.abs(outputs["fused"] - labels["fused"])))


def test_tlf_dnn_loss_follows_the_embeddings_not_only_the_prediction():
    model, _, _ = build_tiny("tlf_dnn")
    features = tiny_batch(batch_size=6, seed=4)
    labels = {"fused": np.zeros(6, "float32")}
    before = model(features)
    loss_before = float(model.compute_loss(features, labels, before))
    kernel = model.projections["audio"].kernel
    kernel.assign(_numpy(kernel) + np.random.default_rng(0).normal(size=kernel.shape))
    after = model(features)
    np.testing.assert_array_equal(_numpy(after["fused"]), _numpy(before["fused"]))
    assert float(model.compute_loss(features, labels, after)) != pytest.approx(loss_before)


def test_tlf_dnn_pair_weights_decay_with_the_subtask_schedule():
    model, config, _ = build_tiny("tlf_dnn", subtask_weight_schedule="linear",
                                  subtask_weight_decay=1.0, subtask_weight_floor=0.0)
    assert isinstance(model.m3sa_loss, M3SALoss) and model.m3sa_loss.task == "contrastive"
    features = tiny_batch(batch_size=6, seed=5)
    labels = {"fused": np.ones(6, "float32")}
    outputs = model(features)
    scheduler = SubtaskWeightScheduler(config)
    scheduler.set_model(model)
    scheduler.on_epoch_begin(1)  # factor 1 − 1·1 = 0: only the fused term is left
    fused_only = config.fused_weight * np.mean(np.abs(_numpy(outputs["fused"]) - 1.0))
    assert float(model.compute_loss(features, labels, outputs)) == pytest.approx(fused_only,
                                                                               rel=1e-5)


def test_tlf_dnn_is_contrastive_on_sims_too_and_ignores_the_unimodal_labels():
    _, config, _ = build_tiny("tlf_dnn", dataset="sims")
    model = TLFDNN(config, FEATURE_DIMS, has_unimodal_labels=True)
    assert model.m3sa_loss.task == "contrastive"
    assert model.served_output_names() == ["fused"]
    features = tiny_batch(batch_size=4, seed=6)
    outputs = model(features)
    fused = {"fused": np.zeros(4, "float32")}
    with_unimodal = dict(fused, text=np.ones(4, "float32"), audio=np.ones(4, "float32"),
                         vision=np.ones(4, "float32"))
    assert float(model.compute_loss(features, with_unimodal, outputs)) == pytest.approx(
        float(model.compute_loss(features, fused, outputs)))


def test_tlf_dnn_with_one_modality_has_no_pair_and_no_projection():
    model, _, _ = build_tiny("tlf_dnn", modalities=("text",))
    features = tiny_batch(batch_size=3, modalities=("text",))
    outputs = model(features)
    assert not model.projections and not any(k.startswith("embedding_") for k in outputs)
    labels = {"fused": np.zeros(3, "float32")}
    expected = np.mean(np.abs(_numpy(outputs["fused"])))
    assert float(model.compute_loss(features, labels, outputs)) == pytest.approx(expected,
                                                                               rel=1e-5)
