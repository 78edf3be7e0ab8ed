"""`fusion="multi_key"`: key fusion around every modality, mixed clip by clip. Each view
is the paper's key fusion; the mix starts as a plain average, can put a clip's whole
weight on one key, and never gives weight to a key the clip has no step of."""

import keras
import numpy as np
import pytest

from m3sa_tf import ConfigError, M3SAConfig
from m3sa_tf.layers import KeyModalityFusion
from m3sa_tf.layers.sequence_readout import SequenceReadout
from m3sa_tf.models.m3sa_model import M3SAModel

from tests.model.helpers import FEATURE_DIMS, tiny_batch, tiny_config
from tests.model.test_fusion_gate import _inputs

MODALITIES = ("text", "audio", "vision")


def _multi_key(**kwargs):
    fusion = KeyModalityFusion(MODALITIES, "text", fusion_dim=8, num_heads=2,
                               strategy="multi_key", seed=3, **kwargs)
    fusion(*_inputs())
    return fusion


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


def _views(fusion, xs, ms):
    masks = {m: keras.ops.convert_to_tensor(ms[m]) for m in MODALITIES}
    projected = {m: fusion.projections[m](xs[m]) * ms[m][..., None] for m in MODALITIES}
    return [_numpy(fusion._key_view(k, projected, masks, False)) for k in MODALITIES]


def test_multi_key_fusion_is_a_finite_vector_per_clip_whatever_the_padding():
    fusion = _multi_key()
    xs, ms = _inputs()  # clip 2 has no audio step
    fused = _numpy(fusion(xs, ms))
    assert fused.shape == (3, 24) and np.all(np.isfinite(fused))
    padded = {k: np.concatenate([v, np.full(v.shape[:1] + (3,) + v.shape[2:], 9.0,
                                             "float32")], axis=1) for k, v in xs.items()}
    padded_masks = {k: np.concatenate([v, np.zeros((3, 3), bool)], axis=1)
                    for k, v in ms.items()}
    np.testing.assert_allclose(_numpy(fusion(padded, padded_masks)), fused,
                               rtol=1e-5, atol=1e-5)


def test_a_batch_without_any_step_of_one_modality_still_fuses():
    # A served clip without audio arrives padded to 0 audio steps.
    fusion = _multi_key()
    xs, ms = _inputs()
    xs = dict(xs, audio=np.zeros((3, 0, 3), "float32"))
    ms = dict(ms, audio=np.zeros((3, 0), bool))
    fused = _numpy(fusion(xs, ms))
    assert fused.shape == (3, 24) and np.all(np.isfinite(fused))


def test_an_untrained_mix_averages_the_keys_a_clip_has():
    fusion = _multi_key()
    xs, ms = _inputs()
    views = _views(fusion, xs, ms)
    weights = _numpy(fusion.key_weights(views, ms))
    np.testing.assert_allclose(weights[:2], 1 / 3, atol=1e-6)
    np.testing.assert_allclose(weights[2], [0.5, 0.0, 0.5], atol=1e-6)  # no audio
    expected = sum(v * weights[:, i, None] for i, v in enumerate(views))
    np.testing.assert_allclose(_numpy(fusion(xs, ms)), expected, atol=1e-6)


@pytest.mark.parametrize("key", MODALITIES)
def test_the_mix_can_hand_a_clip_to_one_key(key):
    fusion = _multi_key()
    xs, ms = _inputs(audio_lengths=(7, 7, 7))
    bias = np.where(np.array(MODALITIES) == key, 60.0, 0.0).astype("float32")
    fusion.key_scores.get_layer("scores").bias.assign(bias)
    chosen = _views(fusion, xs, ms)[MODALITIES.index(key)]
    np.testing.assert_allclose(_numpy(fusion(xs, ms)), chosen, atol=1e-5)


def test_each_view_is_the_papers_key_fusion_with_its_parts_in_modality_order():
    multi = _multi_key()
    paper = KeyModalityFusion(MODALITIES, "audio", fusion_dim=8, num_heads=2, seed=3)
    xs, ms = _inputs(audio_lengths=(7, 4, 2))
    paper(xs, ms)
    for m in MODALITIES:
        paper.projections[m].set_weights(multi.projections[m].get_weights())
        paper.attentions[m].set_weights(multi.attentions[f"audio_{m}"].get_weights())
    sequence = _numpy(paper(xs, ms))  # parts [text, vision, audio]: others, then the key
    width = 8
    reordered = np.concatenate([sequence[..., :width], sequence[..., 2 * width:],
                                sequence[..., width:2 * width]], axis=-1)
    pooled = _numpy(SequenceReadout("last")(reordered, ms["audio"]))
    np.testing.assert_allclose(_views(multi, xs, ms)[1], pooled, rtol=1e-5, atol=1e-6)


def test_multi_key_survives_a_config_round_trip_and_a_saved_model(tmp_path):
    fusion = _multi_key()
    assert KeyModalityFusion.from_config(fusion.get_config()).strategy == "multi_key"
    keras.utils.set_random_seed(0)
    model = M3SAModel(tiny_config(fusion="multi_key"), FEATURE_DIMS, False)
    batch = tiny_batch(batch_size=3)
    expected = _numpy(model(batch)["fused"])
    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(_numpy(restored(batch)["fused"]), expected,
                               rtol=1e-5, atol=1e-6)


def test_multi_key_needs_no_key_and_takes_no_gate():
    config = M3SAConfig.for_dataset("sims").replace(fusion="multi_key")
    assert not config.uses_key_modality
    with pytest.raises(ConfigError, match="needs model='m3sa' and fusion='key'"):
        config.replace(fusion_gate="softmax")
    with pytest.raises(ValueError, match="needs strategy='key'"):
        KeyModalityFusion(MODALITIES, "text", strategy="multi_key", gate="softmax")


def test_a_models_fusion_weights_are_read_clip_by_clip():
    keras.utils.set_random_seed(0)
    batch = tiny_batch(batch_size=3)
    multi = M3SAModel(tiny_config(fusion="multi_key"), FEATURE_DIMS, False)
    multi(batch)
    weights = {m: _numpy(w) for m, w in multi.fusion_weights(batch).items()}
    assert set(weights) == set(MODALITIES)
    np.testing.assert_allclose(sum(weights.values()), 1.0, rtol=1e-5)
    gated = M3SAModel(tiny_config(fusion_gate="softmax"), FEATURE_DIMS, False)
    gated(batch)
    parts = {m: _numpy(w) for m, w in gated.fusion_weights(batch).items()}
    np.testing.assert_allclose(np.stack(list(parts.values())), 1.0, atol=1e-6)  # untrained
    gated.fusion.part_scores.get_layer("scores").bias.assign(
        np.array([5.0, 0.0, -5.0], "float32"))  # parts: audio, vision, text (the key)
    parts = {m: _numpy(w) for m, w in gated.fusion_weights(batch).items()}
    assert np.all(parts["audio"] > parts["vision"]) and np.all(parts["vision"] > parts["text"])
    plain = M3SAModel(tiny_config(), FEATURE_DIMS, False)
    plain(batch)
    with pytest.raises(ValueError, match="clip_weights needs gate='softmax' or "
                                         "strategy='multi_key'"):
        plain.fusion_weights(batch)
