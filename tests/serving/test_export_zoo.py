"""Every baseline of the model zoo exports and serves: a fresh process without the
project answers with `fused` (equal to the Keras model's prediction) plus exactly the
unimodal heads that model has, and never its auxiliary outputs (features, embeddings,
reconstructions).

M³SA's own variants are covered by test_export_variants.py. The models are tiny
(`build_tiny`: each class' TINY_HPARAMS; the ones that train on unimodal labels built
for SIMS) and untrained: export does not depend on the weights' values. Every model is
exported in-process once and all are served by ONE fresh process, since starting
TensorFlow is most of a serving process' time.
"""

import json
import os

import numpy as np
import pytest

from m3sa_tf.models import SERVED_OUTPUTS, get_spec, model_names
from pipelines import export
from tests.baselines.conftest import build_tiny, tiny_batch
from tests.serving.helpers import serve_jobs

BASELINES = [name for name in model_names() if name != "m3sa"]
UNIMODAL = ("text", "audio", "vision")
BATCH = 3


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """{name: {"model_outputs": {output: array}, "info": m3sa_export.json, "report":
    the serving process' report of it, "served": {output: array}}}, and "_process":
    the serving process' own report."""
    root = tmp_path_factory.mktemp("zoo")
    jobs, results = [], {}
    for i, name in enumerate(BASELINES):
        model, config, _ = build_tiny(name, seed=1111 + i)
        features = tiny_batch(batch_size=BATCH, seed=i)
        outputs = model(features, training=False)
        version_dir = export.export_model(model, str(root / "serving"), model_name=name,
                                          extra_info={"model": config.model})
        np.savez(root / f"{name}-features.npz", **features)
        with open(os.path.join(version_dir, "assets.extra", export.EXPORT_RECORD)) as handle:
            info = json.load(handle)
        results[name] = {"model_outputs": {k: np.asarray(v) for k, v in outputs.items()},
                         "info": info}
        jobs.append({"name": name, "version_dir": version_dir,
                     "features": str(root / f"{name}-features.npz"),
                     "outputs": str(root / f"{name}-outputs.npz")})
    return serve_jobs(root, jobs, results)


def _expected_outputs(model_outputs):
    return ["fused", *(m for m in UNIMODAL if m in model_outputs)]


def test_the_zoo_has_baselines_and_the_serving_process_never_imports_the_project(served):
    assert len(BASELINES) >= 10 and "m3sa" not in BASELINES
    assert served["_process"]["project_modules_loaded"] == []


@pytest.mark.parametrize("name", BASELINES)
def test_baseline_serves_its_keras_prediction(served, name):
    result = served[name]
    assert "error" not in result["report"], result["report"].get("error")
    for output in _expected_outputs(result["model_outputs"]):
        np.testing.assert_allclose(result["served"][output], result["model_outputs"][output],
                                   rtol=0, atol=1e-5, err_msg=f"{name}: {output}")
        assert result["served"][output].dtype == np.float32
        assert result["served"][output].shape == (BATCH,)


@pytest.mark.parametrize("name", BASELINES)
def test_baseline_serves_exactly_fused_and_its_unimodal_heads(served, name):
    result = served[name]
    expected = _expected_outputs(result["model_outputs"])
    # Models trained on unimodal labels have a head per modality; they must be served.
    if get_spec(name).needs_unimodal_labels:
        assert expected == ["fused", *UNIMODAL]
    assert result["info"]["outputs"] == expected
    assert result["info"]["model"] == name
    assert sorted(result["report"]["outputs"]) == sorted(expected)
    assert sorted(result["served"]) == sorted(expected)
    assert set(result["report"]["outputs"]) <= set(SERVED_OUTPUTS)


def test_auxiliary_outputs_exist_in_the_zoo_and_are_never_served(served):
    auxiliary = {name: sorted(set(served[name]["model_outputs"]) - set(SERVED_OUTPUTS))
                 for name in BASELINES}
    # Some baselines do return internal outputs (MISA's, Self-MM's features, ...): the
    # check below is not vacuous.
    assert any(auxiliary.values()), auxiliary
    for name, extra in auxiliary.items():
        assert not set(extra) & set(served[name]["report"]["outputs"]), name
        assert not set(extra) & set(served[name]["info"]["outputs"]), name
