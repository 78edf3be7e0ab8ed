"""The key-modality warm-up and the main fit share one model and one traced training
function when the warm-up's provisional key is kept; another key rebuilds the model."""

import pytest

from tests.pipelines.conftest import SCALE, TINY


def _run(name, data_dir, run_dir, monkeypatch, chosen):
    """A TINY run whose key choice is forced to `chosen`; returns (metrics, traces), with
    traces the number of times each model's `train_step` was traced, per phase."""
    from m3sa_tf import M3SAConfig
    from pipelines import key_selection, training

    monkeypatch.setattr(key_selection, "choose_key", lambda scores, modalities: chosen)
    traces = []
    build = training.build_compiled_model
    warm_build = key_selection.build_compiled_model

    def counting(builder):
        def build_and_count(*args, **kwargs):
            model = builder(*args, **kwargs)
            plain = model.train_step

            def train_step(data):  # runs only while tf.function traces it
                traces.append(id(model))
                return plain(data)

            model.train_step = train_step
            return model
        return build_and_count

    monkeypatch.setattr(training, "build_compiled_model", counting(build))
    monkeypatch.setattr(key_selection, "build_compiled_model", counting(warm_build))
    phase_traces = {}
    fit_phase = training._fit_phase

    def fit_and_count(**kwargs):
        before = len(traces)
        checkpoint = fit_phase(**kwargs)
        phase_traces[kwargs["name"]] = len(traces) - before
        return checkpoint

    monkeypatch.setattr(training, "_fit_phase", fit_and_count)
    config = M3SAConfig.for_dataset(name, **{**TINY, "epochs": 2})
    metrics = training.train_and_evaluate(config, data_dir, run_dir, scale=SCALE, verbose=0)
    return metrics, phase_traces, traces


def test_keeping_the_provisional_key_continues_the_warm_up_model_without_retracing(
        data_dir, tmp_path, monkeypatch):
    # MOSI: the harder case, where the warm-up (eq. 25 on the fused label) and the main
    # fit (eqs 26-27) differ in loss; on SIMS both phases train eq. 25 anyway.
    name = "synthetic-mosi"
    metrics, phase_traces, traces = _run(name, data_dir, str(tmp_path / "run"),
                                         monkeypatch, chosen="text")
    assert metrics["key_modality"] == "text"
    assert metrics["key_modality_selection"]["main_fit_start"] == "warm-up model continued"
    assert phase_traces["warmup"] >= 1
    assert phase_traces["main"] == 0   # the warm-up's traced function trains the main fit
    assert len(set(traces)) == 1       # one model built
    main = [r for r in metrics["epoch_log"] if r["phase"] == "main"]
    assert [r["epoch"] for r in main] == [0, 1]
    assert metrics["task"] == "contrastive"


def test_another_key_rebuilds_the_model_and_copies_the_warm_up_weights(
        data_dir, tmp_path, monkeypatch):
    metrics, phase_traces, traces = _run("synthetic-mosi", data_dir, str(tmp_path / "run"),
                                         monkeypatch, chosen="audio")
    selection = metrics["key_modality_selection"]
    assert metrics["key_modality"] == "audio"
    assert selection["main_fit_start"] == "rebuilt with the chosen key"
    assert {"multi_scale_text", "multi_scale_audio", "head_fused"} <= set(
        selection["copied_layers"])
    assert phase_traces["main"] >= 1 and len(set(traces)) == 2


def test_continuing_resets_the_optimizer_and_sets_the_main_learning_rate(data_dir):
    import numpy as np

    from m3sa_tf import M3SAConfig
    from pipelines import key_selection
    from pipelines.protocol import build_compiled_model, load_data

    config = M3SAConfig.for_dataset("synthetic-mosi", **TINY)
    datasets, info = load_data(config, data_dir, scale=SCALE, splits=("train",))
    model = build_compiled_model(config.replace(learning_rate=1e-3), info)
    model.m3sa_loss.set_key_warmup(True)
    model.fit(datasets["train"], epochs=1, verbose=0)
    assert int(model.optimizer.iterations) > 0
    key_selection.continue_after_warmup(model, config)
    assert int(model.optimizer.iterations) == 0
    assert float(model.optimizer.learning_rate) == pytest.approx(config.learning_rate)
    slots = [v for v in model.optimizer.variables if "momentum" in v.path or "velocity" in v.path]
    assert slots and all(not np.any(v.numpy()) for v in slots)
    assert not model.m3sa_loss.key_warmup and float(model.m3sa_loss.head_gradient) == 0.0
