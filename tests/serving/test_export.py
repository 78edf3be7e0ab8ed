"""Export for TF Serving: layout, versions, serving in a fresh process without this
project, saved_model_cli, and REST / gRPC requests accepted by the signature.

There is no `tensorflow_model_server` binary on the test machines: a request is checked
by decoding it back into tensors the way the server does (JSON values to the
signature's dtypes; `tf.make_ndarray` on each gRPC `TensorProto`) and calling the
exported signature with them.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from pipelines import export
from tests.serving.helpers import (
    load_split_arrays,
    read_predictions_csv,
    serve_in_fresh_process,
)

HERE = os.path.dirname(os.path.abspath(__file__))
FEATURE_INPUTS = {
    "text": ("float32", [-1, -1, 768]),
    "text_length": ("int32", [-1]),
    "audio": ("float32", [-1, -1, 5]),
    "audio_length": ("int32", [-1]),
    "vision": ("float32", [-1, -1, 20]),
    "vision_length": ("int32", [-1]),
}
OUTPUTS = ("fused", "text", "audio", "vision")


@pytest.fixture(scope="module")
def trained_run(first_pipeline_run):
    """The run directory `pipelines.training.train_and_evaluate` wrote for the
    pipeline's trainer stage (tiny model, tiny synthetic data)."""
    return os.path.join(first_pipeline_run["executions"]["trainer"].path, "run")


@pytest.fixture(scope="module")
def exported(trained_run, tmp_path_factory):
    serving_dir = str(tmp_path_factory.mktemp("serving"))
    path = export.export_run(trained_run, serving_dir)
    return serving_dir, path


@pytest.fixture(scope="module")
def test_split(tiny_data_dir):
    return load_split_arrays(tiny_data_dir, "test")


@pytest.fixture(scope="module")
def expected(trained_run, test_split):
    """predictions/test.csv in the order of the test split's arrays."""
    rows = read_predictions_csv(os.path.join(trained_run, "predictions", "test.csv"))
    ids = test_split[0]["id"]
    assert sorted(rows) == sorted(ids)
    return {name: np.array([rows[i][name] for i in ids]) for name in OUTPUTS}


@pytest.fixture(scope="module")
def signature_fn(exported):
    import tensorflow as tf

    return tf.saved_model.load(exported[1]).signatures["serving_default"]


def assert_outputs_match(outputs, expected):
    assert sorted(outputs) == sorted(OUTPUTS)
    for name in OUTPUTS:
        np.testing.assert_allclose(np.asarray(outputs[name]), expected[name],
                                   rtol=1e-4, atol=1e-5, err_msg=name)


# ---------------------------------------------------------------------------- layout
def test_export_writes_version_1_as_a_complete_saved_model(exported, trained_run):
    serving_dir, path = exported
    assert path == os.path.join(serving_dir, "m3sa", "1")
    assert sorted(os.listdir(os.path.join(serving_dir, "m3sa"))) == ["1"]  # no staging left
    for name in ("saved_model.pb", "variables", "assets.extra"):
        assert os.path.exists(os.path.join(path, name))
    with open(os.path.join(path, "assets.extra", "m3sa_export.json")) as handle:
        info = json.load(handle)
    assert info["outputs"] == list(OUTPUTS)
    assert info["source"]["seed_choice"] == "the run's only seed"
    assert info["source"]["exported_run_dir"] == os.path.abspath(trained_run)
    assert {k: (v["dtype"], v["shape"]) for k, v in info["inputs"].items()} == {
        k: (dtype, [None if d == -1 else d for d in shape])
        for k, (dtype, shape) in FEATURE_INPUTS.items()
    }


def test_signature_has_the_named_dense_inputs_and_float_outputs(exported):
    signature = export.read_serving_signature(exported[1])
    assert {k: (v["dtype"], v["shape"]) for k, v in signature["inputs"].items()} == {
        k: (dtype, shape) for k, (dtype, shape) in FEATURE_INPUTS.items()
    }
    assert signature["outputs"] == {name: {"dtype": "float32", "shape": [-1]} for name in OUTPUTS}


def test_next_version_is_one_above_the_highest_integer_directory(tmp_path):
    model_dir = tmp_path / "m3sa"
    assert export.next_version(str(model_dir)) == 1
    for name in ("1", "7", "3", ".tmp-9-x", "notes"):
        (model_dir / name).mkdir(parents=True)
    assert export.existing_versions(str(model_dir)) == [1, 3, 7]
    assert export.next_version(str(model_dir)) == 8


def test_an_existing_version_is_never_overwritten(trained_run, exported):
    serving_dir, path = exported
    before = sorted(os.listdir(path))
    with pytest.raises(export.ExportError, match="already exists"):
        export.export_run(trained_run, serving_dir, version=1)
    assert sorted(os.listdir(path)) == before


def test_a_failed_export_leaves_no_version_directory(trained_run, tmp_path, monkeypatch):
    import keras

    def fail(self, *args, **kwargs):
        raise OSError("disk full")

    archive_class = type(keras.export.ExportArchive())
    monkeypatch.setattr(archive_class, "write_out", fail)
    with pytest.raises(OSError, match="disk full"):
        export.export_run(trained_run, str(tmp_path), version=4)
    assert os.listdir(tmp_path / "m3sa") == []


# ---------------------------------------------------------------------------- serving
def test_fresh_process_without_the_project_serves_the_test_predictions(
    exported, test_split, expected, tmp_path
):
    features, _ = test_split
    np.savez(tmp_path / "features.npz", **{k: features[k] for k in FEATURE_INPUTS})
    report = serve_in_fresh_process(
        [exported[1], tmp_path / "features.npz", tmp_path / "outputs.npz"], cwd=tmp_path
    )
    assert report["project_modules_loaded"] == []
    assert sorted(report["inputs"]) == sorted(FEATURE_INPUTS)
    with np.load(tmp_path / "outputs.npz") as outputs:
        assert_outputs_match(dict(outputs), expected)


def test_saved_model_cli_lists_the_serving_signature(exported):
    result = subprocess.run(
        ["saved_model_cli", "show", "--dir", exported[1], "--tag_set", "serve",
         "--signature_def", "serving_default"],
        capture_output=True, text=True, timeout=300, check=True,
    )
    out = result.stdout
    for name, (dtype, _) in FEATURE_INPUTS.items():
        assert f"inputs['{name}'] tensor_info:" in out
    assert out.count("dtype: DT_INT32") == 3 and out.count("dtype: DT_FLOAT") == 3 + len(OUTPUTS)
    for name in OUTPUTS:
        assert f"outputs['{name}'] tensor_info:" in out
    assert "Method name is: tensorflow/serving/predict" in out


# ---------------------------------------------------------------------------- requests
def decode_rest_body(body, signature):
    """What TF Serving does with a REST predict body: JSON values to the signature's
    dtypes, columnar ("inputs") or row ("instances") format."""
    import tensorflow as tf

    dtypes = {k: v["dtype"] for k, v in signature["inputs"].items()}
    if "inputs" in body:
        columns = body["inputs"]
    else:
        columns = {k: [row[k] for row in body["instances"]] for k in body["instances"][0]}
    assert sorted(columns) == sorted(dtypes)
    return {k: tf.constant(np.asarray(v, dtype=dtypes[k])) for k, v in columns.items()}


@pytest.mark.parametrize("columnar", [True, False], ids=["columnar-inputs", "row-instances"])
def test_rest_request_json_is_accepted_by_the_signature(
    exported, signature_fn, test_split, expected, columnar
):
    signature = export.read_serving_signature(exported[1])
    body = export.rest_request(test_split[0], signature, columnar=columnar)
    assert body["signature_name"] == "serving_default"
    assert ("inputs" in body) == columnar and ("instances" in body) != columnar
    wire = json.loads(json.dumps(body))  # exactly what curl would send
    outputs = signature_fn(**decode_rest_body(wire, signature))
    assert_outputs_match({k: v.numpy() for k, v in outputs.items()}, expected)


def test_grpc_predict_request_is_accepted_by_the_signature(
    exported, signature_fn, test_split, expected
):
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    signature = export.read_serving_signature(exported[1])
    request = export.predict_request(test_split[0], signature, model_name="m3sa", version=1)
    wire = predict_pb2.PredictRequest.FromString(request.SerializeToString())
    assert wire.model_spec.name == "m3sa"
    assert wire.model_spec.signature_name == "serving_default"
    assert wire.model_spec.version.value == 1
    assert sorted(wire.inputs) == sorted(FEATURE_INPUTS)
    tensors = {k: tf.constant(tf.make_ndarray(v)) for k, v in wire.inputs.items()}
    outputs = signature_fn(**tensors)
    assert_outputs_match({k: v.numpy() for k, v in outputs.items()}, expected)


def test_request_helpers_name_missing_inputs_and_wrong_shapes(exported, test_split):
    signature = export.read_serving_signature(exported[1])
    features = dict(test_split[0])
    del features["audio_length"]
    with pytest.raises(export.ExportError, match="audio_length"):
        export.rest_request(features, signature)
    features = dict(test_split[0], vision=test_split[0]["vision"][..., :3])
    with pytest.raises(export.ExportError, match="vision.*expects \\[-1, -1, 20\\]"):
        export.predict_request(features, signature)


def test_bool_padding_masks_become_int32_zero_one(exported):
    signature = {"inputs": {"text_padding_mask": {"dtype": "int32", "shape": [-1, -1]}}}
    body = export.rest_request({"text_padding_mask": np.array([[True, False]])}, signature)
    assert body["inputs"] == {"text_padding_mask": [[1, 0]]}


# ---------------------------------------------------------------------------- CLI
def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "pipelines.export", *args], capture_output=True, text=True,
        timeout=300, cwd=os.path.dirname(os.path.dirname(HERE)),
    )


def test_cli_missing_run_directory_exits_2_with_a_clear_error(tmp_path):
    result = run_cli("--run", str(tmp_path / "nope"), "--export-dir", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.startswith("error: run directory") and "does not exist" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_cli_incomplete_run_directory_names_the_missing_files(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("{}")
    assert export.main(["--run", str(tmp_path / "run"), "--export-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "incomplete" in err and "model.keras" in err and "dataset.json" in err


def test_cli_seeds_directory_with_an_unfinished_seed_names_it(tmp_path, capsys):
    (tmp_path / "run" / "seed_1111").mkdir(parents=True)
    (tmp_path / "run" / "metrics.json").write_text("{}")
    assert export.main(["--run", str(tmp_path / "run"), "--export-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "seed_1111" in err and "incomplete" in err and "model.keras" in err


def test_cli_existing_version_and_bad_version_exit_2(trained_run, exported, capsys):
    serving_dir, _ = exported
    assert export.main(["--run", trained_run, "--export-dir", serving_dir,
                        "--version", "1"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert export.main(["--run", trained_run, "--export-dir", serving_dir,
                        "--version", "0"]) == 2
    assert "must be an integer >= 1" in capsys.readouterr().err
