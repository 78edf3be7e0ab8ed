"""The training protocol's pieces (SPEC §3), shared by the driver, the tuner, the
experiment runner and the benchmarks: optimizer and compilation, data loading with the
run's seed, the callbacks of one fit, prediction over a split and its metrics.

They work for every model of the zoo (`config.model`); `pipelines.training` strings them
into one run.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf
import keras

import tfrecords
from tfrecords import specs as tfrecords_specs
from m3sa_tf import ConfigError, M3SAConfig
from m3sa_tf import metrics as msa_metrics
from m3sa_tf.losses import SubtaskWeightScheduler
from m3sa_tf.models import SERVED_OUTPUTS, build_model
from m3sa_tf.optimizers import FusedAdamW
from msa_core.io import default_data_dir, read_json, write_json_atomic
from pipelines import run_dir as rundir
from pipelines.checkpointing import ResumableEarlyStopping
from pipelines.word_vectors import apply_word_vectors


def make_optimizer(config: M3SAConfig) -> keras.optimizers.Optimizer:
    """AdamW with the config's learning rate, weight decay and gradient-norm clipping
    (`FusedAdamW`: Keras' AdamW, each variable updated by TensorFlow's fused kernel)."""
    kwargs = {}
    if config.gradient_clip_norm is not None:
        kwargs["clipnorm"] = float(config.gradient_clip_norm)
    return FusedAdamW(
        learning_rate=float(config.learning_rate),
        weight_decay=float(config.weight_decay),
        **kwargs,
    )


def compile_model(model: keras.Model, config: M3SAConfig) -> keras.Model:
    """Compiles `model` with `make_optimizer(config)`; the loss is the model's own
    (`M3SAModel.compute_loss`, eq. 25 or eqs 26–27). Returns the model.

    The optimizer's slots are created here, for a built model: a `tf.function` whose
    first trace creates variables is traced a second time, and Keras' training function
    otherwise creates them on its first step (that doubled the time to first step)."""
    model.compile(optimizer=make_optimizer(config))
    if model.built:
        model.optimizer.build(model.trainable_variables)
    return model


def resolve_vocab_size(config: M3SAConfig, info) -> M3SAConfig:
    """`config` with `vocab_size` filled in from the dataset (the id space of its token
    ids, `tfrecords.specs`) when the "embedding" text path leaves it None; `config`
    itself otherwise. The model records the resolved size, so a saved model rebuilds
    the same table without the data."""
    if config.text_path != "embedding" or config.vocab_size is not None:
        return config
    return config.replace(vocab_size=int(tfrecords_specs.spec_for(info.name).vocab_size))


def build_compiled_model(
    config: M3SAConfig,
    info,
    *,
    key_modality: Optional[str] = None,
    strategy: Optional[tf.distribute.Strategy] = None,
) -> keras.Model:
    """Builds (seeded with `config.seed`) and compiles the model under `strategy`.

    On the "embedding" text path `vocab_size` None becomes the dataset's
    (`resolve_vocab_size`), and with `config.word_vectors` the table starts from those
    vectors (`pipelines.word_vectors.apply_word_vectors`); the fraction of its rows
    they cover is then `model.word_vectors_coverage` (None without word vectors)."""
    strategy = strategy or tf.distribute.get_strategy()
    keras.utils.set_random_seed(config.seed)
    config = resolve_vocab_size(config, info)
    with strategy.scope():
        model = build_model(
            config,
            dict(info.feature_dims),
            bool(info.has_unimodal_labels),
            key_modality=key_modality,
        )
        compile_model(model, config)
        model.word_vectors_coverage = (
            apply_word_vectors(model, config) if config.word_vectors else None)
    return model


def load_data(
    config: M3SAConfig,
    data_dir: Optional[str],
    *,
    scale: float = 1.0,
    data_seed: int = 0,
    keep_ids: bool = False,
    shuffle: bool = True,
    build_if_missing: bool = True,
    splits: Sequence[str] = ("train", "valid", "test"),
):
    """`tfrecords.load_dataset` with the config's global batch size, seed and batching
    (`M3SAConfig.batching`: bucketing applies to "train" only).

    The training order then depends on `config.seed` alone, whatever ran before in this
    process: tf.data's shuffle mixes its own seed with TensorFlow's global seed, which
    an earlier run (the previous entry of `--seeds`, an earlier tuner trial) left set by
    seeding its model. The global seed is cleared here, as a fresh process has it, so
    the same seed trains to the same numbers alone, in a list of seeds or in a search;
    every model build sets it again (`build_compiled_model`).
    """
    tf.random.set_seed(None)
    return tfrecords.load_dataset(
        config.dataset,
        data_dir,
        scale=scale,
        seed=data_seed,
        batch_size=config.batch_size,
        shuffle=shuffle,
        shuffle_seed=config.seed,
        keep_ids=keep_ids,
        bucket_by_length=config.batching == "bucketed",
        pad_to_max_length=config.batching == "max_length",
        build_if_missing=build_if_missing,
        splits=tuple(splits),
    )


def make_callbacks(
    config: M3SAConfig,
    *,
    model: Optional[keras.Model] = None,
    checkpoint: Optional[ResumableEarlyStopping] = None,
    tensorboard_dir: Optional[str] = None,
    extra_callbacks: Iterable[keras.callbacks.Callback] = (),
) -> List[keras.callbacks.Callback]:
    """The callbacks of one fit: the subtask-weight schedule (for a `model` with an
    `M3SALoss`, or any model when none is given), the checkpoint/early stopping
    callback, TensorBoard, then `extra_callbacks` (which therefore see an epoch only
    after it is checkpointed)."""
    callbacks: List[keras.callbacks.Callback] = []
    if model is None or hasattr(model, "m3sa_loss"):
        callbacks.append(SubtaskWeightScheduler(config))
    if checkpoint is not None:
        callbacks.append(checkpoint)
    if tensorboard_dir is not None:
        callbacks.append(
            keras.callbacks.TensorBoard(
                log_dir=tensorboard_dir,
                histogram_freq=0,
                write_graph=False,
                update_freq="epoch",
                profile_batch=0,
            )
        )
    callbacks.extend(extra_callbacks)
    return callbacks


def _forward_function(model: keras.Model):
    """One traced inference function per model, with the model's dynamic input
    signature: every split and batch shape reuses it instead of retracing."""
    forward = getattr(model, "_m3sa_forward", None)
    if forward is None:
        signature = model.input_signature()

        @tf.function(input_signature=[signature])
        def forward(features):
            return model(features, training=False)

        model._m3sa_forward = forward
    return forward


def predict_dataset(model: keras.Model, dataset: tf.data.Dataset) -> Dict[str, np.ndarray]:
    """Runs `model` over `dataset` (no strategy, no shuffling of its own) and returns
    numpy arrays: `id` (when the dataset has ids), `label_<key>` per label and one array
    per served output (`fused` and the unimodal heads the model has).

    A plain loop rather than `model.predict`: every worker of a multi-worker run
    computes the same full predictions with no collective op, in dataset order.
    """
    forward = _forward_function(model)
    signature = model.input_signature()
    collected: Dict[str, List[np.ndarray]] = {}
    for features, labels in dataset:
        ids = features.get("id")
        inputs = {k: tf.cast(features[k], spec.dtype) for k, spec in signature.items()}
        outputs = forward(inputs)
        if ids is not None:
            collected.setdefault("id", []).append(ids.numpy())
        for key, value in labels.items():
            collected.setdefault(f"label_{key}", []).append(value.numpy())
        for key in SERVED_OUTPUTS:
            if key in outputs:
                collected.setdefault(key, []).append(np.asarray(outputs[key]).reshape(-1))
    result = {key: np.concatenate(parts) for key, parts in collected.items()}
    if "id" in result:
        result["id"] = np.array([v.decode("utf-8") for v in result["id"]], dtype=object)
    return result


def evaluate_predictions(
    predictions: Mapping[str, np.ndarray], family: str, modalities: Sequence[str]
) -> Dict[str, Any]:
    """The dataset's metrics of the fused predictions, plus each unimodal head's
    `unimodal_accuracy` under "unimodal_accuracy"."""
    metrics: Dict[str, Any] = dict(
        msa_metrics.compute_metrics(family, predictions["label_fused"], predictions["fused"])
    )
    metrics["unimodal_accuracy"] = unimodal_scores(predictions, family, modalities)
    return metrics


def unimodal_scores(
    predictions: Mapping[str, np.ndarray], family: str, modalities: Sequence[str]
) -> Dict[str, float]:
    """`unimodal_accuracy` of each unimodal head, against the modality's own label when
    the data has one (SIMS) and against the fused label otherwise (MOSI/MOSEI)."""
    scores = {}
    for modality in modalities:
        if modality not in predictions:
            continue
        truth = predictions.get(f"label_{modality}", predictions["label_fused"])
        scores[modality] = float(
            msa_metrics.unimodal_accuracy(family, truth, predictions[modality])
        )
    return scores


def evaluate_run(
    run_dir: str, split: str = "test", data_dir: Optional[str] = None, *, write: bool = True
) -> Dict[str, Any]:
    """Re-evaluates a finished run directory's model on `split` ("train", "valid",
    "test"): loads RUN/model.keras and RUN/dataset.json, predicts the split, and (when
    `write`) writes RUN/evaluation_<split>.json and RUN/predictions/<split>.csv."""
    if split not in ("train", "valid", "test"):
        raise ConfigError(f"split {split!r} is not one of ['train', 'valid', 'test']")
    names = (rundir.CONFIG_FILE, rundir.DATASET_FILE, rundir.MODEL_FILE)
    paths = {name: os.path.join(run_dir, name) for name in names}
    missing = [p for p in paths.values() if not os.path.exists(p)]
    if missing:
        raise rundir.RunDirError(
            f"{run_dir} is not a finished run directory: missing {missing}"
        )
    config = M3SAConfig.from_dict(read_json(paths[rundir.CONFIG_FILE], error=rundir.RunDirError))
    info = tfrecords.DatasetInfo.from_dict(
        read_json(paths[rundir.DATASET_FILE], error=rundir.RunDirError))
    model = keras.models.load_model(paths[rundir.MODEL_FILE])
    datasets, _ = load_data(
        config, data_dir or default_data_dir(), scale=info.scale, data_seed=info.seed,
        keep_ids=True, shuffle=False, build_if_missing=False, splits=(split,),
    )
    predictions = predict_dataset(model, datasets[split])
    result = evaluate_predictions(predictions, info.family, tuple(config.modalities))
    if write:
        rundir.write_predictions_csv(
            os.path.join(run_dir, rundir.PREDICTIONS_DIR, f"{split}.csv"), predictions)
        write_json_atomic(os.path.join(run_dir, f"evaluation_{split}.json"), result)
    return result
