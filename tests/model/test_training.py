"""Training the model: gradients reach every weight, fit runs with M3SALoss and the weight
schedule, `.keras` round trip, SavedModel export, weight transfer between keys."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from m3sa_tf.losses import SubtaskWeightScheduler
from m3sa_tf.models import M3SAModel, build_model, copy_matching_weights
from tests.model.helpers import FEATURE_DIMS, tiny_batch, tiny_config


def tiny_labels(batch_size=4, seed=0, unimodal=True):
    rng = np.random.default_rng(seed)
    keys = ("fused", "text", "audio", "vision") if unimodal else ("fused",)
    return {k: rng.uniform(-1, 1, size=batch_size).astype("float32") for k in keys}


@pytest.mark.parametrize("fusion, dataset, readout", [
    ("key", "mosi", "attention"), ("key", "sims", "last"), ("equal", "mosi", "mean"),
    ("late", "sims", "attention"), ("early", "mosi", "max"),
])
def test_gradients_reach_every_trainable_weight(fusion, dataset, readout):
    # MSE: with L1 a bias gradient is a sum of signs, which can cancel exactly.
    config = tiny_config(dataset, fusion=fusion, readout=readout, regression_loss="mse")
    unimodal = dataset == "sims"
    model = build_model(config, FEATURE_DIMS, has_unimodal_labels=unimodal)
    features, labels = tiny_batch(seed=1), tiny_labels(unimodal=unimodal)
    with tf.GradientTape() as tape:
        loss = model.compute_loss(features, labels, model(features, training=True))
    grads = tape.gradient(loss, model.trainable_weights)
    dead = [w.path for w, g in zip(model.trainable_weights, grads)
            if g is None or not np.any(keras.ops.convert_to_numpy(g))]
    assert not dead
    assert np.isfinite(float(loss))


def test_fit_trains_with_the_loss_and_the_weight_schedule():
    # A per-step Dense extractor keeps the traced train step small; the extractors
    # themselves are covered by the output and gradient tests. MSE and a fixed seed: with L1
    # a head's bias gradient is a mean of signs, which for some initialisations is exactly
    # zero on all three steps (seen in CI, where earlier tests left the global RNG elsewhere).
    keras.utils.set_random_seed(3)
    config = tiny_config("sims", subtask_weight_decay=0.5, extractor="dense",
                         regression_loss="mse")
    model = build_model(config, FEATURE_DIMS, has_unimodal_labels=True)
    features, labels = tiny_batch(batch_size=8, seed=2), tiny_labels(8, seed=2)
    data = tf.data.Dataset.from_tensor_slices((features, labels)).batch(8)
    before = [w.numpy().copy() for w in model.trainable_weights]
    first_loss = float(model.compute_loss(features, labels, model(features)))
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(data, epochs=3, verbose=0,
                        callbacks=[SubtaskWeightScheduler(config)])
    assert history.history["subtask_weight_factor"] == [1.0, 0.5, 0.25]
    assert float(model.m3sa_loss.subtask_weights["audio"].numpy()) == pytest.approx(0.25)
    # Epoch 0 logs the loss of the untrained model with weights at factor 1.
    assert history.history["loss"][0] == pytest.approx(first_loss, rel=1e-4)
    assert all(np.any(w.numpy() != b) for w, b in zip(model.trainable_weights, before))


def test_keras_file_round_trip_predicts_identically(tmp_path):
    config = tiny_config("mosi", readout="attention", dropout=0.3)
    model = build_model(config, FEATURE_DIMS, has_unimodal_labels=False,
                        key_modality="vision")
    features = tiny_batch(seed=3, zero_length_rows=(2,))
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, M3SAModel)
    assert loaded.key_modality == "vision"
    assert loaded.config.model_dict() == config.model_dict()
    before, after = model(features), loaded(features)
    assert set(before) == set(after)
    for name in before:
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(before[name]),
                                      keras.ops.convert_to_numpy(after[name]))


def test_keras_file_records_the_architecture_not_the_training_settings(tmp_path):
    config = tiny_config("mosi", batch_size=7, epochs=3, early_stopping_patience=2)
    model = build_model(config, FEATURE_DIMS, has_unimodal_labels=False)
    saved = model.get_config()
    assert "name" in saved and "trainable" in saved  # keras.Model's own entries
    for field in ("batch_size", "epochs", "early_stopping_patience", "learning_rate"):
        assert field not in saved["config"]
    assert saved["config"]["n_scales"] == config.n_scales


def test_saved_model_export_serves_dynamic_batches_and_lengths(tmp_path):
    config = tiny_config(modalities=["text", "audio"], key_modality="text")
    model = build_model(config, FEATURE_DIMS, has_unimodal_labels=False)
    path = str(tmp_path / "export")
    model.export(path, format="tf_saved_model", verbose=False,
                 input_signature=[model.input_signature()])
    serve = tf.saved_model.load(path).signatures["serving_default"]
    for batch_size, seed in ((4, 4), (2, 5)):
        features = tiny_batch(batch_size=batch_size, seed=seed,
                              lengths={"audio": 9 + seed}, modalities=("text", "audio"))
        served = serve(**{k: tf.constant(v) for k, v in features.items()})
        direct = model(features)
        assert set(served) == {"fused", "text", "audio", "embedding_text", "embedding_audio"}
        for name in direct:
            np.testing.assert_allclose(served[name].numpy(), direct[name], atol=1e-5)


def test_copy_matching_weights_moves_blocks_and_heads_but_not_another_keys_fusion():
    source = build_model(tiny_config(), FEATURE_DIMS, False, key_modality="text")
    target = build_model(tiny_config(), FEATURE_DIMS, False, key_modality="audio")
    same_key = build_model(tiny_config(), FEATURE_DIMS, False, key_modality="text")
    copied = copy_matching_weights(source, target)
    assert "fusion" not in copied
    assert {"multi_scale_text", "head_audio", "head_fused",
            "contrastive_projection_vision"} <= set(copied)
    for name in copied:
        for a, b in zip(source.get_layer(name).weights, target.get_layer(name).weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert "fusion" in copy_matching_weights(source, same_key)
    features = tiny_batch(seed=6)
    np.testing.assert_allclose(source(features)["fused"], same_key(features)["fused"],
                               atol=1e-6)
