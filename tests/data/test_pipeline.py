"""load_dataset: the batches of docs/interfaces.md §2, shuffling, bucketing, sharding."""

import os

import numpy as np
import pytest
import tensorflow as tf

from tfrecords import DatasetInfo, DatasetNotBuiltError, build_dataset, load_dataset
from tfrecords.build import dataset_path
from tfrecords.pipeline import length_key

from tests.data.conftest import SCALE


def _ids(dataset):
    return [i.decode() for f, _ in dataset for i in f["id"].numpy()]


def test_batches_have_the_interface_keys_dtypes_and_fixed_padded_shapes(
        data_dir, synthetic_mosi):
    splits, info = load_dataset("synthetic-mosi", data_dir, scale=SCALE, batch_size=4,
                                keep_ids=True)
    assert set(splits) == {"train", "valid", "test"}
    features, labels = next(iter(splits["test"]))
    dims, lengths = info.feature_dims, info.max_lengths
    assert dims == {"text": 768, "audio": 5, "vision": 20}
    for m in ("text", "audio", "vision"):
        assert features[m].dtype == tf.float32
        assert features[m].shape == (4, lengths[m], dims[m])
        assert features[f"{m}_length"].dtype == tf.int32
    for key in ("text_token_ids", "text_segment_ids"):
        assert features[key].dtype == tf.int32 and features[key].shape == (4, 50)
    assert features["text_padding_mask"].dtype == tf.bool
    assert features["id"].dtype == tf.string
    assert set(labels) == {"fused"} and labels["fused"].dtype == tf.float32


def test_padding_is_zero_past_each_length_and_mask_matches_text_length(
        data_dir, synthetic_mosi):
    splits, _ = load_dataset("synthetic-mosi", data_dir, scale=SCALE, batch_size=8)
    for features, _ in splits["train"]:
        for m in ("text", "audio", "vision"):
            x, n = features[m].numpy(), features[f"{m}_length"].numpy()
            steps = np.arange(x.shape[1])[None, :]
            assert not np.any(x[steps >= n[:, None]])
            # Gaussian features are never exactly zero on every dim of a valid step.
            assert np.all(np.any(x != 0, axis=2)[steps < n[:, None]])
        mask = features["text_padding_mask"].numpy()
        np.testing.assert_array_equal(mask.sum(axis=1), features["text_length"].numpy())


def test_sims_batches_carry_unimodal_labels(data_dir, synthetic_sims):
    splits, info = load_dataset("synthetic-sims", data_dir, scale=SCALE, batch_size=4,
                                splits=("valid",))
    assert set(splits) == {"valid"} and info.has_unimodal_labels
    features, labels = next(iter(splits["valid"]))
    assert set(labels) == {"fused", "text", "audio", "vision"}
    assert features["vision"].shape[1:] == (55, 709)
    assert np.all(np.abs(labels["fused"].numpy()) <= 1.0)


def test_pad_to_batch_max_uses_the_longest_sequence_in_the_batch(
        data_dir, synthetic_mosi):
    splits, _ = load_dataset("synthetic-mosi", data_dir, scale=SCALE, batch_size=4,
                             pad_to_max_length=False, shuffle=False)
    for features, _ in splits["train"]:
        for m in ("text", "audio", "vision"):
            assert features[m].shape[1] == features[f"{m}_length"].numpy().max()


def test_only_train_is_shuffled_and_the_order_is_reproducible(data_dir, synthetic_mosi):
    def order(**kwargs):
        splits, _ = load_dataset("synthetic-mosi", data_dir, scale=SCALE, batch_size=8,
                                 keep_ids=True, **kwargs)
        return {s: _ids(d) for s, d in splits.items()}

    plain = order(shuffle=False)
    seeded = order(shuffle=True, shuffle_seed=5)
    assert seeded == order(shuffle=True, shuffle_seed=5)
    assert seeded["train"] != plain["train"]
    assert sorted(seeded["train"]) == sorted(plain["train"])
    assert order(shuffle=True, shuffle_seed=6)["train"] != seeded["train"]
    assert seeded["valid"] == plain["valid"] and seeded["test"] == plain["test"]


def test_each_epoch_is_reshuffled(data_dir, synthetic_mosi):
    splits, _ = load_dataset("synthetic-mosi", data_dir, scale=SCALE, batch_size=8,
                             keep_ids=True, splits=("train",))
    first, second = _ids(splits["train"]), _ids(splits["train"])
    assert first != second and sorted(first) == sorted(second)


def test_nondeterministic_mode_still_yields_every_sample_once(data_dir, synthetic_mosi):
    splits, _ = load_dataset("synthetic-mosi", data_dir, scale=SCALE, batch_size=8,
                             keep_ids=True, deterministic=False)
    ids = _ids(splits["train"])
    assert len(ids) == len(set(ids)) == synthetic_mosi.split_sizes["train"]


def test_two_workers_get_disjoint_shards_that_cover_the_split(data_dir, synthetic_mosi):
    shards = []
    for worker in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2,
                                             input_pipeline_id=worker,
                                             num_replicas_in_sync=2)
        splits, _ = load_dataset("synthetic-mosi", data_dir, scale=SCALE, batch_size=8,
                                 keep_ids=True, input_context=context)
        for features, _ in splits["train"]:
            assert features["text"].shape[0] <= 4  # per-replica share of 8
        shards.append({s: _ids(d) for s, d in splits.items()})
    for split, size in synthetic_mosi.split_sizes.items():
        a, b = set(shards[0][split]), set(shards[1][split])
        assert a and b and not a & b
        assert len(a | b) == size


def test_bucketing_groups_similar_lengths_and_keeps_every_sample(
        data_dir, synthetic_mosi):
    splits, info = load_dataset("synthetic-mosi", data_dir, scale=SCALE, batch_size=4,
                                keep_ids=True, bucket_by_length=True,
                                pad_to_max_length=False, shuffle=False)
    # The key: the largest fraction of its padded length that audio or vision fills
    # (both are long on MOSI); 8 equal buckets of that fraction.
    assert length_key(info)[0] == ("audio", "vision")
    ids = []
    for features, _ in splits["train"]:
        fractions = np.maximum(features["audio_length"].numpy() / info.max_lengths["audio"],
                               features["vision_length"].numpy() / info.max_lengths["vision"])
        keys = np.ceil(fractions.astype("float32") * 1000)
        buckets = np.searchsorted([126, 251, 376, 501, 626, 751, 876], keys, side="right")
        assert len(set(buckets)) == 1, fractions
        for m in ("audio", "vision", "text"):
            assert features[m].shape[1] == features[f"{m}_length"].numpy().max()
        ids += [i.decode() for i in features["id"].numpy()]
    assert len(ids) == len(set(ids)) == synthetic_mosi.split_sizes["train"]
    # Only "train" is bucketed: the evaluation splits keep the stored order.
    unbucketed, _ = load_dataset("synthetic-mosi", data_dir, scale=SCALE, batch_size=4,
                                 keep_ids=True, shuffle=False, splits=("valid",))
    for split in ("valid",):
        assert _ids(splits[split]) == _ids(unbucketed[split])


def test_repeat_makes_train_endless(data_dir, synthetic_mosi):
    splits, _ = load_dataset("synthetic-mosi", data_dir, scale=SCALE, batch_size=8,
                             repeat=True, splits=("train",))
    batches = list(splits["train"].take(10))  # 26 samples = 4 batches per epoch
    assert len(batches) == 10


def test_a_real_dataset_that_is_not_built_names_the_build_command(tmp_path):
    with pytest.raises(DatasetNotBuiltError) as err:
        load_dataset("mosi", str(tmp_path), build_if_missing=True)
    message = str(err.value)
    assert "python -m tfrecords.build --dataset mosi --source" in message
    assert "unaligned_50.pkl" in message and str(tmp_path) in message
    assert os.listdir(tmp_path) == []


def test_a_synthetic_dataset_is_built_only_when_asked(tmp_path):
    with pytest.raises(DatasetNotBuiltError, match="--dataset synthetic-sims"):
        load_dataset("synthetic-sims", str(tmp_path), scale=0.01)
    splits, info = load_dataset("synthetic-sims", str(tmp_path), scale=0.01,
                                build_if_missing=True, splits=("test",))
    assert info.split_sizes["test"] == 5 and info.scale == 0.01


def test_scaled_builds_live_apart_from_each_other_and_are_not_rebuilt(
        data_dir, synthetic_mosi):
    other = build_dataset("synthetic-mosi", data_dir, scale=0.01, seed=0)
    assert other.split_sizes["train"] < synthetic_mosi.split_sizes["train"]
    full = dataset_path("synthetic-mosi", data_dir, 1.0, 0)
    small = dataset_path("synthetic-mosi", data_dir, SCALE, 0)
    assert len({full, small, dataset_path("synthetic-mosi", data_dir, 0.01, 0),
                dataset_path("synthetic-mosi", data_dir, SCALE, 1)}) == 4
    marker = os.path.join(small, "m3sa_dataset_info.json")
    before = os.stat(marker).st_mtime_ns
    again = build_dataset("synthetic-mosi", data_dir, scale=SCALE, seed=0)
    assert os.stat(marker).st_mtime_ns == before and again == synthetic_mosi


def test_dataset_info_round_trips_through_json(synthetic_sims):
    info = synthetic_sims
    assert DatasetInfo.from_json(info.to_json()) == info
    assert DatasetInfo.from_dict(info.to_dict()) == info
    assert info.family == "sims" and info.label_range == (-1.0, 1.0)


def test_workers_read_whole_files_when_there_is_one_file_per_worker(tmp_path):
    from tfrecords.pipeline import shard_policy

    assert shard_policy(1, 1) == "OFF"
    assert shard_policy(1, 2) == "DATA" and shard_policy(3, 2) == "FILE"
    data_dir = str(tmp_path)
    info = build_dataset("synthetic-mosi", data_dir, scale=0.01, seed=2, num_shards=2)
    shards = []
    for worker in range(2):
        context = tf.distribute.InputContext(2, worker, 2)
        splits, _ = load_dataset("synthetic-mosi", data_dir, scale=0.01, seed=2,
                                 batch_size=4, keep_ids=True, input_context=context,
                                 splits=("train",))
        shards.append(set(_ids(splits["train"])))
    assert shards[0] and shards[1] and not shards[0] & shards[1]
    assert len(shards[0] | shards[1]) == info.split_sizes["train"]
