"""From the TFRecord shards to padded batches: `load_dataset()` (docs/interfaces.md §1–2).

Each element is `(features, labels)`:
features `text` float32 [B, T_t, D_t], `audio` [B, T_a, D_a], `vision` [B, T_v, D_v],
`text_length`/`audio_length`/`vision_length` int32 [B], `text_token_ids`,
`text_segment_ids` int32 [B, T_t], `text_padding_mask` bool [B, T_t], and `id` tf.string
[B] with `keep_ids=True`; labels `fused` float32 [B] and, with unimodal labels (SIMS),
`text`/`audio`/`vision` float32 [B]. Sequences are right-padded with zeros.

Example (not run by tests/test_doctests.py: it builds a dataset on disk):

>>> splits, info = load_dataset("synthetic-mosi", "/tmp/data", scale=0.02,
...                             build_if_missing=True, batch_size=8)  # doctest: +SKIP
>>> features, labels = next(iter(splits["train"]))  # doctest: +SKIP
>>> features["audio"].shape  # doctest: +SKIP
TensorShape([8, 375, 5])

(375 is the audio's maximum length in MOSI: batches are padded to it.)
"""

from __future__ import annotations

import os
from typing import Dict, Optional, Sequence, Tuple

import tensorflow as tf

from msa_core.io import default_data_dir
from tfrecords import specs
from tfrecords.build import build_command, build_dataset, dataset_path, is_built, read_info
from tfrecords.errors import DatasetNotBuiltError
from tfrecords.info import DatasetInfo

SHUFFLE_BUFFER = 1024
NUM_BUCKETS = 8


def load_dataset(name: str, data_dir: Optional[str] = None, *, scale: float = 1.0,
                 seed: int = 0, batch_size: int = 64, shuffle: bool = True,
                 shuffle_seed: Optional[int] = None, deterministic: bool = True,
                 bucket_by_length: bool = False, pad_to_max_length: bool = True,
                 keep_ids: bool = False,
                 input_context: Optional[tf.distribute.InputContext] = None,
                 build_if_missing: bool = False,
                 splits: Sequence[str] = specs.SPLITS, repeat: bool = False
                 ) -> Tuple[Dict[str, tf.data.Dataset], DatasetInfo]:
    """Batched tf.data datasets of a built dataset, one per split.

    Arguments:
        name: "mosi", "sims", "mosei" or "synthetic-{mosi,sims,mosei}".
        data_dir: data directory (default `$M3SA_DATA_DIR` or `~/tensorflow_datasets`).
        scale, seed: which synthetic build (ignored by the real datasets' paths).
        batch_size: global batch size; with `input_context` each pipeline gets the
            per-replica share.
        shuffle: shuffle "train" (never the other splits), seeded.
        shuffle_seed: seed of the shuffle; None uses `seed`. Each epoch is reshuffled,
            reproducibly.
        deterministic: element order fixed run to run (False lets parallel reads and
            maps reorder for speed).
        bucket_by_length: "train" only: group samples of similar length into batches
            with `tf.data.Dataset.bucket_by_sequence_length` (see `length_key`); the
            other splits keep their order. With `pad_to_max_length=False` a batch is
            then padded only to its longest sequence, so the recurrences skip most of
            the padding.
        pad_to_max_length: pad every batch to the dataset's max lengths (fixed shapes);
            False pads to the longest sequence in the batch.
        keep_ids: add the `id` feature (tf.string).
        input_context: `tf.distribute.InputContext`: this pipeline reads its own shard
            (whole files when there are at least as many files as pipelines, else every
            n-th example) and batches `get_per_replica_batch_size(batch_size)`.
        build_if_missing: build a synthetic dataset that is not built yet.
        splits: which splits to return.
        repeat: repeat "train" indefinitely.

    Returns:
        ({split: tf.data.Dataset}, DatasetInfo).

    Raises:
        DatasetNotBuiltError: the dataset is not built (a real dataset is never built
            implicitly: the message gives the build command).
    """
    import tensorflow_datasets as tfds

    specs.check_name(name)
    data_dir = default_data_dir(data_dir)
    if not specs.is_synthetic(name):
        scale, seed = 1.0, 0
    path = dataset_path(name, data_dir, scale, seed)
    if not is_built(path):
        if build_if_missing and specs.is_synthetic(name):
            build_dataset(name, data_dir, scale=scale, seed=seed)
        else:
            hint = ("; or pass build_if_missing=True" if specs.is_synthetic(name) else "")
            raise DatasetNotBuiltError(
                f"dataset '{name}' is not built in {data_dir} (looked for {path}); build "
                f"it with: {build_command(name, data_dir, scale, seed)}{hint}")
    info = read_info(path)
    for split in splits:
        if split not in specs.SPLITS:
            raise ValueError(f"unknown split {split!r}: expected one of {specs.SPLITS}")
    builder = tfds.builder_from_directory(path)
    shuffle_seed = seed if shuffle_seed is None else shuffle_seed
    per_replica_batch = (input_context.get_per_replica_batch_size(batch_size)
                         if input_context else batch_size)
    out = {}
    for split in splits:
        is_train = split == "train"
        ds = _read_split(builder, split, input_context, shuffle and is_train,
                         shuffle_seed, deterministic)
        ds = ds.map(_to_model_inputs(info, keep_ids), num_parallel_calls=tf.data.AUTOTUNE,
                    deterministic=deterministic)
        if shuffle and is_train:
            ds = ds.shuffle(min(SHUFFLE_BUFFER, max(1, info.split_sizes[split])),
                            seed=shuffle_seed, reshuffle_each_iteration=True)
        if repeat and is_train:
            ds = ds.repeat()
        ds = _batch(ds, info, per_replica_batch, bucket_by_length and is_train,
                    pad_to_max_length)
        ds = ds.map(_add_padding_mask, num_parallel_calls=tf.data.AUTOTUNE,
                    deterministic=deterministic)
        ds = ds.prefetch(tf.data.AUTOTUNE)
        options = tf.data.Options()
        options.deterministic = deterministic
        if input_context is not None:
            # Already sharded here; a strategy must not shard it again.
            options.experimental_distribute.auto_shard_policy = (
                tf.data.experimental.AutoShardPolicy.OFF)
        out[split] = ds.with_options(options)
    return out, info


def shard_policy(num_files: int, num_pipelines: int) -> str:
    """How `num_pipelines` input pipelines split a split stored in `num_files` files.

    "FILE": each pipeline reads only its own files (needs at least one file per
    pipeline); "DATA": every pipeline reads all files and keeps every n-th example,
    disjoint and covering too, at the cost of reading everything; "OFF": one pipeline.
    """
    if num_pipelines <= 1:
        return "OFF"
    return "FILE" if num_files >= num_pipelines else "DATA"


def _read_split(builder, split, input_context, shuffle_files, seed, deterministic):
    del deterministic  # set on the whole pipeline through tf.data.Options
    import tensorflow_datasets as tfds

    num_files = len(builder.info.splits[split].filenames)
    pipelines = input_context.num_input_pipelines if input_context else 1
    by_file = shard_policy(num_files, pipelines) == "FILE"
    read_config = tfds.ReadConfig(
        shuffle_seed=seed if shuffle_files else None,
        input_context=input_context if by_file else None,
        try_autocache=False,
        add_tfds_id=False,
    )
    ds = builder.as_dataset(split=split, shuffle_files=shuffle_files,
                            read_config=read_config)
    if input_context is not None and pipelines > 1 and not by_file:
        ds = ds.shard(pipelines, input_context.input_pipeline_id)
    return ds


def _to_model_inputs(info: DatasetInfo, keep_ids: bool):
    label_keys = ("fused",) + (specs.MODALITIES if info.has_unimodal_labels else ())

    def convert(example):
        features = {}
        for m in specs.MODALITIES:
            features[m] = tf.cast(example[m], tf.float32)
            features[f"{m}_length"] = tf.shape(example[m], out_type=tf.int32)[0]
        features["text_token_ids"] = tf.cast(example["text_token_ids"], tf.int32)
        features["text_segment_ids"] = tf.cast(example["text_segment_ids"], tf.int32)
        if keep_ids:
            features["id"] = example["id"]
        labels = {k: tf.cast(example["labels"][k], tf.float32) for k in label_keys}
        return features, labels

    return convert


def _padded_shapes(info: DatasetInfo, keep_ids: bool, pad_to_max_length: bool, labels):
    def length(m):
        return info.max_lengths[m] if pad_to_max_length else None

    features = {m: tf.TensorShape([length(m), info.feature_dims[m]])
                for m in specs.MODALITIES}
    features.update({f"{m}_length": tf.TensorShape([]) for m in specs.MODALITIES})
    features["text_token_ids"] = tf.TensorShape([length("text")])
    features["text_segment_ids"] = tf.TensorShape([length("text")])
    if keep_ids:
        features["id"] = tf.TensorShape([])
    return features, {k: tf.TensorShape([]) for k in labels}


LENGTH_KEY_RESOLUTION = 1000


def length_key(info: DatasetInfo):
    """(modalities, fn): the bucketing key of an example, `fn(features) -> int32`.

    The cost of a batch is set by its longest recurrences, and the modalities' time loops
    run side by side, so the key is the largest *fraction of its padded length* that any
    of the long modalities fills (those padded to at least half the longest padded
    length: audio and vision on MOSI, audio alone on SIMS), in 1/1000ths. A batch of
    small keys is then short in every long modality at once, whether or not their
    lengths are correlated in the data.
    """
    longest = max(info.max_lengths[m] for m in specs.MODALITIES)
    long_ones = tuple(m for m in specs.MODALITIES if 2 * info.max_lengths[m] >= longest)

    def key(features):
        fractions = [tf.cast(features[f"{m}_length"], tf.float32) / float(info.max_lengths[m])
                     for m in long_ones]
        fraction = tf.reduce_max(tf.stack(fractions))
        return tf.cast(tf.math.ceil(fraction * LENGTH_KEY_RESOLUTION), tf.int32)

    return long_ones, key


def _batch(ds, info, batch_size, bucket_by_length, pad_to_max_length):
    features_spec, labels_spec = ds.element_spec
    shapes = _padded_shapes(info, "id" in features_spec, pad_to_max_length, labels_spec)
    if not bucket_by_length:
        return ds.padded_batch(batch_size, padded_shapes=shapes)
    _, key = length_key(info)
    boundaries = [round(LENGTH_KEY_RESOLUTION * (i + 1) / NUM_BUCKETS) + 1
                  for i in range(NUM_BUCKETS - 1)]
    return ds.bucket_by_sequence_length(
        element_length_func=lambda features, labels: key(features),
        bucket_boundaries=boundaries,
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        padded_shapes=shapes,
        no_padding=False,
    )


def _add_padding_mask(features, labels):
    features = dict(features)
    features["text_padding_mask"] = tf.sequence_mask(
        features["text_length"], maxlen=tf.shape(features["text_token_ids"])[1])
    return features, labels
