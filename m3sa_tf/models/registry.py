"""The model zoo: every model `pipelines.train --model NAME` can train, by name.

Each model module declares a `SPEC` (`ModelSpec`): its class, its own hyper-parameters
and their defaults per dataset family, the training settings it defaults to, whether it
needs unimodal labels, and the space `tuning.search --model NAME` searches. M³SA's spec
lives in `m3sa_tf/models/m3sa_model.py`; the baselines' in
`m3sa_tf/models/baselines/<name>.py`, found by scanning that package, so a new baseline
is one new file.

Example:

>>> "m3sa" in model_names()
True
>>> get_spec("m3sa").title
'M³SA'
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from m3sa_tf.config import ConfigError

# The order tables list the models in: M³SA, then the paper's Tables II/III, then the rest.
_TABLE_ORDER = ("m3sa", "ef_lstm", "lf_dnn", "tfn", "lmf", "mult", "misa", "mlf_dnn",
                "mtfn", "tlf_dnn", "self_mm")

# A search-space entry: ("int", low, high), ("float", low, high, "linear" | "log"), or
# ("choice", [values]).
SearchDimension = Tuple[Any, ...]


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What the pipeline needs to know about one model of the zoo.

    Attributes:
        name: the CLI name (`--model NAME`).
        title: the name tables and docs print (the paper's / MMSA's).
        model_class: the `MultimodalModel` subclass, built as
            `model_class(config, feature_dims, has_unimodal_labels)`.
        hparams: {family: {hyper-parameter: default}} of the model's own
            hyper-parameters (`M3SAConfig.model_hparams`); family "mosi" (MOSI, MOSEI)
            or "sims".
        training: {family: {M3SAConfig training field: default}} (learning rate, batch
            size, weight decay, patience, …), from MMSA's configuration.
        needs_unimodal_labels: the model's loss needs y_T, y_A, y_V (MLF-DNN, MTFN).
        search_space: {name: dimension}, names among `hparams` or training fields.
        config_fields: M3SAConfig fields beyond `model_hparams` and the training fields
            that the model reads (e.g. the contrastive loss's weights), reported with
            its hyper-parameters.
        reference: one line on where the architecture comes from.
    """

    name: str
    title: str
    model_class: Callable[..., Any]
    hparams: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    training: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    needs_unimodal_labels: bool = False
    search_space: Mapping[str, SearchDimension] = dataclasses.field(default_factory=dict)
    config_fields: Tuple[str, ...] = ()
    reference: str = ""

    def default_hparams(self, family: str) -> Dict[str, Any]:
        return dict(self.hparams.get(family, {}))

    def training_defaults(self, family: str) -> Dict[str, Any]:
        return dict(self.training.get(family, {}))

    def resolve_hparams(self, family: str, values: Mapping[str, Any]) -> Dict[str, Any]:
        """`values` over the family's defaults; an unknown name, or a value whose type
        does not fit the default's, is a ConfigError naming what is accepted."""
        defaults = self.default_hparams(family)
        unknown = sorted(set(values) - set(defaults))
        if unknown:
            raise ConfigError(
                f"model {self.name!r} has no hyper-parameter(s) {unknown}; its "
                f"model_hparams are {sorted(defaults)}"
            )
        resolved = dict(defaults)
        for key, value in values.items():
            default = defaults[key]
            if isinstance(default, bool) != isinstance(value, bool) or (
                isinstance(default, (int, float)) and not isinstance(value, (int, float))
            ) or (isinstance(default, str) and not isinstance(value, str)):
                raise ConfigError(
                    f"model_hparams.{key}={value!r} for {self.name!r}: expected a value "
                    f"like its default {default!r}"
                )
            if isinstance(default, int) and not isinstance(default, bool):
                if float(value) != int(value):
                    raise ConfigError(
                        f"model_hparams.{key}={value!r} for {self.name!r}: expected an integer"
                    )
                value = int(value)
            elif isinstance(default, float):
                value = float(value)
            if isinstance(value, list):
                value = list(value)
            resolved[key] = value
        return resolved


def _spec_modules() -> Dict[str, str]:
    modules = {"m3sa": "m3sa_tf.models.m3sa_model"}
    package = importlib.import_module("m3sa_tf.models.baselines")
    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_"):
            modules[info.name] = f"m3sa_tf.models.baselines.{info.name}"
    return modules


_SPECS: Dict[str, ModelSpec] = {}


def _load_specs() -> Dict[str, ModelSpec]:
    if not _SPECS:
        for name, module_name in _spec_modules().items():
            module = importlib.import_module(module_name)
            spec = getattr(module, "SPEC", None)
            if spec is None:
                continue  # a helper module of the baselines, not a model
            if spec.name != name:
                raise RuntimeError(f"{module_name} declares SPEC.name={spec.name!r}")
            _SPECS[name] = spec
    return _SPECS


def model_names() -> Tuple[str, ...]:
    """Every model name, M³SA first, then in the order of the paper's tables."""
    names = list(_load_specs())
    rank = {name: i for i, name in enumerate(_TABLE_ORDER)}
    return tuple(sorted(names, key=lambda n: (rank.get(n, len(rank)), n)))


def get_spec(name: str) -> ModelSpec:
    """The spec of model `name`; ConfigError naming the accepted names otherwise."""
    specs = _load_specs()
    if name not in specs:
        raise ConfigError(f"unknown model {name!r}; expected one of {list(model_names())}")
    return specs[name]


def check_data_supports(name: str, has_unimodal_labels: bool, dataset: str) -> None:
    """ConfigError when model `name` needs unimodal labels and the data has none."""
    spec = get_spec(name)
    if spec.needs_unimodal_labels and not has_unimodal_labels:
        others = [n for n in model_names() if not get_spec(n).needs_unimodal_labels]
        raise ConfigError(
            f"model {name!r} trains on unimodal labels (y_T, y_A, y_V), and dataset "
            f"{dataset!r} has none (only SIMS does); on this data use one of {others}"
        )


def build_model(config, feature_dims, has_unimodal_labels, key_modality: Optional[str] = None):
    """The (built, not compiled) model `config.model` for the data's feature widths.

    `key_modality` only concerns M³SA (see `m3sa_tf.models.m3sa_model.build_model`)."""
    spec = get_spec(config.model)
    check_data_supports(config.model, has_unimodal_labels, config.dataset)
    kwargs = {"key_modality": key_modality} if config.model == "m3sa" else {}
    model = spec.model_class(config, feature_dims, has_unimodal_labels, **kwargs)
    model.build({})
    return model
