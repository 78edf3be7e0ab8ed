"""Which validation number a search optimises, and in which direction.

A search must never look at test data, so an objective is always a `val_...` name: the
validation loss Keras logs (`val_loss`, or a per-head `val_..._loss` when the model logs
one) or a validation MSA metric (MMSA's names with `val_` in front, e.g. `val_Has0_acc_2`
for MOSI-family data, `val_Mult_acc_2` for SIMS) that the training library's metrics
callback adds to the epoch logs.

Example:

>>> objective_for("val_Has0_acc_2", family="mosi").direction
'max'
"""

from __future__ import annotations

import keras_tuner

from m3sa_tf.metrics import FAMILIES
from m3sa_tf.metrics import metric_names as msa_metric_names

# Of the MSA metrics (m3sa_tf.metrics.metric_names) only the error is minimised.
_MINIMISED = ("MAE",)


class ObjectiveError(ValueError):
    """An objective that is not a validation metric this search can compute."""


def metric_names(family: str):
    """The MSA metric names (without `val_`) available for a dataset family."""
    return list(msa_metric_names(family))


def objective_for(name: str, family: str) -> keras_tuner.Objective:
    """The keras-tuner `Objective` for `name` on data of `family` ("mosi" | "sims").

    Raises ObjectiveError when `name` is not a validation quantity (test or training
    numbers must not steer a search) or is a metric of the other dataset family.
    """
    if family not in FAMILIES:
        raise ObjectiveError(f"unknown dataset family {family!r}; expected one of {FAMILIES}")
    known = [f"val_{m}" for m in metric_names(family)]
    if not name.startswith("val_"):
        raise ObjectiveError(
            f"objective {name!r} is not a validation metric; a search optimises only "
            f"validation numbers: 'val_loss' or one of {known}"
        )
    base = name[len("val_"):]
    if base == "loss" or base.endswith("_loss"):
        return keras_tuner.Objective(name, direction="min")
    if base in metric_names(family):
        return keras_tuner.Objective(name, direction="min" if base in _MINIMISED else "max")
    raise ObjectiveError(
        f"objective {name!r} is not a validation metric of the {family!r} dataset family; "
        f"expected 'val_loss' or one of {known}"
    )


def is_metric_objective(name: str) -> bool:
    """True when the objective comes from the MSA metrics callback, not from Keras' loss."""
    base = name[len("val_"):] if name.startswith("val_") else name
    return not (base == "loss" or base.endswith("_loss"))
