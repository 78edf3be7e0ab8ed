"""Every fusion and every modality subset exports and serves: a fresh process without
the project answers with `fused` (equal to the Keras model's prediction) plus exactly
the unimodal heads that model has, and never its auxiliary outputs.

The models are tiny and untrained: export does not depend on the weights' values. All
variants are exported in-process once and served by ONE fresh process, since starting
TensorFlow is most of a serving process' time.
"""

import json
import os

import numpy as np
import pytest

from pipelines import export
from tests.serving.helpers import build_tiny_model, random_features, serve_jobs, tiny_config

ALL = ("text", "audio", "vision")
# id: (config overrides, has_unimodal_labels, the unimodal heads served)
VARIANTS = {
    "fusion-key": ({"fusion": "key"}, False, ALL),
    "fusion-equal": ({"fusion": "equal"}, False, ALL),
    # One block over the joined inputs: no unimodal heads to serve.
    "fusion-early": ({"fusion": "early"}, False, ()),
    "fusion-late": ({"fusion": "late"}, False, ALL),
    "fusion-multi_key": ({"fusion": "multi_key"}, False, ALL),
    # The window-detector extractor: its lengths-dependent mean must trace for serving.
    "extractor-conv": ({"extractor": "conv", "readout": "max"}, False, ALL),
    "T": ({"modalities": ["text"]}, False, ("text",)),
    "A": ({"modalities": ["audio"], "key_modality": "audio"}, False, ("audio",)),
    "V": ({"modalities": ["vision"], "key_modality": "vision"}, False, ("vision",)),
    "TA": ({"modalities": ["text", "audio"]}, False, ("text", "audio")),
    "TV": ({"modalities": ["text", "vision"]}, False, ("text", "vision")),
    "AV": ({"modalities": ["audio", "vision"], "key_modality": "audio"}, False,
           ("audio", "vision")),
    # With unimodal labels (the multitask loss, SIMS-like), so that TAV is not a second
    # copy of fusion-key: this model has no contrastive embeddings.
    "TAV": ({"modalities": list(ALL)}, True, ALL),
}


def masked_mean_model():
    """A model that is not M³SA, with a bool input: what the export must handle for any
    model of the zoo (int ids under a bool mask -> `fused`, an `audio` head and an
    auxiliary output that must not be served). Its specs carry no names on purpose."""
    import keras
    import tensorflow as tf

    class MaskedMean(keras.Model):
        def input_signature(self):
            return {"ids": tf.TensorSpec([None, None], tf.int32),
                    "mask": tf.TensorSpec([None, None], tf.bool)}

        def call(self, features, training=False):
            mask = tf.cast(features["mask"], tf.float32)
            values = tf.cast(features["ids"], tf.float32) * mask
            fused = tf.reduce_sum(values, 1) / tf.maximum(tf.reduce_sum(mask, 1), 1.0)
            return {"reconstruction": values, "audio": 2.0 * fused, "fused": fused}

    return MaskedMean()


MASKED_MEAN_FEATURES = {  # the client's int32 mask; 2 counts as true like 1
    "ids": np.array([[1, 2, 3], [4, 5, 6]], np.int32),
    "mask": np.array([[1, 1, 0], [2, 0, 0]], np.int32),
}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """{variant: {"model_outputs": {name: array}, "signature": the model's
    input_signature(), "info": m3sa_export.json, "report": the serving process' report
    of it, "served": {name: array}}}, "masked-mean" likewise (the stand-in model), and
    "_process": the serving process' own report."""
    root = tmp_path_factory.mktemp("variants")
    jobs, results = [], {}

    def add(name, model, features, client_features):
        outputs = model(features, training=False)
        version_dir = export.export_model(model, str(root / "serving"), model_name=name)
        np.savez(root / f"{name}-features.npz", **client_features)
        with open(os.path.join(version_dir, "assets.extra", export.EXPORT_RECORD)) as handle:
            info = json.load(handle)
        results[name] = {"model_outputs": {k: np.asarray(v) for k, v in outputs.items()},
                         "signature": model.input_signature(), "info": info}
        jobs.append({"name": name, "version_dir": version_dir,
                     "features": str(root / f"{name}-features.npz"),
                     "outputs": str(root / f"{name}-outputs.npz")})

    for i, (name, (overrides, unimodal_labels, _)) in enumerate(VARIANTS.items()):
        model = build_tiny_model(tiny_config(**overrides), unimodal_labels, seed=i)
        features = random_features(model.input_signature(), seed=i)
        add(name, model, features, features)
    add("masked-mean", masked_mean_model(),
        dict(MASKED_MEAN_FEATURES, mask=MASKED_MEAN_FEATURES["mask"] != 0),
        MASKED_MEAN_FEATURES)

    return serve_jobs(root, jobs, results)


def test_the_serving_process_never_imports_the_project(served):
    assert served["_process"]["project_modules_loaded"] == []


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variant_serves_fused_and_exactly_its_unimodal_heads(served, variant):
    _, _, heads = VARIANTS[variant]
    result = served[variant]
    assert "error" not in result["report"], result["report"].get("error")
    expected_names = ["fused", *heads]
    # The model's own outputs decide: what it returns of the heads is what is served.
    assert [k for k in ("fused",) + ALL if k in result["model_outputs"]] == expected_names
    assert result["info"]["outputs"] == expected_names
    assert sorted(result["report"]["outputs"]) == sorted(expected_names)
    for name in expected_names:
        np.testing.assert_allclose(result["served"][name], result["model_outputs"][name],
                                   rtol=0, atol=1e-5, err_msg=f"{variant}: {name}")
        assert result["served"][name].dtype == np.float32
        assert result["served"][name].shape == (3,)


def test_auxiliary_outputs_are_not_served(served):
    # The contrastive variants return embeddings; they must stay out of the contract.
    assert any(k.startswith("embedding_") for k in served["fusion-key"]["model_outputs"])
    for variant in VARIANTS:
        assert not any(k.startswith("embedding_") for k in served[variant]["report"]["outputs"])


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_signature_inputs_are_the_models_input_signature(served, variant):
    assert {k: (v["dtype"], v["shape"]) for k, v in served[variant]["info"]["inputs"].items()} == {
        k: (spec.dtype.name, spec.shape.as_list())
        for k, spec in served[variant]["signature"].items()
    }


def test_bool_inputs_are_served_as_int32_and_any_model_exports(served):
    result = served["masked-mean"]
    assert "error" not in result["report"], result["report"].get("error")
    assert result["info"]["inputs"] == {"ids": {"dtype": "int32", "shape": [None, None]},
                                        "mask": {"dtype": "int32", "shape": [None, None]}}
    assert result["report"]["inputs"] == ["ids", "mask"]
    assert result["info"]["outputs"] == ["fused", "audio"]
    np.testing.assert_allclose(result["served"]["fused"], [1.5, 4.0], atol=1e-6)
    np.testing.assert_allclose(result["served"]["audio"], [3.0, 8.0], atol=1e-6)


def test_a_model_without_a_fused_output_is_refused(tmp_path):
    import keras

    class NoFused(keras.Model):
        def input_signature(self):
            import tensorflow as tf

            return {"x": tf.TensorSpec([None, 2], tf.float32, "x")}

        def call(self, features, training=False):
            return {"text": features["x"][:, 0]}

    model = NoFused()
    model({"x": np.zeros((1, 2), np.float32)})  # builds it, as export requires
    with pytest.raises(export.ExportError, match="no 'fused' output.*'text'"):
        export.export_model(model, str(tmp_path))
    assert os.listdir(tmp_path / "m3sa") == []
