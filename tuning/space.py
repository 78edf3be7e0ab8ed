"""The search space of a model of the zoo and its mapping onto `M3SAConfig`.

The space comes from the model the base configuration names (`config.model`). For a
baseline it is its spec's `search_space` (`m3sa_tf.models.registry.ModelSpec`, below,
"Baselines"). For M³SA (`model == "m3sa"`) the space covers what the paper tunes by
hand (Fig. 4: the number of scales n and the channel ratio r; the subtask loss weights)
plus the learning rate and dropout:

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

Baselines: every entry {name: dimension} of `get_spec(config.model).search_space` is one
hyper-parameter of the same name, declared as ("int", lo, hi) → `hp.Int`, ("float", lo,
hi, "linear" | "log") → `hp.Float` (log sampling for "log"), ("choice", [values]) →
`hp.Choice`. Its default is the base configuration's current value (clipped into range;
for a choice, the first value when the current one is not among them). A name among the
model's own hyper-parameters maps back to `model_hparams[name]`, any other to the
training field of that name (learning_rate, weight_decay, batch_size, …). Held fixed:
`model_hparams.NAME` (what `--set model_hparams.NAME=…` sets) or `model_hparams` (all of
them) for the former, the field's name for the latter.

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

from typing import Any, Dict, Iterable, Mapping, Optional, Tuple

from m3sa_tf.config import DEFAULT_MODEL, PAIRS, TRAINING_FIELDS, ConfigError, M3SAConfig
from pipelines.experiments.catalog import FIG4_CHANNEL_RATIOS, FIG4_N_SCALES

# The paper's Fig. 4 grid, shared with the `scales` experiment.
N_SCALES_RANGE = FIG4_N_SCALES
CHANNEL_RATIO_RANGE = FIG4_CHANNEL_RATIOS
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
# The prefix of a baseline's own hyper-parameters among configuration keys (`--set
# model_hparams.rank=4`, and the keys `fixed` names).
MODEL_HPARAMS = "model_hparams"


def _clip(value: float, bounds) -> float:
    lo, hi = bounds
    return min(max(value, lo), hi)


def _pairs_of(modalities: Iterable[str]):
    present = set(modalities)
    return [p for p in PAIRS if set(p.split("_")) <= present]


def is_m3sa(config: M3SAConfig) -> bool:
    """Whether `config` is M³SA's (whose space is n, r, the loss weights, …)."""
    return config.model == DEFAULT_MODEL


def require_m3sa(config: M3SAConfig, what: str) -> None:
    """ConfigError unless `config.model` is M³SA; `what` names the job that needs it."""
    if not is_m3sa(config):
        raise ConfigError(
            f"{what} is M³SA's (n_scales and channel_ratio are its hyper-parameters), and "
            f"the configuration's model is {config.model!r}; use --model m3sa, or search "
            f"{config.model!r}'s own space with `python -m tuning.search --model "
            f"{config.model}`"
        )


def declare(hp, base: M3SAConfig, has_unimodal_labels: bool,
            fixed: Iterable[str] = ()) -> None:
    """Declares the search space of `base.model` on `hp` (a
    `keras_tuner.HyperParameters`).

    Defaults are the base configuration's values (clipped into range), so the first
    value keras-tuner hands out for an unseen hyper-parameter is the configured one.
    """
    if is_m3sa(base):
        _declare_m3sa(hp, base, has_unimodal_labels, fixed)
    else:
        _declare_baseline(hp, base, fixed)


def _declare_m3sa(hp, base: M3SAConfig, has_unimodal_labels: bool,
                  fixed: Iterable[str]) -> None:
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
    """The `M3SAConfig` fields that a trial's hyper-parameter values set (for a
    baseline, `model_hparams` holds all of its hyper-parameters, searched or not).

    keras-tuner's own bookkeeping values (`tuner/epochs`, … of Hyperband) are skipped;
    any other name outside the model's space is an error.
    """
    if not is_m3sa(base):
        return _baseline_overrides(values, base)
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


# ---------------------------------------------------------------------- baselines
def _spec(config: M3SAConfig):
    from m3sa_tf.models.registry import get_spec

    return get_spec(config.model)


def baseline_target(config: M3SAConfig, name: str) -> Tuple[str, str]:
    """(where, configuration key) of a baseline's search-space entry `name`:
    ("model_hparams", "model_hparams.NAME") for one of the model's own
    hyper-parameters, ("training", NAME) for a training field. A name that is neither
    is a ConfigError (a spec bug, named)."""
    if name in config.model_hparams:
        return MODEL_HPARAMS, f"{MODEL_HPARAMS}.{name}"
    if name in TRAINING_FIELDS:
        return "training", name
    raise ConfigError(
        f"search space of model {config.model!r}: {name!r} is neither one of its "
        f"model_hparams {sorted(config.model_hparams)} nor a training field "
        f"{list(TRAINING_FIELDS)}"
    )


def _is_fixed(config: M3SAConfig, name: str, fixed) -> bool:
    where, key = baseline_target(config, name)
    return key in fixed or (where == MODEL_HPARAMS and MODEL_HPARAMS in fixed)


def _current(config: M3SAConfig, name: str) -> Any:
    where, _ = baseline_target(config, name)
    return config.model_hparams[name] if where == MODEL_HPARAMS else getattr(config, name)


def _choice_default(values, current):
    """`current` when it is one of `values` (True is not 1 here), else the first."""
    for value in values:
        if isinstance(value, bool) == isinstance(current, bool) and value == current:
            return value
    return values[0]


def _declare_dimension(hp, name: str, dimension, current) -> None:
    kind = dimension[0] if dimension else None
    if kind == "int":
        _, lo, hi = dimension
        default = lo if current is None else int(round(_clip(current, (lo, hi))))
        hp.Int(name, int(lo), int(hi), default=default)
    elif kind == "float":
        _, lo, hi, sampling = dimension
        default = lo if current is None else float(_clip(current, (lo, hi)))
        hp.Float(name, float(lo), float(hi), sampling=sampling, default=default)
    elif kind == "choice":
        values = list(dimension[1])
        hp.Choice(name, values, default=_choice_default(values, current))
    else:
        raise ConfigError(
            f"search-space entry {name!r}={dimension!r}: expected ('int', lo, hi), "
            "('float', lo, hi, 'linear'|'log') or ('choice', [values])"
        )


def baseline_space(config: M3SAConfig) -> Dict[str, Tuple[Any, ...]]:
    """The spec's search space of `config.model` (a baseline), every name checked."""
    space = dict(_spec(config).search_space)
    for name in space:
        baseline_target(config, name)
    return space


def _declare_baseline(hp, base: M3SAConfig, fixed: Iterable[str]) -> None:
    fixed = set(fixed)
    for name, dimension in baseline_space(base).items():
        if not _is_fixed(base, name, fixed):
            _declare_dimension(hp, name, dimension, _current(base, name))


def _typed(dimension, value):
    if dimension[0] == "int":
        return int(value)
    if dimension[0] == "float":
        return float(value)
    return value


def _baseline_overrides(values: Mapping[str, Any], base: M3SAConfig) -> Dict[str, Any]:
    space = baseline_space(base)
    overrides: Dict[str, Any] = {}
    hparams: Optional[Dict[str, Any]] = None
    for name, value in values.items():
        if name.startswith("tuner/"):
            continue
        if name not in space:
            raise ConfigError(
                f"hyper-parameter {name!r} is not part of model {base.model!r}'s search "
                f"space; expected one of {sorted(space)}"
            )
        where, _ = baseline_target(base, name)
        value = _typed(space[name], value)
        if where == MODEL_HPARAMS:
            if hparams is None:
                hparams = dict(base.model_hparams)
            hparams[name] = value
        else:
            overrides[name] = value
    if hparams is not None:
        overrides[MODEL_HPARAMS] = hparams
    return overrides


def fixed_keys(assignments: Mapping[str, Any]) -> set:
    """The configuration keys an override dict (`parse_assignments` of `--set`) holds
    fixed: its top-level keys, plus `model_hparams.NAME` for each baseline
    hyper-parameter it sets (`--set model_hparams.rank=4` fixes `rank` alone)."""
    keys = set()
    for key, value in assignments.items():
        if key == MODEL_HPARAMS and isinstance(value, Mapping):
            keys.update(f"{MODEL_HPARAMS}.{name}" for name in value)
        else:
            keys.add(key)
    return keys
