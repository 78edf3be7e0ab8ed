"""Keras callback that scores a dataset with the full MSA metric set after every epoch."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping

import keras
import numpy as np

from msa_core.metrics import MetricInputError, compute_metrics, metric_names

NONFINITE_POLICIES = ("raise", "nan")


class MSAMetricsCallback(keras.callbacks.Callback):
    """Adds ``compute_metrics(family, labels, predictions)`` on a dataset to the epoch logs.

    At each epoch end the model predicts every batch of ``dataset`` (inference mode), the
    labels and predictions of ``output_key`` are gathered, and the metrics are written into
    ``logs`` as ``prefix + name`` (e.g. ``val_Has0_acc_2``), so History, CSVLogger,
    TensorBoard, the progress bar, EarlyStopping and ModelCheckpoint see them. Keras hands
    the same ``logs`` dict to the callbacks in list order, so place this callback *before*
    any callback that should read its values (History and the progress bar are appended by
    Keras after the user's callbacks and always see them).

    Args:
        dataset: a ``tf.data.Dataset`` (or any re-iterable) of ``(features, labels)``
            batches as in docs/interfaces.md §2; ``labels`` a dict holding ``output_key``
            (or a tensor). Read once per epoch in one pass, so shuffling cannot misalign
            labels and predictions.
        family: "mosi" (MOSI and MOSEI) or "sims"; ``DatasetInfo.family``.
        prefix: prepended to every metric name in the logs.
        output_key: the model output (and label) to score; "fused" by default.
        on_nonfinite: "raise" (default) stops with the error naming the NaN/inf
            predictions; "nan" logs every metric as NaN with a warning and lets training
            go on (e.g. when early stopping should keep the last finite epoch).

    Example:
        >>> callback = MSAMetricsCallback(datasets["valid"], info.family)  # doctest: +SKIP
        >>> model.fit(datasets["train"], epochs=3, callbacks=[callback])  # doctest: +SKIP
        >>> model.history.history["val_Has0_acc_2"]  # doctest: +SKIP
    """

    def __init__(
        self,
        dataset: Iterable,
        family: str,
        prefix: str = "val_",
        output_key: str = "fused",
        on_nonfinite: str = "raise",
    ):
        super().__init__()
        self.metric_names = metric_names(family)  # validates family early
        if on_nonfinite not in NONFINITE_POLICIES:
            raise ValueError(
                f"unknown on_nonfinite {on_nonfinite!r}; expected one of {NONFINITE_POLICIES}"
            )
        self.dataset = dataset
        self.family = family
        self.prefix = prefix
        self.output_key = output_key
        self.on_nonfinite = on_nonfinite

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        try:
            results = self.evaluate()
        except MetricInputError as error:
            if self.on_nonfinite != "nan" or "non-finite" not in str(error):
                raise
            warnings.warn(f"epoch {epoch}: MSA metrics set to NaN: {error}", stacklevel=2)
            results = {name: math.nan for name in self.metric_names}
        for name, value in results.items():
            logs[self.prefix + name] = value

    def evaluate(self, model: keras.Model | None = None) -> dict[str, float]:
        """Metrics of ``model`` (default: the model being trained) on the dataset, no prefix."""
        labels, predictions = self.collect(model)
        return compute_metrics(self.family, labels, predictions)

    def collect(self, model: keras.Model | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Labels and predictions of ``output_key`` over the dataset, each as 1-D arrays."""
        model = model if model is not None else self.model
        if model is None:
            raise ValueError("MSAMetricsCallback has no model: pass one or use it inside fit")
        label_parts, prediction_parts = [], []
        for batch in self.dataset:
            if not isinstance(batch, (tuple, list)) or len(batch) < 2:
                raise ValueError(
                    "MSAMetricsCallback expects dataset elements (features, labels); "
                    f"got {type(batch).__name__}"
                )
            features, labels = batch[0], batch[1]
            outputs = model.predict_on_batch(features)
            label_parts.append(self._select(labels, "labels"))
            prediction_parts.append(self._select(outputs, "model outputs"))
        if not label_parts:
            raise ValueError("MSAMetricsCallback: the dataset yielded no batches to score")
        return np.concatenate(label_parts), np.concatenate(prediction_parts)

    def _select(self, structure, what: str) -> np.ndarray:
        if isinstance(structure, Mapping):
            if self.output_key not in structure:
                raise KeyError(
                    f"{what} have no {self.output_key!r}; available keys: {sorted(structure)}"
                )
            structure = structure[self.output_key]
        return np.asarray(structure).reshape(-1)
