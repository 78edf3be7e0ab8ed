"""Missing and corrupted modalities at test time, and modality dropout in training.

The `robustness` experiment (beyond the paper; its §VI names it as future work) scores a
trained model under *conditions* of its test batches:

- ``clean``: the batches as they are;
- ``missing:<m>`` / ``missing:<m1>+<m2>``: the modality (or pair) is absent. Its feature
  sequence is zeroed and its length set to 0; for text the BERT inputs go too
  (``text_token_ids`` and ``text_segment_ids`` zeroed, ``text_padding_mask`` all False),
  so every text path — "features", "bert", "embedding" — sees no text at all;
- ``corrupted:<m>`` / ``corrupted:<m1>+<m2>``: the modality (or pair) is real data, but
  from another clip of the same batch. The features keep their distribution; their
  link to the label is gone.

Corruption uses a seeded *random cyclic permutation* of the batch: the rows are put in a
random order p (a stateless draw keyed on the seed and the batch's index) and clip p[i]
receives the named modalities of clip p[i + 1] (the last receives the first's). A cycle
over the whole batch has no fixed point, so with B >= 2 no clip keeps its own sequence;
a batch of one clip has no other clip to borrow from and is left as it is. With a pair,
both modalities of a clip come from the same donor clip. The sequence, its length and,
for text, the token ids, segment ids and padding mask travel together.

Labels and ids are never changed, and a modality absent from the features (a model
trained on text and audio has no vision to remove) is skipped. Every transformation
keeps the dataset's `element_spec`, so `pipelines.protocol.predict_dataset` reuses one
traced function for every condition.

Modality dropout (``config.modality_dropout``) removes each modality of each training
clip with that probability, as "missing" does, before the model sees it; a clip that
would lose every modality keeps one of them, chosen at random. The drops of an epoch
are a stateless function of the seed and of a per-epoch stream
(`tf.data.Dataset.random(..., rerandomize_each_iteration=True)`), so each epoch drops
differently and the same seed drops the same way — given TensorFlow's global seed,
exactly as tf.data's shuffle (the training driver clears it before building the data).

Example:

>>> [c.name for c in conditions(("text", "audio"))]
['clean', 'missing:text', 'missing:audio', 'missing:text+audio', 'corrupted:text', 'corrupted:audio', 'corrupted:text+audio']
>>> parse_condition("missing:vision+text")
Condition(name='missing:text+vision', kind='missing', modalities=('text', 'vision'))
>>> import numpy as np
>>> features = {"audio": np.ones((3, 2, 1), "float32"),
...             "audio_length": np.array([2, 1, 2], "int32")}
>>> missing = apply_condition(features, parse_condition("missing:audio"))
>>> missing["audio_length"].numpy().tolist(), float(missing["audio"].numpy().sum())
([0, 0, 0], 0.0)
>>> corrupted = apply_condition(features, parse_condition("corrupted:audio"), seed=1)
>>> sorted(corrupted["audio_length"].numpy().tolist())
[1, 2, 2]
>>> evaluate_conditions(model, test_set, "mosi", ("text", "audio", "vision"),
...                     conditions())                                  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from msa_core.constants import MODALITIES

KINDS: Tuple[str, ...] = ("clean", "missing", "corrupted")

# The feature keys that carry each modality (interfaces §2); the BERT inputs are text.
_MODALITY_KEYS: Dict[str, Tuple[str, ...]] = {
    "text": ("text", "text_length", "text_token_ids", "text_segment_ids",
             "text_padding_mask"),
    "audio": ("audio", "audio_length"),
    "vision": ("vision", "vision_length"),
}


# ---------------------------------------------------------------------- conditions
@dataclasses.dataclass(frozen=True)
class Condition:
    """One test-time condition: `kind` applied to `modalities` (empty for "clean").
    `name` is its canonical spelling, e.g. "missing:audio+vision"."""

    name: str
    kind: str
    modalities: Tuple[str, ...] = ()


def _canonical(modalities: Sequence[str]) -> Tuple[str, ...]:
    return tuple(sorted(modalities, key=MODALITIES.index))


def _make(kind: str, modalities: Sequence[str]) -> Condition:
    modalities = _canonical(modalities)
    name = kind if kind == "clean" else f"{kind}:{'+'.join(modalities)}"
    return Condition(name=name, kind=kind, modalities=modalities)


def conditions(modalities: Sequence[str] = MODALITIES) -> List[Condition]:
    """"clean", then "missing:" each modality and each pair, then "corrupted:" likewise
    (modalities and pairs in MODALITIES order)."""
    modalities = _canonical(modalities)
    unknown = [m for m in modalities if m not in MODALITIES]
    if unknown or len(set(modalities)) != len(modalities):
        raise ValueError(f"modalities must be distinct names among {MODALITIES}, "
                         f"got {list(modalities)}")
    subsets = [(m,) for m in modalities] + list(itertools.combinations(modalities, 2))
    return [_make("clean", ())] + [
        _make(kind, subset) for kind in ("missing", "corrupted") for subset in subsets
    ]


def parse_condition(name: str) -> Condition:
    """The `Condition` named `name` ("clean", "missing:audio", "corrupted:text+vision";
    a pair may be written in either order). Raises ValueError on anything else."""
    expected = ("expected 'clean', 'missing:<m>[+<m2>]' or 'corrupted:<m>[+<m2>]' "
                f"with modalities among {', '.join(MODALITIES)}")
    if not isinstance(name, str):
        raise ValueError(f"unknown condition {name!r}: {expected}")
    if name.strip() == "clean":
        return _make("clean", ())
    kind, sep, rest = name.strip().partition(":")
    modalities = tuple(m.strip() for m in rest.split("+")) if sep else ()
    if (kind not in ("missing", "corrupted") or not modalities or len(modalities) > 2
            or len(set(modalities)) != len(modalities)
            or any(m not in MODALITIES for m in modalities)):
        raise ValueError(f"unknown condition {name!r}: {expected}")
    return _make(kind, modalities)


def _as_condition(condition) -> Condition:
    return condition if isinstance(condition, Condition) else parse_condition(condition)


# ---------------------------------------------------------------------- tensor ops
def _stateless_key(seed) -> tf.Tensor:
    """A [2] int64 stateless-RNG key from an int or from a key already."""
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
    if seed.shape.rank == 0:
        seed = tf.stack([seed, tf.constant(0, tf.int64)])
    return seed


def _batch_size(features: Mapping[str, Any], modalities: Sequence[str]) -> tf.Tensor:
    for m in modalities:
        for key in _MODALITY_KEYS[m]:
            if key in features:
                return tf.shape(features[key], out_type=tf.int32)[0]
    raise ValueError("no feature of the named modalities to take the batch size from")


def _remove(features: Dict[str, Any], modality: str, drop) -> None:
    """Removes `modality` (in place on the dict) from the rows where `drop` [B] is
    True: sequences, ids and lengths become 0, the padding mask False."""
    for key in _MODALITY_KEYS[modality]:
        if key not in features:
            continue
        value = tf.convert_to_tensor(features[key])
        rank = value.shape.rank
        keep = tf.reshape(tf.logical_not(drop), [-1] + [1] * (rank - 1))
        if value.dtype == tf.bool:
            features[key] = tf.logical_and(value, keep)
        else:
            features[key] = tf.where(keep, value, tf.zeros_like(value))


def derangement(batch_size, seed) -> tf.Tensor:
    """Donor indices [B] of a random cyclic permutation of range(B) (module docstring):
    row i takes its data from row result[i] != i whenever B >= 2. `seed`: an int or a
    [2] stateless key."""
    key = _stateless_key(seed)
    order = tf.argsort(tf.random.stateless_uniform([batch_size], key))
    successor = tf.roll(order, shift=-1, axis=0)
    return tf.gather(successor, tf.math.invert_permutation(order))


def apply_condition(features: Mapping[str, Any], condition, *, seed=0) -> Dict[str, Any]:
    """`features` (one batch, interfaces §2) under `condition` (a `Condition` or its
    name). Pure TensorFlow, so it runs eagerly and inside `tf.data.Dataset.map`.

    Returns a new dict; only the named modalities' keys change (module docstring), and
    modalities absent from `features` are skipped. `seed` (an int or a [2] stateless
    key) fixes the donor clips of "corrupted"; "clean" and "missing" ignore it.
    """
    condition = _as_condition(condition)
    out = dict(features)
    present = [m for m in condition.modalities
               if any(k in features for k in _MODALITY_KEYS[m])]
    if condition.kind == "clean" or not present:
        return out
    batch = _batch_size(features, present)
    if condition.kind == "missing":
        drop = tf.ones([batch], tf.bool)
        for m in present:
            _remove(out, m, drop)
        return out
    donors = derangement(batch, seed)
    for m in present:
        for key in _MODALITY_KEYS[m]:
            if key in features:
                out[key] = tf.gather(features[key], donors, axis=0)
    return out


def perturb_dataset(dataset: tf.data.Dataset, condition, *, seed: int = 0) -> tf.data.Dataset:
    """`dataset` of batched (features, labels) with `apply_condition` on each batch;
    batch i of a corrupted condition uses the stateless key (seed, i). The element_spec
    is unchanged."""
    condition = _as_condition(condition)
    if condition.kind == "clean":
        return dataset

    def perturb(index, element):
        features, labels = element
        key = tf.stack([tf.constant(seed, tf.int64), index])
        return apply_condition(features, condition, seed=key), labels

    perturbed = dataset.enumerate().map(perturb)
    if perturbed.element_spec != dataset.element_spec:  # pragma: no cover - a bug guard
        raise AssertionError(f"{condition.name} changed the element_spec: "
                             f"{perturbed.element_spec} != {dataset.element_spec}")
    return perturbed


# ---------------------------------------------------------------------- evaluation
def evaluate_conditions(
    model,
    dataset: tf.data.Dataset,
    family: str,
    modalities: Sequence[str],
    conditions: Sequence[Any],
    *,
    seed: int = 0,
    predictions: Optional[Dict[str, Dict[str, np.ndarray]]] = None,
) -> Dict[str, Dict[str, Any]]:
    """Metrics of `model` on `dataset` (batched, keep_ids, not shuffled) under each
    condition: {condition name: `pipelines.protocol.evaluate_predictions` dict}, in the
    order given. `modalities` names the model's unimodal heads to score.

    Pass a dict as `predictions` to receive {condition name: the arrays of
    `pipelines.protocol.predict_dataset`} (ids, labels, outputs), e.g. for
    `pipelines.run_dir.write_predictions_csv`. All conditions share the model's one
    traced inference function.
    """
    # Imported here: pipelines.protocol pulls in the whole model stack.
    from pipelines.protocol import evaluate_predictions, predict_dataset

    results: Dict[str, Dict[str, Any]] = {}
    for condition in conditions:
        condition = _as_condition(condition)
        predicted = predict_dataset(model, perturb_dataset(dataset, condition, seed=seed))
        results[condition.name] = evaluate_predictions(predicted, family, tuple(modalities))
        if predictions is not None:
            predictions[condition.name] = predicted
    return results


# ---------------------------------------------------------------------- training
def modality_drop_mask(batch_size, num_modalities: int, rate: float, seed) -> tf.Tensor:
    """Bool [B, M]: True where a modality of a clip is dropped. Each entry is True with
    probability `rate`; a row that came out all True gets one entry (uniformly chosen)
    set back to False, so the expected drop rate is rate - rate**M / M."""
    key = _stateless_key(seed)
    draw_key, keep_key = tf.unstack(
        tf.random.experimental.stateless_split(key, num=2), axis=0)
    drop = tf.random.stateless_uniform([batch_size, num_modalities], draw_key) < rate
    rescued = tf.random.stateless_uniform(
        [batch_size], keep_key, minval=0, maxval=num_modalities, dtype=tf.int32)
    rescue = tf.logical_and(
        tf.reduce_all(drop, axis=1, keepdims=True),
        tf.one_hot(rescued, num_modalities, on_value=True, off_value=False, dtype=tf.bool))
    return tf.logical_and(drop, tf.logical_not(rescue))


def apply_modality_dropout(
    dataset: tf.data.Dataset, rate: float, modalities: Sequence[str], *, seed: int
) -> tf.data.Dataset:
    """The batched training `dataset` with each of `modalities` (those present in its
    features) removed per clip with probability `rate`, never all of a clip's
    (module docstring). `rate` 0 returns `dataset` itself. Labels are untouched and the
    element_spec is unchanged.

    Batch i of an epoch uses the stateless key (seed, r_i), r_i drawn from
    `tf.data.Dataset.random(seed, rerandomize_each_iteration=True)`: new drops every
    epoch, the same ones for the same seed.
    """
    rate = float(rate)
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"modality dropout rate {rate!r} must be in [0, 1)")
    if rate == 0.0:
        return dataset
    features_spec = dataset.element_spec[0]
    present = [m for m in _canonical(modalities)
               if any(k in features_spec for k in _MODALITY_KEYS[m])]
    if not present:
        return dataset
    stream = tf.data.Dataset.random(seed=int(seed), rerandomize_each_iteration=True)

    def drop(element, draw):
        features, labels = element
        features = dict(features)
        key = tf.stack([tf.constant(int(seed), tf.int64), draw])
        mask = modality_drop_mask(_batch_size(features, present), len(present), rate, key)
        for i, m in enumerate(present):
            _remove(features, m, mask[:, i])
        return features, labels

    return tf.data.Dataset.zip(dataset, stream).map(drop)
