"""Export a trained run as a TensorFlow Serving SavedModel, and build requests for it.

`export_run(run_dir, export_dir, model_name="m3sa", version=None, seed=None)` reads a
run directory written by `pipelines.training` (docs/interfaces.md §4: `model.keras`,
`config.json`, `dataset.json`) and writes `export_dir/model_name/version/`, the layout
`tensorflow_model_server --model_base_path=export_dir/model_name` serves. The SavedModel
holds one function, `serve`, registered under the `serving_default` signature with
named dense inputs and named float32 outputs. `export_model(model, export_dir, ...)`
does the same for any model in memory (M³SA or a baseline): it needs only
`model.input_signature()` (name -> tf.TensorSpec) and a call on a feature dict that
returns an output dict.

Inputs are `model.input_signature()`, the model's own definition of what it reads, with
one change for clients (below):

| input | dtype | shape | when |
|---|---|---|---|
| `text` | float32 | [batch, time, D_text] | text modality, `text_path="features"` |
| `text_length` | int32 | [batch] | text modality, `text_path="features"` |
| `text_token_ids`, `text_segment_ids` | int32 | [batch, time] | `text_path="bert"` |
| `text_token_ids` | int32 | [batch, time] | `text_path="embedding"` (with `text_length`) |
| `text_padding_mask` | int32 (1 = token, 0 = padding) | [batch, time] | `text_path="bert"` |
| `audio`, `vision` | float32 | [batch, time, D_m] | modality in the model |
| `audio_length`, `vision_length` | int32 | [batch] | modality in the model |

Outputs, each float32 [batch]: `fused`, then whichever of the unimodal heads `text`,
`audio`, `vision` the model really returns, read from the traced serving graph; any other
output (`embedding_*` and the like) only feeds a training loss and is not served. For
M³SA that means:

| model | outputs |
|---|---|
| `fusion="key"`, `"equal"`, `"late"`, `"multi_key"` | `fused` and one head per modality of `modalities` (T: `fused`, `text`; TA: `fused`, `text`, `audio`; ...) |
| `fusion="early"` (one block over the joined inputs, no unimodal heads) | `fused` |

The exported names are in `assets.extra/m3sa_export.json` ("outputs") and in the
signature itself (`read_serving_signature`).

The BERT padding mask is served as int32 0/1 rather than bool: tokenizers hand out
integer attention masks, one integer dtype for all three token inputs keeps clients
simple, and int32 travels the same way in REST JSON and gRPC `TensorProto` (`int_val`).
Every bool input of the model's signature is served this way, and the graph turns it
back into the bool the model reads (any non-zero value is true).

Seeds: `pipelines.train --seeds` writes one run per seed into `RUN/seed_<s>/`. Given such
a `RUN`, export takes its only seed, or, with several, the seed with the lowest
validation loss: `seed_<s>/metrics.json["validation"]["loss"]`, the value of
`best_epoch_monitor` (the loss that picked that seed's best epoch) on the validation
split. It is the quantity training already selected on, so the choice never looks at
test numbers; ties go to the smaller seed. Every seed must have finished for that
choice. `seed=` (`--seed S`) exports seed S instead; a seed that is not there is an
error naming the seeds that are (exit 2). The choice and the reason are printed, and
recorded in `assets.extra/m3sa_export.json` under "source": the `run_dir` given, the
`exported_run_dir`, `seed`, `seeds`, `seed_choice` and, for a seeds directory, each
seed's `validation_loss` and its `validation_loss_monitor`. `assets.extra/` is the
SavedModel folder for files beside the model: TF Serving only reads its warm-up
requests file there and ignores the rest.

The version directory appears atomically: the SavedModel is written to a hidden
temporary directory beside it (TF Serving ignores names that are not integers) and
renamed into place; an existing version is never overwritten.

`rest_request(features, signature)` and `predict_request(features, signature, ...)`
build a TF Serving REST body (JSON, columnar "inputs" or row "instances") and a gRPC
`PredictRequest` from a batch of features; `read_serving_signature(version_dir)` reads
the signature's input and output names, dtypes and shapes from `saved_model.pb` without
loading the model.

CLI:

    python -m pipelines.export --run RUN_DIR --export-dir DIR [--model-name m3sa]
        [--version N] [--seed S]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
from typing import Any, Callable, Dict, Mapping, Optional, Sequence

import numpy as np
from msa_core.io import read_json

SIGNATURE_NAME = "serving_default"
ENDPOINT_NAME = "serve"
EXPORT_RECORD = "m3sa_export.json"
RUN_FILES = ("model.keras", "config.json", "dataset.json")
UNIMODAL_OUTPUTS = ("text", "audio", "vision")
_MODEL_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_SEED_DIR_RE = re.compile(r"^seed_(-?[0-9]+)$")


class ExportError(ValueError):
    """A run directory, export directory, name or version that cannot be exported."""


# ---------------------------------------------------------------------------- run dir
def check_run_dir(run_dir: str) -> None:
    """Raises ExportError unless `run_dir` holds a finished single-seed run."""
    if not os.path.isdir(run_dir):
        raise ExportError(f"run directory {run_dir!r} does not exist")
    missing = [name for name in RUN_FILES if not os.path.isfile(os.path.join(run_dir, name))]
    if missing:
        raise ExportError(
            f"run directory {run_dir!r} is incomplete: missing {', '.join(missing)} "
            f"(a finished run of pipelines.train has {', '.join(RUN_FILES)})"
        )


def seed_dirs(run_dir: str) -> Dict[int, str]:
    """{seed: path} of the `seed_<s>/` directories `pipelines.train --seeds` writes."""
    if not os.path.isdir(run_dir):
        return {}
    found = {}
    for name in os.listdir(run_dir):
        match = _SEED_DIR_RE.match(name)
        if match and os.path.isdir(os.path.join(run_dir, name)):
            found[int(match.group(1))] = os.path.join(run_dir, name)
    return dict(sorted(found.items()))


def _seed_metrics(seed_dir: str) -> tuple:
    """(validation loss, the loss it measures) of a finished seed's metrics.json;
    (None, None) while the seed has not finished (metrics.json is written last)."""
    path = os.path.join(seed_dir, "metrics.json")
    if not os.path.isfile(path):
        return None, None
    metrics = read_json(path, error=ExportError)
    loss = (metrics.get("validation") or {}).get("loss") if isinstance(metrics, dict) else None
    if isinstance(loss, bool) or not isinstance(loss, (int, float)) or loss != loss:
        return None, None
    monitor = (metrics.get("hyperparameters") or {}).get("best_epoch_monitor", "loss")
    return float(loss), monitor


def choose_run(run_dir: str, seed: Optional[int] = None) -> tuple:
    """(directory to export, record of the choice) for `run_dir`, a single run or the
    parent of `seed_<s>/` runs.

    Among several seeds the default is the one with the lowest validation loss, the
    value of `best_epoch_monitor` at its best epoch (`metrics.json["validation"]
    ["loss"]`): the quantity training already selected on, and never a test number.
    Ties go to the smaller seed. `seed` picks one instead. Raises ExportError for a
    seed that is not there (naming the seeds that are), and for a default choice while
    some seed has not finished (its loss is unknown)."""
    if not os.path.isdir(run_dir):
        raise ExportError(f"run directory {run_dir!r} does not exist")
    seeds = seed_dirs(run_dir)
    record: Dict[str, Any] = {"run_dir": os.path.abspath(run_dir)}
    if not seeds:
        check_run_dir(run_dir)
        config = read_json(os.path.join(run_dir, "config.json"), error=ExportError)
        own = config.get("seed") if isinstance(config, dict) else None
        if seed is not None and seed != own:
            raise ExportError(
                f"{run_dir!r} is a single run of seed {own} (no seed_<s>/ directories); "
                f"--seed {seed} is not there"
            )
        record.update(exported_run_dir=record["run_dir"], seed=own, seeds=[own],
                      seed_choice="the run's only seed")
        return run_dir, record

    names = ", ".join(str(s) for s in seeds)
    scores = {s: _seed_metrics(path) for s, path in seeds.items()}
    losses = {s: loss for s, (loss, _) in scores.items()}
    monitor = next((m for _, m in scores.values() if m), "loss")
    if seed is not None:
        if seed not in seeds:
            raise ExportError(f"--seed {seed} is not in {run_dir!r}; its seeds are {names}")
        chosen, why = seed, "requested with --seed"
    elif len(seeds) == 1:
        chosen, why = next(iter(seeds)), "the only seed"
    else:
        unfinished = [s for s, loss in losses.items() if loss is None]
        if unfinished:
            raise ExportError(
                f"cannot choose the best seed of {run_dir!r}: "
                f"{', '.join(f'seed_{s}' for s in unfinished)} has no finished metrics.json "
                f"with a numeric validation loss; finish it or pass --seed (seeds: {names})"
            )
        chosen = min(seeds, key=lambda s: (losses[s], s))
        why = (f"lowest validation loss ({monitor}, the loss that picked each seed's "
               "best epoch)")
    check_run_dir(seeds[chosen])
    record.update(
        exported_run_dir=os.path.abspath(seeds[chosen]), seed=chosen, seeds=list(seeds),
        seed_choice=why, validation_loss_monitor=monitor,
        validation_loss={str(s): loss for s, loss in losses.items()},
    )
    return seeds[chosen], record


def describe_choice(record: Mapping[str, Any]) -> str:
    """One line saying which seed of a run is exported and why."""
    line = f"exporting seed {record['seed']} of {record['run_dir']}: {record['seed_choice']}"
    losses = record.get("validation_loss")
    if losses and len(losses) > 1:
        line += " (validation loss " + ", ".join(
            f"seed {s} {'unfinished' if v is None else f'{v:.6g}'}" for s, v in losses.items()
        ) + ")"
    return line


def load_run(run_dir: str):
    """(model, config, feature_dims) of a finished run."""
    check_run_dir(run_dir)
    from m3sa_tf.config import ConfigError, M3SAConfig

    try:
        with open(os.path.join(run_dir, "config.json"), "r", encoding="utf-8") as handle:
            config = M3SAConfig.from_json(handle.read())
    except (OSError, ConfigError) as err:
        raise ExportError(f"{os.path.join(run_dir, 'config.json')}: {err}") from err
    dataset = read_json(os.path.join(run_dir, "dataset.json"), error=ExportError)
    feature_dims = dataset.get("feature_dims") if isinstance(dataset, dict) else None
    needed = [m for m in config.modalities
              if not (m == "text" and config.text_path in ("bert", "embedding"))]
    if not isinstance(feature_dims, dict) or any(
        not isinstance(feature_dims.get(m), int) or feature_dims[m] <= 0 for m in needed
    ):
        raise ExportError(
            f"{os.path.join(run_dir, 'dataset.json')} must hold feature_dims with a positive "
            f"integer width for each of {needed}, got {feature_dims!r}"
        )

    import keras

    import m3sa_tf.models  # noqa: F401  registers the model's classes for loading

    try:
        model = keras.models.load_model(os.path.join(run_dir, "model.keras"), compile=False)
    except Exception as err:  # a corrupt or foreign file: say which
        raise ExportError(
            f"cannot load {os.path.join(run_dir, 'model.keras')}: {type(err).__name__}: {err}"
        ) from err
    return model, config, {k: int(v) for k, v in feature_dims.items()}


# ---------------------------------------------------------------------------- signature
def serving_input_specs(model) -> Dict[str, Any]:
    """The `serving_default` inputs of `model`: name -> tf.TensorSpec.

    `model.input_signature()` is the one definition of what the model reads; the
    served contract differs only in that bool inputs (the BERT padding mask) arrive as
    int32 0/1 (module docstring) and are turned back into bools inside the graph."""
    import tensorflow as tf

    signature = getattr(model, "input_signature", None)
    if not callable(signature):
        raise ExportError(
            f"{type(model).__name__} has no input_signature(); export needs the model's "
            "dict of tf.TensorSpec by input name"
        )
    specs = {}
    for name, spec in signature().items():
        dtype = tf.int32 if spec.dtype == tf.bool else spec.dtype
        # Named after the dict key so that the signature's input names are the keys.
        specs[name] = tf.TensorSpec(spec.shape, dtype, name=name)
    return specs


def served_output_names(outputs: Mapping[str, Any]) -> tuple:
    """The outputs that are served, in this order: `fused`, then whichever unimodal
    heads `outputs` (a model's output dict) holds; the rest (embeddings, ...) only
    feed training losses and stay out of the contract."""
    if "fused" not in outputs:
        raise ExportError(
            f"the model returns no 'fused' output (it returns {sorted(outputs)}); "
            "a served model must"
        )
    return ("fused",) + tuple(name for name in UNIMODAL_OUTPUTS if name in outputs)


def make_serving_fn(model):
    """The function behind `serving_default`: the inputs of `serving_input_specs(model)`
    -> the float32 outputs of `served_output_names`."""
    import tensorflow as tf

    bool_inputs = [name for name, spec in model.input_signature().items()
                   if spec.dtype == tf.bool]

    def serve(features):
        features = dict(features)
        for name in bool_inputs:
            features[name] = tf.not_equal(features[name], 0)
        outputs = model(features, training=False)
        return {name: tf.cast(outputs[name], tf.float32)
                for name in served_output_names(outputs)}

    return serve


# ---------------------------------------------------------------------------- versions
def existing_versions(model_dir: str) -> list:
    """Integer version directories under `model_dir`, ascending (TF Serving's rule)."""
    if not os.path.isdir(model_dir):
        return []
    return sorted(
        int(name) for name in os.listdir(model_dir)
        if name.isdigit() and os.path.isdir(os.path.join(model_dir, name))
    )


def next_version(model_dir: str) -> int:
    """1 + the highest integer version under `model_dir` (1 when there is none)."""
    return (existing_versions(model_dir) or [0])[-1] + 1


def _check_name_and_version(model_name: str, version: Optional[int]) -> None:
    if not isinstance(model_name, str) or not _MODEL_NAME_RE.match(model_name):
        raise ExportError(
            f"model name {model_name!r} must be letters, digits, '_', '-' or '.', "
            "starting with a letter or digit"
        )
    if version is not None and (
        isinstance(version, bool) or not isinstance(version, int) or version < 1
    ):
        raise ExportError(f"version {version!r} must be an integer >= 1")


def export_model(model, export_dir: str, model_name: str = "m3sa",
                 version: Optional[int] = None, extra_info: Optional[dict] = None) -> str:
    """Writes `model` as `export_dir/model_name/version/`; returns that path.

    Any model of the project exports this way: it needs only `model.input_signature()`
    (name -> tf.TensorSpec) and a call on a feature dict that returns an output dict
    with `fused`. `extra_info` goes into `assets.extra/m3sa_export.json`."""
    _check_name_and_version(model_name, version)
    import keras

    model_dir = os.path.join(export_dir, model_name)
    os.makedirs(model_dir, exist_ok=True)
    if version is None:
        version = next_version(model_dir)
    target = os.path.join(model_dir, str(version))
    if os.path.exists(target):
        raise ExportError(
            f"version {version} of {model_name!r} already exists at {target}; exported "
            "versions are never overwritten: pass another --version or leave it out "
            "to take the next free one"
        )
    specs = serving_input_specs(model)
    archive = keras.export.ExportArchive()
    archive.track(model)
    endpoint = archive.add_endpoint(ENDPOINT_NAME, make_serving_fn(model),
                                    input_signature=[specs])
    # The traced graph is what TF Serving will answer with, so the record is read from
    # it (write_out reuses this trace).
    outputs = list(endpoint.get_concrete_function().structured_outputs)

    staging = tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=model_dir)
    try:
        saved = os.path.join(staging, "model")
        archive.write_out(saved, verbose=False)
        info = {
            "model_name": model_name,
            "version": version,
            "signature": SIGNATURE_NAME,
            "inputs": {
                name: {"dtype": spec.dtype.name, "shape": [d for d in spec.shape.as_list()]}
                for name, spec in specs.items()
            },
            "outputs": outputs,
            **(extra_info or {}),
        }
        # assets.extra/ is the SavedModel folder meant for files beside the model: TF
        # Serving reads only its warm-up file there and ignores the rest.
        extra = os.path.join(saved, "assets.extra")
        os.makedirs(extra, exist_ok=True)
        with open(os.path.join(extra, EXPORT_RECORD), "w", encoding="utf-8") as handle:
            json.dump(info, handle, indent=2, sort_keys=True)
        if os.path.exists(target):  # another exporter won the race while we wrote
            raise ExportError(f"version {version} of {model_name!r} appeared at {target} "
                              "during the export; not overwriting it")
        os.rename(saved, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def export_run(run_dir: str, export_dir: str, model_name: str = "m3sa",
               version: Optional[int] = None, seed: Optional[int] = None,
               log: Optional[Callable[[str], None]] = print) -> str:
    """Exports the run in `run_dir` as `export_dir/model_name/version/` (a SavedModel
    with a `serving_default` signature) and returns that path.

    `run_dir` is one run or the parent of several seeds' runs (`pipelines.train
    --seeds`); which seed is exported follows `choose_run(run_dir, seed)`, is said
    through `log` and recorded in `assets.extra/m3sa_export.json` ("source").
    `version` defaults to one more than the highest integer version already there (1 for
    the first). Raises ExportError for a missing or incomplete run directory, a seed
    that is not there, a bad name or version, or a version that already exists.
    """
    _check_name_and_version(model_name, version)
    chosen, source = choose_run(run_dir, seed)
    if log is not None and source["exported_run_dir"] != source["run_dir"]:
        log(describe_choice(source))
    if version is not None and os.path.exists(os.path.join(export_dir, model_name, str(version))):
        # Fail before the (slow) model load; export_model checks again before writing.
        raise ExportError(
            f"version {version} of {model_name!r} already exists at "
            f"{os.path.join(export_dir, model_name, str(version))}; exported versions are "
            "never overwritten: pass another --version or leave it out"
        )
    model, config, feature_dims = load_run(chosen)
    return export_model(
        model, export_dir, model_name, version,
        extra_info={"source": source, "config": config.to_dict(),
                    "feature_dims": dict(feature_dims)},
    )


# ---------------------------------------------------------------------------- requests
def read_serving_signature(version_dir: str, signature_name: str = SIGNATURE_NAME) -> dict:
    """{"inputs": {name: {"dtype", "shape"}}, "outputs": {...}} of a SavedModel signature,
    read from `saved_model.pb` (no model is loaded). Shapes use -1 for unknown sizes."""
    import tensorflow as tf
    from tensorflow.core.protobuf import saved_model_pb2

    path = os.path.join(version_dir, "saved_model.pb")
    try:
        with open(path, "rb") as handle:
            proto = saved_model_pb2.SavedModel.FromString(handle.read())
    except OSError as err:
        raise ExportError(f"{version_dir!r} is not a SavedModel: cannot read {path}: {err}") from err
    for graph in proto.meta_graphs:
        if "serve" in graph.meta_info_def.tags and signature_name in graph.signature_def:
            signature = graph.signature_def[signature_name]
            break
    else:
        raise ExportError(f"{version_dir!r} has no signature {signature_name!r} under tag 'serve'")

    def describe(infos):
        return {
            name: {
                "dtype": tf.dtypes.as_dtype(info.dtype).name,
                "shape": [d.size for d in info.tensor_shape.dim],
            }
            for name, info in infos.items()
        }

    return {"inputs": describe(signature.inputs), "outputs": describe(signature.outputs)}


def _request_arrays(features: Mapping[str, Any], signature: Mapping[str, Any]) -> Dict[str, np.ndarray]:
    """The signature's inputs taken from `features`, cast to the signature's dtypes and
    checked against its shapes; extra keys (such as `id`) are left out."""
    inputs = signature["inputs"] if "inputs" in signature else signature
    missing = sorted(set(inputs) - set(features))
    if missing:
        raise ExportError(
            f"features lack the signature input(s) {missing}; the signature takes "
            f"{sorted(inputs)}"
        )
    arrays = {}
    batch = None
    for name, spec in sorted(inputs.items()):
        dtype = np.dtype(spec["dtype"])
        value = np.asarray(features[name])
        if value.dtype == np.bool_ and dtype.kind in "iu":
            value = value.astype(dtype)
        if value.dtype.kind == "f" and dtype.kind in "iu":
            raise ExportError(f"input {name!r} must hold integers ({dtype}), got {value.dtype}")
        value = value.astype(dtype, copy=False)
        shape = list(spec["shape"])
        if value.ndim != len(shape) or any(
            want not in (-1, None) and got != want for got, want in zip(value.shape, shape)
        ):
            raise ExportError(
                f"input {name!r} has shape {list(value.shape)}, the signature expects "
                f"{shape} (-1: any size)"
            )
        if batch is None:
            batch = value.shape[0]
        elif value.shape[0] != batch:
            raise ExportError(
                f"input {name!r} has {value.shape[0]} examples, the others {batch}"
            )
        arrays[name] = value
    return arrays


def rest_request(features: Mapping[str, Any], signature: Mapping[str, Any], *,
                 columnar: bool = True, signature_name: str = SIGNATURE_NAME) -> dict:
    """A TF Serving REST predict body (`POST /v1/models/NAME:predict`) for a batch.

    Args:
        features: batch-major arrays by input name (the dataset's features; extra keys
            such as `id` are dropped).
        signature: `read_serving_signature(version_dir)`, or its "inputs" part.
        columnar: True writes `{"inputs": {name: nested list}}` (compact; the response
            is `{"outputs": {...}}`); False writes row format
            `{"instances": [{name: value}, ...]}` (the response is
            `{"predictions": [...]}`). Both need every input to share the batch size,
            which ours do.
        signature_name: the signature to call.

    Returns a dict to `json.dumps`. Non-finite floats become JSON `NaN`/`Infinity`
    tokens, which TF Serving accepts.
    """
    arrays = _request_arrays(features, signature)
    body: Dict[str, Any] = {"signature_name": signature_name}
    if columnar:
        body["inputs"] = {name: value.tolist() for name, value in arrays.items()}
    else:
        batch = next(iter(arrays.values())).shape[0]
        body["instances"] = [
            {name: value[i].tolist() for name, value in arrays.items()} for i in range(batch)
        ]
    return body


def predict_request(features: Mapping[str, Any], signature: Mapping[str, Any], *,
                    model_name: str = "m3sa", version: Optional[int] = None,
                    signature_name: str = SIGNATURE_NAME):
    """A gRPC `tensorflow_serving.apis.predict_pb2.PredictRequest` for a batch
    (send it with `PredictionServiceStub(channel).Predict(request, timeout)`)."""
    try:
        from tensorflow_serving.apis import predict_pb2
    except ImportError as err:  # optional dependency: name the package
        raise ExportError(
            "building a gRPC PredictRequest needs tensorflow-serving-api "
            "(pip install 'tensorflow-serving-api>=2.21,<2.22')"
        ) from err
    import tensorflow as tf

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = int(version)
    for name, value in _request_arrays(features, signature).items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return request


# ---------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.export",
        description="Export a trained run as a TensorFlow Serving SavedModel "
        "(EXPORT_DIR/MODEL_NAME/VERSION/, signature serving_default).",
    )
    parser.add_argument("--run", required=True, help="run directory of pipelines.train "
                        "(holds model.keras, config.json, dataset.json), or the parent of "
                        "its seed_<s>/ runs (--seeds)")
    parser.add_argument("--seed", type=int, default=None,
                        help="with several seeds, export this one (default: the seed with "
                        "the lowest validation loss)")
    parser.add_argument("--export-dir", required=True,
                        help="model base directory root: the export goes to "
                        "EXPORT_DIR/MODEL_NAME/VERSION/")
    parser.add_argument("--model-name", default="m3sa", help="model name (default m3sa)")
    parser.add_argument("--version", type=int, default=None,
                        help="integer version >= 1 (default: 1 + the highest existing)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        path = export_run(args.run, args.export_dir, args.model_name, args.version,
                          seed=args.seed)
    except ExportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
