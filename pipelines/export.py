"""Export a trained run as a TensorFlow Serving SavedModel, and build requests for it.

`export_run(run_dir, export_dir, model_name="m3sa", version=None)` reads a run directory
written by `pipelines.training` (docs/interfaces.md §4: `model.keras`, `config.json`,
`dataset.json`) and writes `export_dir/model_name/version/`, the layout
`tensorflow_model_server --model_base_path=export_dir/model_name` serves. The SavedModel
holds one function, `serve`, registered under the `serving_default` signature with
named dense inputs and named float32 outputs:

| input | dtype | shape | when |
|---|---|---|---|
| `text` | float32 | [batch, time, D_text] | text modality, `text_path="features"` |
| `text_length` | int32 | [batch] | text modality, `text_path="features"` |
| `text_token_ids`, `text_segment_ids` | int32 | [batch, time] | `text_path="bert"` |
| `text_padding_mask` | int32 (1 = token, 0 = padding) | [batch, time] | `text_path="bert"` |
| `audio`, `vision` | float32 | [batch, time, D_m] | modality in the model |
| `audio_length`, `vision_length` | int32 | [batch] | modality in the model |

Outputs: `fused` and one unimodal score per modality of the model (`text`, `audio`,
`vision`), each float32 [batch]. Feature widths D_m come from the run's `dataset.json`.

The BERT padding mask is served as int32 0/1 rather than bool: tokenizers hand out
integer attention masks, one integer dtype for all three token inputs keeps clients
simple, and int32 travels the same way in REST JSON and gRPC `TensorProto` (`int_val`).
The graph turns it back into the bool mask the model reads.

The version directory appears atomically: the SavedModel is written to a hidden
temporary directory beside it (TF Serving ignores names that are not integers) and
renamed into place; an existing version is never overwritten.

`rest_request(features, signature)` and `predict_request(features, signature, ...)`
build a TF Serving REST body (JSON, columnar "inputs" or row "instances") and a gRPC
`PredictRequest` from a batch of features; `read_serving_signature(version_dir)` reads
the signature's input and output names, dtypes and shapes from `saved_model.pb` without
loading the model.

CLI:

    python -m pipelines.export --run RUN_DIR --export-dir DIR [--model-name m3sa] [--version N]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
from typing import Any, Dict, Mapping, Optional, Sequence

import numpy as np

SIGNATURE_NAME = "serving_default"
ENDPOINT_NAME = "serve"
RUN_FILES = ("model.keras", "config.json", "dataset.json")
_MODEL_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class ExportError(ValueError):
    """A run directory, export directory, name or version that cannot be exported."""


# ---------------------------------------------------------------------------- run dir
def check_run_dir(run_dir: str) -> None:
    """Raises ExportError unless `run_dir` holds a finished single-seed run."""
    if not os.path.isdir(run_dir):
        raise ExportError(f"run directory {run_dir!r} does not exist")
    missing = [name for name in RUN_FILES if not os.path.isfile(os.path.join(run_dir, name))]
    if not missing:
        return
    seeds = sorted(
        name for name in os.listdir(run_dir)
        if name.startswith("seed_") and os.path.isdir(os.path.join(run_dir, name))
    )
    if seeds:
        raise ExportError(
            f"{run_dir!r} holds several seeds ({', '.join(seeds)}); export one of them, "
            f"e.g. --run {os.path.join(run_dir, seeds[0])}"
        )
    raise ExportError(
        f"run directory {run_dir!r} is incomplete: missing {', '.join(missing)} "
        f"(a finished run of pipelines.train has {', '.join(RUN_FILES)})"
    )


def _read_json(path: str) -> Any:
    try:
        with open(path, "r", encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, json.JSONDecodeError) as err:
        raise ExportError(f"cannot read {path}: {err}") from err


def load_run(run_dir: str):
    """(model, config, feature_dims) of a finished run."""
    check_run_dir(run_dir)
    from m3sa_tf.config import ConfigError, M3SAConfig

    try:
        with open(os.path.join(run_dir, "config.json"), "r", encoding="utf-8") as handle:
            config = M3SAConfig.from_json(handle.read())
    except (OSError, ConfigError) as err:
        raise ExportError(f"{os.path.join(run_dir, 'config.json')}: {err}") from err
    dataset = _read_json(os.path.join(run_dir, "dataset.json"))
    feature_dims = dataset.get("feature_dims") if isinstance(dataset, dict) else None
    needed = [m for m in config.modalities if not (m == "text" and config.text_path == "bert")]
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
def serving_input_specs(config, feature_dims: Mapping[str, int]) -> Dict[str, Any]:
    """The `serving_default` inputs of a model with `config`: name -> tf.TensorSpec."""
    import tensorflow as tf

    specs = {}
    for modality in config.modalities:
        if modality == "text" and config.text_path == "bert":
            for name in ("text_token_ids", "text_segment_ids", "text_padding_mask"):
                specs[name] = tf.TensorSpec([None, None], tf.int32, name=name)
            continue
        specs[modality] = tf.TensorSpec(
            [None, None, int(feature_dims[modality])], tf.float32, name=modality
        )
        specs[f"{modality}_length"] = tf.TensorSpec([None], tf.int32, name=f"{modality}_length")
    return specs


def serving_output_names(config) -> tuple:
    return ("fused",) + tuple(config.modalities)


def make_serving_fn(model, config):
    """The function behind `serving_default`: dense named inputs -> named scores."""
    import tensorflow as tf

    output_names = serving_output_names(config)
    bert = "text" in config.modalities and config.text_path == "bert"

    def serve(features):
        features = dict(features)
        if bert:
            features["text_padding_mask"] = tf.not_equal(features["text_padding_mask"], 0)
        outputs = model(features, training=False)
        return {name: tf.cast(outputs[name], tf.float32) for name in output_names}

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


def export_model(model, config, feature_dims, export_dir: str, model_name: str = "m3sa",
                 version: Optional[int] = None, extra_info: Optional[dict] = None) -> str:
    """Writes `model` as `export_dir/model_name/version/`; returns that path."""
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
    specs = serving_input_specs(config, feature_dims)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(ENDPOINT_NAME, make_serving_fn(model, config), input_signature=[specs])

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
            "outputs": list(serving_output_names(config)),
            "config": config.to_dict(),
            "feature_dims": dict(feature_dims),
            **(extra_info or {}),
        }
        extra = os.path.join(saved, "assets.extra")
        os.makedirs(extra, exist_ok=True)
        with open(os.path.join(extra, "m3sa_export.json"), "w", encoding="utf-8") as handle:
            json.dump(info, handle, indent=2, sort_keys=True)
        if os.path.exists(target):  # another exporter won the race while we wrote
            raise ExportError(f"version {version} of {model_name!r} appeared at {target} "
                              "during the export; not overwriting it")
        os.rename(saved, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def export_run(run_dir: str, export_dir: str, model_name: str = "m3sa",
               version: Optional[int] = None) -> str:
    """Exports the run in `run_dir` as `export_dir/model_name/version/` (a SavedModel
    with a `serving_default` signature) and returns that path.

    `version` defaults to one more than the highest integer version already there (1 for
    the first). Raises ExportError for a missing or incomplete run directory, a bad name
    or version, or a version that already exists.
    """
    _check_name_and_version(model_name, version)
    check_run_dir(run_dir)
    if version is not None and os.path.exists(os.path.join(export_dir, model_name, str(version))):
        # Fail before the (slow) model load; export_model checks again before writing.
        raise ExportError(
            f"version {version} of {model_name!r} already exists at "
            f"{os.path.join(export_dir, model_name, str(version))}; exported versions are "
            "never overwritten: pass another --version or leave it out"
        )
    model, config, feature_dims = load_run(run_dir)
    return export_model(
        model, config, feature_dims, export_dir, model_name, version,
        extra_info={"run_dir": os.path.abspath(run_dir)},
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
                        "(holds model.keras, config.json, dataset.json)")
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
        path = export_run(args.run, args.export_dir, args.model_name, args.version)
    except ExportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
