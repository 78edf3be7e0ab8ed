"""Choosing a `tf.distribute` strategy, and making Keras 3 `fit` work under multi-worker.

`resolve_strategy(name)` maps the CLI's `--strategy auto|default|mirrored|multi-worker`
to a strategy object:

- "default": the default (no-op) strategy, one device;
- "mirrored": `MirroredStrategy` over every local GPU (or the CPU when there is none);
- "multi-worker": `MultiWorkerMirroredStrategy`; TF_CONFIG must name a cluster;
- "auto": multi-worker when TF_CONFIG names a cluster of more than one task, mirrored
  when there are several local GPUs, else default.

Keras 3 `fit` handles a `tf.data.Dataset` under any strategy itself: it calls
`strategy.experimental_distribute_dataset`, which splits each global batch between the
replicas and, under multi-worker, shards the input between workers. The batch size
given to the dataset is therefore the global one.

Keras 3 `fit` fails under `MultiWorkerMirroredStrategy` in every release so far
(keras-team/keras#20585) from two bugs in `keras/src/backend/tensorflow/trainer.py`:

1. `TensorFlowTrainer._maybe_symbolic_build` turns a per-replica batch into one batch
   with `strategy.reduce("MEAN", batch, axis=None)` — a collective all-reduce of the
   input data that fails (and is meaningless) across workers. It only needs a batch of
   the right structure and shapes: the first local replica's batch does that.
2. `reduce_per_replica(..., reduction="auto")` reduces the step's scalar logs with
   `strategy.reduce("MEAN", v, axis=0)` in multi-worker mode: a scalar has no axis 0.

`multi_worker_keras_fix(strategy)` is a context manager that patches both, only while it
is active and only when `strategy` is a `MultiWorkerMirroredStrategy` (any other strategy
gets no patch at all). The replacement of (2) reduces scalars across workers with
`axis=None` (so every worker logs the same global mean) and hands anything else to the
original function. Before patching it checks that the two functions exist with the
signatures it was written against and raises `KerasPatchError` otherwise, so a Keras
upgrade that changes them fails loudly instead of silently training wrong.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import shutil
import tempfile
from typing import Iterator, Optional

import tensorflow as tf

STRATEGY_NAMES = ("auto", "default", "mirrored", "multi-worker")


class StrategyError(ValueError):
    """A strategy that cannot be set up from the current environment."""


class KerasPatchError(RuntimeError):
    """Keras' trainer no longer has the shape the multi-worker fix was written for."""


# ---------------------------------------------------------------------- TF_CONFIG
def tf_config() -> dict:
    """The parsed TF_CONFIG environment variable ({} when unset)."""
    raw = os.environ.get("TF_CONFIG", "").strip()
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as err:
        raise StrategyError(f"TF_CONFIG is not valid JSON: {err}") from err
    if not isinstance(value, dict):
        raise StrategyError("TF_CONFIG must be a JSON object with 'cluster' and 'task'")
    return value


def cluster_size(config: Optional[dict] = None) -> int:
    """How many tasks (chief + workers) the TF_CONFIG cluster names; 0 without one."""
    config = tf_config() if config is None else config
    cluster = config.get("cluster") or {}
    return sum(len(cluster.get(kind, [])) for kind in ("chief", "worker"))


# ---------------------------------------------------------------------- strategies
def resolve_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """The strategy named by `name` (one of STRATEGY_NAMES); see the module docstring."""
    if name not in STRATEGY_NAMES:
        raise StrategyError(f"unknown strategy {name!r}; expected one of {list(STRATEGY_NAMES)}")
    if name == "auto":
        if cluster_size() > 1:
            name = "multi-worker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    config = tf_config()
    if cluster_size(config) < 1 or "task" not in config:
        raise StrategyError(
            "strategy 'multi-worker' needs TF_CONFIG naming the cluster and this task, e.g. "
            'TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
            '"task": {"type": "worker", "index": 0}}\''
        )
    return tf.distribute.MultiWorkerMirroredStrategy()


def is_multi_worker(strategy: Optional[tf.distribute.Strategy]) -> bool:
    """True when `strategy` is a MultiWorkerMirroredStrategy spanning several workers."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and bool(
        strategy.extended._in_multi_worker_mode()
    )


def is_chief(strategy: Optional[tf.distribute.Strategy] = None) -> bool:
    """Whether this process writes results: always, except non-chief multi-worker tasks.

    The chief is the "chief" task, or worker 0 when the cluster has no chief (TF's rule).
    """
    if strategy is None or not is_multi_worker(strategy):
        return True
    resolver = strategy.cluster_resolver
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type in (None, "chief"):
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and not has_chief


@contextlib.contextmanager
def write_dir_for(output_dir: str, strategy: Optional[tf.distribute.Strategy]) -> Iterator[str]:
    """The directory this process writes to: `output_dir` on the chief, a temporary
    directory (deleted on exit) on other workers, so that every worker can run the same
    writing code — some of it, such as checkpoint saving, must run on every worker."""
    if is_chief(strategy):
        yield output_dir
        return
    temp = tempfile.mkdtemp(prefix=f"m3sa-worker{strategy.cluster_resolver.task_id}-")
    try:
        yield temp
    finally:
        shutil.rmtree(temp, ignore_errors=True)


# ---------------------------------------------------------------------- Keras patch
_EXPECTED = {
    "reduce_per_replica": ["values", "strategy", "reduction"],
    "_maybe_symbolic_build": ["self", "iterator", "data_batch"],
}


def _keras_trainer_module():
    from keras.src.backend.tensorflow import trainer as trainer_module

    return trainer_module


def _check_patch_targets(module) -> None:
    targets = {
        "reduce_per_replica": getattr(module, "reduce_per_replica", None),
        "_maybe_symbolic_build": getattr(
            getattr(module, "TensorFlowTrainer", None), "_maybe_symbolic_build", None
        ),
    }
    for name, function in targets.items():
        if function is None or not callable(function):
            raise KerasPatchError(
                f"keras.src.backend.tensorflow.trainer has no {name}; the multi-worker fix "
                "(keras-team/keras#20585) was written for Keras 3.15 and must be revisited"
            )
        params = list(inspect.signature(function).parameters)
        if params != _EXPECTED[name]:
            raise KerasPatchError(
                f"keras.src.backend.tensorflow.trainer.{name} takes {params}, the "
                f"multi-worker fix expects {_EXPECTED[name]}; revisit the fix for this "
                "Keras version"
            )


def _is_mirrored(strategy: Optional[tf.distribute.Strategy]) -> bool:
    return isinstance(strategy, (tf.distribute.MirroredStrategy,
                                 tf.distribute.MultiWorkerMirroredStrategy))


def _first_local(strategy, value):
    if isinstance(value, tf.distribute.DistributedValues):
        return strategy.experimental_local_results(value)[0]
    return value


@contextlib.contextmanager
def multi_worker_keras_fix(strategy: Optional[tf.distribute.Strategy]) -> Iterator[None]:
    """Patches Keras' TF trainer for the mirrored strategies while active.

    Keras builds a distributed model from `strategy.reduce("MEAN", batch)`, which fails
    on any non-float input (our bool text padding mask) under MirroredStrategy as well as
    MultiWorkerMirroredStrategy; the build then takes the first local replica's batch
    instead. Under MultiWorkerMirroredStrategy the scalar logs are also reduced as global
    means (SPEC §4, keras-team/keras#20585). A no-op for the default strategy. Wrap
    `model.fit` / `model.evaluate` / `model.predict` with it (the train/test functions
    are built inside them).
    """
    if not _is_mirrored(strategy):
        yield
        return
    module = _keras_trainer_module()
    _check_patch_targets(module)
    original_reduce = module.reduce_per_replica
    original_build = module.TensorFlowTrainer._maybe_symbolic_build

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and is_multi_worker(strategy):
            from keras.src import tree

            def reduce_one(value):
                if isinstance(value, tf.distribute.DistributedValues) or tf.is_tensor(value):
                    if value.shape.rank == 0:
                        # Every worker gets the same global mean of the step's logs.
                        return strategy.reduce("MEAN", value, axis=None)
                return original_reduce(value, strategy, reduction)

            return tree.map_structure(reduce_one, values)
        return original_reduce(values, strategy, reduction)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if iterator is not None and _is_mirrored(self.distribute_strategy):
            from keras.src import tree

            for _, _, it in iterator:
                batch = next(it)
                # Only structure and shapes matter for building: the first local
                # replica's batch, instead of an all-reduce of the data across workers.
                data_batch = tree.map_structure(
                    lambda v: _first_local(self.distribute_strategy, v), batch
                )
                break
            with self.distribute_strategy.scope():
                self._symbolic_build(data_batch=data_batch)
            return
        return original_build(self, iterator=iterator, data_batch=data_batch)

    module.reduce_per_replica = reduce_per_replica
    module.TensorFlowTrainer._maybe_symbolic_build = _maybe_symbolic_build
    try:
        yield
    finally:
        module.reduce_per_replica = original_reduce
        module.TensorFlowTrainer._maybe_symbolic_build = original_build


def shard_policy_options() -> tf.data.Options:
    """tf.data options that shard by data, not by file, across workers.

    FILE sharding (TF's first choice) needs at least as many input files as workers;
    DATA works for any number of shards: each worker reads the input and keeps its part.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return options
