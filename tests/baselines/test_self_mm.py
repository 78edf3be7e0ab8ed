"""Self-MM's unimodal label generation module (ULGM), beyond the zoo's contract.

The generated labels are checked against a NumPy transcription of MMSA's
`update_labels` (without its per-sample averaging over epochs, which needs sample
indices), the centre update against a NumPy moving average, and the training-only
side effects and the absence of gradients through the labels directly.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from m3sa_tf.config import ConfigError
from tests.baselines.conftest import build_tiny, learnable_batches, tiny_batch

MODALITIES = ("text", "audio", "vision")
TASKS = ("fusion",) + MODALITIES


def _mmsa_label(f_fusion, f_single, centres, task, fused_label, bound):
    """MMSA trains/multiTask/SELF_MM.py `update_labels`, one modality, before the
    epoch averaging (`new_labels`)."""
    eps = 1e-8
    d_fp = np.linalg.norm(f_fusion - centres["fusion"]["pos"], axis=-1)
    d_fn = np.linalg.norm(f_fusion - centres["fusion"]["neg"], axis=-1)
    delta_f = (d_fn - d_fp) / (d_fp + eps)
    d_sp = np.linalg.norm(f_single - centres[task]["pos"], axis=-1)
    d_sn = np.linalg.norm(f_single - centres[task]["neg"], axis=-1)
    delta_s = (d_sn - d_sp) / (d_sp + eps)
    alpha = delta_s / (delta_f + eps)
    new = 0.5 * alpha * fused_label + 0.5 * (fused_label + delta_s - delta_f)
    return np.clip(new, -bound, bound)


def _set_centres(model, centres, weight=0.5):
    # Stored as a bias-corrected moving average: sum = centre * weight.
    for t, sides in centres.items():
        for side, value in sides.items():
            total, w = model.centres[t][side]
            total.assign(np.asarray(value, "float32") * weight)
            w.assign(weight)


def _random_state(model, rng, batch=6):
    centres = {t: {s: rng.normal(size=model.head_dims[t]).astype("float32")
                   for s in ("pos", "neg")} for t in TASKS}
    outputs = {f"feature_{t}": rng.normal(size=(batch, model.head_dims[t]))
               .astype("float32") for t in TASKS}
    fused = np.array([-2.5, -0.4, 0.0, 0.3, 1.1, 2.9], "float32")[:batch]
    return centres, outputs, fused


def _centre_values(model):
    return [keras.ops.convert_to_numpy(v).copy() for v in model.non_trainable_weights]


def test_generated_labels_match_a_numpy_transcription_of_mmsa():
    model, _, _ = build_tiny("self_mm")
    rng = np.random.default_rng(0)
    centres, outputs, fused = _random_state(model, rng)
    _set_centres(model, centres)
    # A text row next to its positive centre has a huge margin: its label is clipped.
    outputs["feature_text"][5] = centres["text"]["pos"] + 0.01
    labels = model.generate_unimodal_labels(fused, outputs)
    clipped = False
    for m in MODALITIES:
        expected = _mmsa_label(outputs["feature_fusion"], outputs[f"feature_{m}"],
                               centres, m, fused, 3.0)
        clipped |= bool(np.any(np.abs(expected) == 3.0))
        np.testing.assert_allclose(keras.ops.convert_to_numpy(labels[m]), expected,
                                   rtol=1e-4, atol=1e-5, err_msg=m)
    assert clipped, "the example should exercise the clip at +-H"


def test_labels_are_the_fused_label_while_warming_up_or_before_a_centre_is_seen():
    model, _, _ = build_tiny("self_mm", model_hparams={"label_warmup_steps": 3})
    rng = np.random.default_rng(1)
    centres, outputs, fused = _random_state(model, rng)
    _set_centres(model, centres)
    model.label_steps.assign(2.0)
    for m, label in model.generate_unimodal_labels(fused, outputs).items():
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(label), fused, err_msg=m)
    model.label_steps.assign(3.0)
    model.centres["audio"]["neg"][1].assign(0.0)  # audio's negative centre never seen
    labels = {m: keras.ops.convert_to_numpy(v)
              for m, v in model.generate_unimodal_labels(fused, outputs).items()}
    np.testing.assert_array_equal(labels["audio"], fused)
    assert not np.allclose(labels["text"], fused)
    # With every unimodal label equal to the fused one, only the fused L1 term is left.
    model.label_steps.assign(0.0)
    preds = dict(outputs, fused=fused + 0.5, text=fused - 1.0, audio=fused, vision=fused)
    loss = keras.ops.convert_to_numpy(model.per_sample_loss({"fused": fused}, preds))
    np.testing.assert_allclose(loss, 0.5, rtol=1e-6)


def test_one_training_update_moves_each_centre_by_its_batch_mean():
    model, _, _ = build_tiny("self_mm")
    momentum = model.centre_momentum
    rng = np.random.default_rng(2)
    centres, outputs, fused = _random_state(model, rng)
    fused[fused > 0] = -1.0  # no positive clip: the fused positive centre must stay put
    _set_centres(model, centres, weight=0.5)
    partition = {m: keras.ops.convert_to_numpy(v)
                 for m, v in model.generate_unimodal_labels(fused, outputs).items()}
    partition["fusion"] = fused
    model.update_centres(fused, outputs)
    for t in TASKS:
        features = outputs[f"feature_{t}"]
        for side, member in (("pos", partition[t] > 0), ("neg", partition[t] < 0)):
            total, weight = (keras.ops.convert_to_numpy(v) for v in model.centres[t][side])
            if member.any():
                expected_weight = momentum * 0.5 + (1 - momentum)
                expected = (momentum * centres[t][side] * 0.5
                            + (1 - momentum) * features[member].mean(axis=0))
            else:
                expected_weight, expected = 0.5, centres[t][side] * 0.5
            np.testing.assert_allclose(weight, expected_weight, rtol=1e-6, err_msg=t + side)
            np.testing.assert_allclose(total, expected, rtol=1e-5, atol=1e-6,
                                       err_msg=t + side)
    assert float(model.label_steps) == 1.0


def test_the_first_update_sets_a_centre_to_its_batch_mean():
    model, _, _ = build_tiny("self_mm")
    rng = np.random.default_rng(3)
    _, outputs, fused = _random_state(model, rng)
    model.update_centres(fused, outputs)
    centre, seen = model.centre("fusion", "pos")
    assert bool(seen)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(centre),
                               outputs["feature_fusion"][fused > 0].mean(axis=0), rtol=1e-5)


def test_centres_move_during_training_and_not_during_inference():
    model, _, _ = build_tiny("self_mm")
    train, valid = learnable_batches(False, n=16)
    # Eager steps run the same train/test step code without minutes of tracing.
    model.compile(optimizer=keras.optimizers.Adam(1e-3), run_eagerly=True)
    start = _centre_values(model)
    model(valid[0], training=False)
    outputs = model(valid[0], training=True)
    model.compute_loss(valid[0], valid[1], outputs, training=False)
    model.evaluate(tf.data.Dataset.from_tensors(valid), verbose=0)
    for before, after in zip(start, _centre_values(model)):
        np.testing.assert_array_equal(before, after)
    model.fit(tf.data.Dataset.from_tensors(train).repeat(3), epochs=1, verbose=0)
    assert float(model.label_steps) == 3.0
    moved = [not np.array_equal(a, b) for a, b in zip(start, _centre_values(model))]
    assert all(moved), [w.path for w, m in zip(model.non_trainable_weights, moved) if not m]


def test_generated_labels_carry_no_gradient():
    model, _, _ = build_tiny("self_mm")
    features = tiny_batch(batch_size=8, seed=4)
    fused = np.linspace(-2.0, 2.0, 8).astype("float32")
    model.update_centres(fused, model(features, training=False))
    with tf.GradientTape(persistent=True) as tape:
        outputs = model(features, training=True)
        label_feed = {k: v for k, v in outputs.items() if k.startswith("feature_")}
        tape.watch(list(label_feed.values()))
        labels = model.generate_unimodal_labels(fused, label_feed)
        total = sum(keras.ops.sum(v) for v in labels.values())
    assert any(not np.allclose(keras.ops.convert_to_numpy(labels[m]), fused)
               for m in MODALITIES)
    assert all(g is None for g in tape.gradient(total, list(label_feed.values())))
    assert all(g is None for g in tape.gradient(total, model.trainable_weights))


def test_sims_unimodal_labels_are_ignored():
    model, _, _ = build_tiny("self_mm", dataset="sims")
    features = tiny_batch(batch_size=6, seed=5)
    fused = np.linspace(-0.9, 0.9, 6).astype("float32")
    outputs = model(features, training=False)
    model.update_centres(fused, outputs)
    given = {"fused": fused, **{m: -fused for m in MODALITIES}}
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(model.per_sample_loss(given, outputs)),
        keras.ops.convert_to_numpy(model.per_sample_loss({"fused": fused}, outputs)))
    assert model.label_bound == 1.0


def test_bert_text_path_reads_the_first_token():
    import keras_hub

    from m3sa_tf import M3SAConfig
    from m3sa_tf.models.baselines.self_mm import SelfMM
    from m3sa_tf.text import BertTextEncoder

    keras.utils.set_random_seed(7)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=20, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16,
        max_sequence_length=16)
    config = M3SAConfig.for_dataset("mosi", model="self_mm", text_path="bert",
                                    bert_preset="unused: the encoder is given",
                                    model_hparams=SelfMM.TINY_HPARAMS)
    dims = {"audio": 3, "vision": 4}
    model = SelfMM(config, dims, False, text_encoder=BertTextEncoder(backbone))
    assert model.text_mode == "first_token" and "text" not in model.encoders
    assert model.vector_widths["text"] == 8
    features = tiny_batch(batch_size=3, seed=6, modalities=("audio", "vision"))
    features["text_token_ids"] = np.array([[1, 5, 7, 2], [1, 4, 2, 0], [1, 2, 0, 0]],
                                          "int32")
    features["text_segment_ids"] = np.zeros((3, 4), "int32")
    features["text_padding_mask"] = features["text_token_ids"] > 0
    with tf.GradientTape() as tape:
        outputs = model(features, training=True)
        labels = {"fused": np.array([1.0, -1.0, 0.5], "float32")}
        loss = model.compute_loss(features, labels, outputs)
    grads = tape.gradient(loss, model.text_encoder.trainable_weights)
    assert any(g is not None and np.any(keras.ops.convert_to_numpy(g)) for g in grads)


@pytest.mark.parametrize("hparams,match", [({"text_encoder": "gru"}, "text_encoder"),
                                           ({"centre_momentum": 1.0}, "centre_momentum")])
def test_invalid_hparams_are_config_errors(hparams, match):
    with pytest.raises(ConfigError, match=match):
        build_tiny("self_mm", model_hparams=hparams)


def test_a_traced_training_loss_reads_the_centres_its_step_moved():
    model, _, _ = build_tiny("self_mm")
    features = tiny_batch(batch_size=8, seed=7)
    y = {"fused": np.linspace(-2.0, 2.0, 8).astype("float32")}
    outputs = {k: tf.constant(keras.ops.convert_to_numpy(v))
               for k, v in model(features, training=False).items()}
    fresh = _centre_values(model)
    traced = float(tf.function(lambda: model.compute_loss(None, y, outputs))())
    for variable, value in zip(model.non_trainable_weights, fresh):
        variable.assign(value)
    eager = float(model.compute_loss(None, y, outputs))
    # Fresh centres would give labels equal to y_f and only the fused term.
    fused_only = float(np.mean(np.abs(outputs["fused"].numpy() - y["fused"])))
    assert traced == pytest.approx(eager, rel=1e-5) and eager > fused_only + 1e-4
