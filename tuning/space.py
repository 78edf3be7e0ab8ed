"""The search space of M³SA's hyper-parameters and its mapping onto `M3SAConfig`.

The space covers what the paper tunes by hand (Fig. 4: the number of scales n and the
channel ratio r; the subtask loss weights) plus the learning rate and dropout:

=========================  ===========================================================
hyper-parameter            range (keras-tuner type)
=========================  ===========================================================
n_scales                   2 … 7 (Int)
channel_ratio              1 … 7 (Int)
learning_rate              1e-5 … 1e-2 (Float, log sampling)
dropout                    0.0 … 0.6 (Float)
fused_weight               0.5 … 2.0 (Float)                     ∂_f of eqs 25 and 27
unimodal_weight_{m}        0.0 … 2.0 (Float), multitask task     ∂_T, ∂_A, ∂_V of eq. 25
contrastive_weight_{pair}  1e-3 … 1.0 (Float, log), contrastive  ∂_αβ of eq. 27
key_modality               Choice of the model's modalities, only when the base
                           configuration says "auto" and fusion is "key"
=========================  ===========================================================

Only the weights of the task the data resolves to are searched (unimodal weights for data
with unimodal labels, contrastive weights otherwise; none for "fused_only"), and only for
the modalities (and pairs of them) the model sees. A configuration key named in `fixed`
(the CLI's `--set` keys) is held at its base value and not searched.

Example:

>>> import keras_tuner
>>> from m3sa_tf.config import M3SAConfig
>>> base = M3SAConfig.for_dataset("synthetic-mosi", key_modality="text")
>>> hp = keras_tuner.HyperParameters()
>>> config = config_from_hyperparameters(hp, base, has_unimodal_labels=False)
>>> config.n_scales == base.n_scales    # the first call returns the defaults
True
>>> sorted(hp.values)[:3]
['channel_ratio', 'contrastive_weight_audio_vision', 'contrastive_weight_text_audio']
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, Mapping

from m3sa_tf.config import PAIRS, ConfigError, M3SAConfig

N_SCALES_RANGE = (2, 7)
CHANNEL_RATIO_RANGE = (1, 7)
LEARNING_RATE_RANGE = (1e-5, 1e-2)
DROPOUT_RANGE = (0.0, 0.6)
FUSED_WEIGHT_RANGE = (0.5, 2.0)
UNIMODAL_WEIGHT_RANGE = (0.0, 2.0)
CONTRASTIVE_WEIGHT_RANGE = (1e-3, 1.0)

UNIMODAL_PREFIX = "unimodal_weight_"
CONTRASTIVE_PREFIX = "contrastive_weight_"
# Hyper-parameters that are configuration fields of the same name.
_DIRECT_FIELDS = ("n_scales", "channel_ratio", "learning_rate", "dropout", "fused_weight",
                  "key_modality")
_INT_FIELDS = ("n_scales", "channel_ratio")


def _clip(value: float, bounds) -> float:
    lo, hi = bounds
    return min(max(value, lo), hi)


def _pairs_of(modalities: Iterable[str]):
    present = set(modalities)
    return [p for p in PAIRS if set(p.split("_")) <= present]


def declare(hp, base: M3SAConfig, has_unimodal_labels: bool,
            fixed: Iterable[str] = ()) -> None:
    """Declares the search space on `hp` (a `keras_tuner.HyperParameters`).

    Defaults are the base configuration's values (clipped into range), so the first
    value keras-tuner hands out for an unseen hyper-parameter is the configured one.
    """
    fixed = set(fixed)
    task = base.resolve_task(has_unimodal_labels)

    def searched(field: str) -> bool:
        return field not in fixed

    if searched("n_scales"):
        hp.Int("n_scales", *N_SCALES_RANGE, default=int(_clip(base.n_scales, N_SCALES_RANGE)))
    if searched("channel_ratio"):
        hp.Int("channel_ratio", *CHANNEL_RATIO_RANGE,
               default=int(_clip(base.channel_ratio, CHANNEL_RATIO_RANGE)))
    if searched("learning_rate"):
        hp.Float("learning_rate", *LEARNING_RATE_RANGE, sampling="log",
                 default=_clip(base.learning_rate, LEARNING_RATE_RANGE))
    if searched("dropout"):
        hp.Float("dropout", *DROPOUT_RANGE, default=_clip(base.dropout, DROPOUT_RANGE))
    if searched("fused_weight"):
        hp.Float("fused_weight", *FUSED_WEIGHT_RANGE,
                 default=_clip(base.fused_weight, FUSED_WEIGHT_RANGE))
    if task == "multitask" and searched("unimodal_weights"):
        for modality in base.modalities:
            hp.Float(UNIMODAL_PREFIX + modality, *UNIMODAL_WEIGHT_RANGE,
                     default=_clip(base.unimodal_weights[modality], UNIMODAL_WEIGHT_RANGE))
    if task == "contrastive" and searched("contrastive_weights"):
        for pair in _pairs_of(base.modalities):
            hp.Float(CONTRASTIVE_PREFIX + pair, *CONTRASTIVE_WEIGHT_RANGE, sampling="log",
                     default=_clip(base.contrastive_weights[pair], CONTRASTIVE_WEIGHT_RANGE))
    # An "auto" key is chosen by the search itself on the same validation objective, so
    # every trial is one fixed architecture (see docs/tuning.md, "Key modality").
    if base.key_modality == "auto" and base.fusion == "key" and searched("key_modality"):
        choices = list(base.modalities)
        default = "text" if "text" in choices else choices[0]
        hp.Choice("key_modality", choices, default=default)


def overrides_from_values(values: Mapping[str, Any], base: M3SAConfig) -> Dict[str, Any]:
    """The `M3SAConfig` fields that a trial's hyper-parameter values set.

    keras-tuner's own bookkeeping values (`tuner/epochs`, … of Hyperband) are skipped;
    any other unknown name is an error.
    """
    overrides: Dict[str, Any] = {}
    unimodal = dict(base.unimodal_weights)
    contrastive = dict(base.contrastive_weights)
    for name, value in values.items():
        if name.startswith("tuner/"):
            continue
        if name.startswith(UNIMODAL_PREFIX):
            unimodal[name[len(UNIMODAL_PREFIX):]] = float(value)
            overrides["unimodal_weights"] = unimodal
        elif name.startswith(CONTRASTIVE_PREFIX):
            contrastive[name[len(CONTRASTIVE_PREFIX):]] = float(value)
            overrides["contrastive_weights"] = contrastive
        elif name in _INT_FIELDS:
            overrides[name] = int(value)
        elif name == "key_modality":
            overrides[name] = str(value)
        elif name in _DIRECT_FIELDS:
            overrides[name] = float(value)
        else:
            raise ConfigError(
                f"hyper-parameter {name!r} is not part of the M3SA search space; expected "
                f"one of {list(_DIRECT_FIELDS)} or {UNIMODAL_PREFIX}<modality> / "
                f"{CONTRASTIVE_PREFIX}<pair>"
            )
    return overrides


def config_from_values(values: Mapping[str, Any], base: M3SAConfig) -> M3SAConfig:
    """`base` with a trial's hyper-parameter values applied (validated)."""
    return base.replace(**overrides_from_values(values, base))


def config_from_hyperparameters(hp, base: M3SAConfig, has_unimodal_labels: bool,
                                fixed: Iterable[str] = ()) -> M3SAConfig:
    """Declares the space on `hp` and returns the configuration of its current values."""
    declare(hp, base, has_unimodal_labels, fixed)
    return config_from_values(hp.values, base)
