"""The optional per-clip gate of key-modality fusion (`fusion_gate`): what each mode lets
the model do, and that the paper's fusion ("none") is untouched."""

import keras
import numpy as np
import pytest

from m3sa_tf import ConfigError, M3SAConfig
from m3sa_tf.layers import KeyModalityFusion
from m3sa_tf.models.m3sa_model import M3SAModel

from tests.model.helpers import FEATURE_DIMS, tiny_batch, tiny_config

MODALITIES = ("text", "audio", "vision")


def _inputs(seed=0, batch=3, audio_lengths=(7, 4, 0)):
    rng = np.random.default_rng(seed)
    xs = {"text": rng.normal(size=(batch, 5, 6)), "audio": rng.normal(size=(batch, 7, 3)),
          "vision": rng.normal(size=(batch, 4, 2))}
    xs = {k: v.astype("float32") for k, v in xs.items()}
    ms = {"text": np.arange(5)[None] < np.array([[5], [3], [2]]),
          "audio": np.arange(7)[None] < np.array(audio_lengths)[:, None],
          "vision": np.ones((batch, 4), bool)}
    xs = {k: v * ms[k][..., None] for k, v in xs.items()}
    return xs, ms


def _fusion(gate, **kwargs):
    return KeyModalityFusion(MODALITIES, "text", fusion_dim=8, num_heads=2, gate=gate,
                             seed=3, **kwargs)


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


@pytest.mark.parametrize("gate", ["null_step", "sigmoid", "softmax"])
def test_gated_fusion_keeps_the_shape_masks_and_finite_values(gate):
    fusion = _fusion(gate)
    xs, ms = _inputs()
    fused = _numpy(fusion(xs, ms))
    assert fused.shape == (3, 5, 24)
    assert np.all(np.isfinite(fused))  # row 2 has no audio step at all
    assert np.all(fused[1, 3:] == 0.0) and np.all(fused[2, 2:] == 0.0)


@pytest.mark.parametrize("gate", ["null_step", "sigmoid", "softmax"])
def test_gated_fusion_does_not_depend_on_the_padding(gate):
    fusion = _fusion(gate)
    xs, ms = _inputs()
    padded = {k: np.concatenate([v, np.full(v.shape[:1] + (3,) + v.shape[2:], 9.0,
                                             "float32")], axis=1) for k, v in xs.items()}
    padded_masks = {k: np.concatenate([v, np.zeros((3, 3), bool)], axis=1)
                    for k, v in ms.items()}
    short, long = _numpy(fusion(xs, ms)), _numpy(fusion(padded, padded_masks))
    np.testing.assert_allclose(long[:, :5], short, rtol=1e-5, atol=1e-5)


def test_a_null_step_the_key_always_prefers_makes_the_fusion_ignore_that_modality():
    fusion = _fusion("null_step")
    xs, ms = _inputs(audio_lengths=(7, 7, 7))
    fusion(xs, ms)
    # Every key step asks the same question (query = all ones), and the null step's key
    # answers it a thousand times louder than any audio step can.
    attention = fusion.attentions["audio"]
    query = attention._query_dense
    query.kernel.assign(np.zeros(query.kernel.shape, "float32"))
    query.bias.assign(np.ones(query.bias.shape, "float32"))
    key = attention._key_dense
    kernel = _numpy(key.kernel).reshape(8, -1)
    wanted = 1e3 * np.ones(kernel.shape[1]) - _numpy(key.bias).ravel()
    fusion.null_keys["audio"].assign(np.linalg.solve(kernel.T, wanted).astype("float32"))
    before = _numpy(fusion(xs, ms))
    swapped = dict(xs, audio=xs["audio"][::-1].copy())
    after = _numpy(fusion(swapped, ms))
    np.testing.assert_allclose(after[..., :8], before[..., :8], atol=1e-4)  # audio part
    assert np.abs(after[..., 8:16] - before[..., 8:16]).max() == 0.0  # vision untouched
    # ...whereas without the null step the same swap moves the audio part.
    plain = _fusion("none")
    plain(xs, ms)
    assert np.abs(_numpy(plain(swapped, ms))[..., :8] - _numpy(plain(xs, ms))[..., :8]).max() > 1e-3


def test_a_closed_sigmoid_gate_removes_that_modality_from_the_fusion():
    fusion = _fusion("sigmoid")
    xs, ms = _inputs(audio_lengths=(7, 7, 7))
    fusion(xs, ms)
    swapped = dict(xs, audio=xs["audio"][::-1].copy())
    assert np.abs(_numpy(fusion(swapped, ms))[..., :8] - _numpy(fusion(xs, ms))[..., :8]).max() > 1e-3
    gate = fusion.gates["audio"]
    gate.kernel.assign(np.zeros(gate.kernel.shape, "float32"))
    gate.bias.assign(np.full(gate.bias.shape, -60.0, "float32"))
    assert np.abs(_numpy(fusion(xs, ms))[..., :8]).max() < 1e-12
    np.testing.assert_allclose(_numpy(fusion(swapped, ms)), _numpy(fusion(xs, ms)), atol=1e-12)


@pytest.mark.parametrize("gate", ["null_step", "sigmoid", "softmax"])
def test_gated_fusion_survives_a_config_round_trip_and_a_saved_model(gate, tmp_path):
    fusion = _fusion(gate)
    assert KeyModalityFusion.from_config(fusion.get_config()).gate == gate
    config = tiny_config(fusion_gate=gate)
    keras.utils.set_random_seed(0)
    model = M3SAModel(config, FEATURE_DIMS, False)
    batch = tiny_batch(batch_size=3)
    expected = _numpy(model(batch)["fused"])
    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert restored.fusion.gate == gate
    np.testing.assert_allclose(_numpy(restored(batch)["fused"]), expected, rtol=1e-5, atol=1e-6)


def _copy_weights(source, target):
    """Assigns `source`'s weights to `target`'s of the same path (the layer names differ)."""
    by_path = {w.path.split("/", 1)[1]: w for w in source.weights}
    for w in target.weights:
        w.assign(by_path[w.path.split("/", 1)[1]])


def test_an_untrained_softmax_gate_is_the_paper_fusion():
    xs, ms = _inputs()
    gated, plain = _built(_fusion("softmax")), _built(_fusion("none"))
    _copy_weights(gated, plain)
    np.testing.assert_allclose(_numpy(gated(xs, ms)), _numpy(plain(xs, ms)), atol=1e-6)
    parts = [np.ones((3, 5, 8), "float32")] * 3
    np.testing.assert_allclose(_numpy(gated.part_weights(parts, ms["text"])), 1.0, atol=1e-6)


def test_the_softmax_gate_can_turn_the_key_itself_down_clip_by_clip():
    fusion = _built(_fusion("softmax"))
    xs, ms = _inputs(audio_lengths=(7, 7, 7))
    scores = fusion.part_scores.get_layer("scores")
    # Parts are ordered [audio, vision, text]: all of the weight on audio, none on the key.
    bias = np.array([60.0, 0.0, -60.0], "float32")
    scores.bias.assign(bias)
    fused = _numpy(fusion(xs, ms))
    assert np.abs(fused[..., 8:]).max() < 1e-12  # vision and the key's own part are gone
    np.testing.assert_allclose(fused[..., :8] / 3.0,
                               _numpy(_fusion_without_gate(fusion, xs, ms))[..., :8], atol=1e-5)
    # The weights depend on the clip: a kernel reading the pooled parts gives each clip
    # its own split, and every clip's weights still sum to the number of parts.
    scores.bias.assign(np.zeros(3, "float32"))
    scores.kernel.assign(np.random.default_rng(0).normal(size=scores.kernel.shape)
                         .astype("float32"))
    parts = [np.random.default_rng(i).normal(size=(3, 5, 8)).astype("float32")
             for i in range(3)]
    weights = _numpy(fusion.part_weights(parts, ms["text"]))
    np.testing.assert_allclose(weights.sum(axis=1), 3.0, rtol=1e-5)
    assert np.ptp(weights[:, 2]) > 1e-3


def _fusion_without_gate(gated, xs, ms):
    plain = _built(_fusion("none"))
    _copy_weights(gated, plain)
    return plain(xs, ms)


def test_the_paper_fusion_has_no_gate_weights():
    names = [w.path for w in _built(_fusion("none")).weights]
    assert not any("gate" in n or "null_" in n or "part_scores" in n for n in names)
    assert M3SAConfig.for_dataset("mosi").fusion_gate == "none"


def _built(fusion):
    fusion(*_inputs())
    return fusion


def test_bad_gate_settings_are_refused_with_the_accepted_values():
    with pytest.raises(ValueError, match="gate='maybe' is not one of"):
        KeyModalityFusion(MODALITIES, "text", gate="maybe")
    with pytest.raises(ValueError, match="needs strategy='key'"):
        KeyModalityFusion(MODALITIES, "text", gate="null_step", strategy="equal")
    with pytest.raises(ConfigError, match="fusion_gate"):
        M3SAConfig.for_dataset("mosi").replace(fusion_gate="soft")
    with pytest.raises(ConfigError, match="needs model='m3sa' and fusion='key'"):
        M3SAConfig.for_dataset("mosi").replace(fusion_gate="null_step", fusion="equal")
