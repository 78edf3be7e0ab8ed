"""The window-detector extractor: kernels side by side, half of each contrasted."""

import keras
import numpy as np
import pytest

from m3sa_tf import ConfigError, M3SAConfig
from m3sa_tf.layers import MultiScaleBlock, WindowConvolution


def _run(layer, u, mask):
    return keras.ops.convert_to_numpy(layer(u, mask))


def _batch(seed=0):
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(3, 12, 5)).astype("float32")
    mask = np.zeros((3, 12), bool)
    mask[0, :12], mask[1, :7], mask[2, :0] = True, True, True
    return u * mask[..., None], mask


def test_each_kernel_gets_an_equal_share_of_the_channels_and_the_widest_the_rest():
    conv = WindowConvolution(filters=8, kernel_sizes=(2, 3, 5))
    conv.build((None, None, 5))
    assert [b.filters for b in conv.branches] == [2, 2, 4]
    assert [b.kernel_size[0] for b in conv.branches] == [2, 3, 5]


def test_contrasted_channels_average_zero_over_each_clip_and_level_channels_do_not():
    conv = WindowConvolution(filters=8, kernel_sizes=(3, 5))
    u, mask = _batch()
    out = _run(conv, u + 2.0 * mask[..., None], mask)
    lengths = mask.sum(1)
    for row in (0, 1):
        means = out[row, :lengths[row]].mean(0)
        # Each kernel's 4 channels: the first 2 contrasted, the last 2 the level.
        np.testing.assert_allclose(means[[0, 1, 4, 5]], 0.0, atol=1e-5)
        assert np.abs(means[[2, 3, 6, 7]]).max() > 1e-3
    assert np.all(out[2] == 0.0) and np.all(out[1, 7:] == 0.0)


def test_a_constant_shift_of_a_whole_clip_moves_only_the_level_channels():
    # A speaker's habitual expression: the same offset on every valid step. (Width 1, so
    # that no kernel reads the zeros past a clip's edge, where the shift stops.)
    conv = WindowConvolution(filters=4, kernel_sizes=(1,))
    u, mask = _batch(1)
    base = _run(conv, u, mask)
    shifted = _run(conv, u + 1.5 * mask[..., None], mask)
    np.testing.assert_allclose(shifted[..., :2], base[..., :2], atol=1e-5)
    assert np.abs(shifted[:2, :, 2:] - base[:2, :, 2:]).max() > 0.01


def test_what_the_padding_holds_never_reaches_a_valid_output():
    # The projection's bias would turn zero padding into a constant; it is zeroed again.
    conv = WindowConvolution(filters=6, kernel_sizes=(2, 5))
    conv.build((None, None, 5))
    conv.projection.bias.assign(np.ones(6, "float32"))
    u, mask = _batch(2)
    clean = _run(conv, u, mask)
    dirty = _run(conv, np.where(mask[..., None], u, 7.0).astype("float32"), mask)
    np.testing.assert_allclose(dirty, clean, atol=1e-5)


def test_a_window_stands_out_in_the_contrasted_channels_wherever_it_is():
    conv = WindowConvolution(filters=2, kernel_sizes=(4,))
    conv.build((None, None, 1))
    conv.projection.set_weights([np.ones((1, 2), "float32"), np.zeros(2, "float32")])
    conv.branches[0].set_weights([np.ones((4, 2, 2), "float32"), np.zeros(2, "float32")])
    for start in (2, 9):
        u = np.full((1, 20, 1), 0.5, "float32")
        u[0, start:start + 4] = 3.0
        out = _run(conv, u, np.ones((1, 20), bool))
        # "same" padding centres a width-4 kernel one step right of the window's middle.
        assert int(np.argmax(out[0, :, 0])) in (start + 1, start + 2)
        assert out[0, :, 0].max() > 5.0


@pytest.mark.parametrize("kwargs, message", [
    (dict(filters=4, kernel_sizes=()), "kernel_sizes"),
    (dict(filters=4, kernel_sizes=(3, 0)), "kernel_sizes"),
    (dict(filters=2, kernel_sizes=(1, 2, 3)), "filters=2"),
])
def test_bad_arguments_are_refused_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        WindowConvolution(**kwargs)


def test_the_layer_and_a_conv_block_round_trip_through_their_configs():
    conv = WindowConvolution(filters=6, kernel_sizes=(2, 7))
    restored = keras.layers.deserialize(keras.layers.serialize(conv))
    assert restored.filters == 6 and restored.kernel_sizes == (2, 7)
    block = MultiScaleBlock(hidden_size=6, n_scales=2, channel_ratio=1, extractor="conv",
                            conv_kernel_sizes=(2, 3))
    u, mask = _batch(3)
    x, _ = block(u, mask)
    clone = MultiScaleBlock.from_config(block.get_config())
    clone(u, mask)
    clone.set_weights(block.get_weights())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(clone(u, mask)[0]),
                               keras.ops.convert_to_numpy(x), atol=1e-6)
    assert clone.conv_kernel_sizes == (2, 3) and not clone.is_recurrent


def test_the_config_checks_the_kernel_widths_and_that_every_width_can_be_split():
    config = M3SAConfig.from_overrides("mosi", assignments=["extractor=conv",
                                                            "conv_kernel_sizes=[3,9]"])
    assert config.conv_kernel_sizes == (3, 9)
    with pytest.raises(ConfigError, match="conv_kernel_sizes"):
        M3SAConfig.from_overrides("mosi", assignments=["conv_kernel_sizes=[]"])
    with pytest.raises(ConfigError, match="narrower"):
        M3SAConfig.for_dataset("mosi", extractor="conv", conv_kernel_sizes=(1, 2, 3),
                               hidden_sizes={"text": 8, "audio": 2, "vision": 6})
