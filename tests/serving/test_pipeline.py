"""The TFX-style pipeline end to end on tiny data: a first run executes every stage, an
unchanged rerun skips them all, a changed training parameter reruns the trainer and
what follows it only, and the blessing keeps a worse model from being pushed."""

import json
import os

import pytest

from pipelines import run
from pipelines.stages import evaluator
from tests.serving.helpers import SCALE, run_pipeline

STAGES = ("example_gen", "statistics", "trainer", "evaluator", "pusher")


@pytest.fixture(scope="module")
def history(first_pipeline_run):
    """Four more runs on the first run's root, in order:
    - again: the same arguments;
    - retrained: another learning rate (a training parameter);
    - threshold: as retrained, with a blessing threshold no model can beat;
    - original: the first run's arguments once more."""
    argv = first_pipeline_run["argv"]
    runs = {"first": first_pipeline_run}
    for name, extra in (
        ("again", []),
        ("retrained", ["--set", "learning_rate=0.003"]),
        ("threshold", ["--set", "learning_rate=0.003", "--blessing-threshold", "0"]),
        ("original", []),
    ):
        executions, log = run_pipeline(argv + extra)
        runs[name] = {"executions": executions, "log": log}
    return runs


def ran(result):
    return {name for name, e in result["executions"].items() if not e.skipped}


def evaluation(result):
    return evaluator.read_evaluation(result["executions"]["evaluator"])


def push(result):
    with open(os.path.join(result["executions"]["pusher"].path, "push.json")) as handle:
        return json.load(handle)


def serving_versions(first_pipeline_run):
    return sorted(os.listdir(os.path.join(first_pipeline_run["root"], "serving", "m3sa")))


def test_first_run_executes_every_stage_and_records_its_inputs(first_pipeline_run):
    executions = first_pipeline_run["executions"]
    assert list(executions) == list(STAGES)
    assert ran(first_pipeline_run) == set(STAGES)
    root = first_pipeline_run["root"]
    for stage in STAGES:
        assert executions[stage].path == os.path.join(root, stage, "1")
        with open(os.path.join(executions[stage].path, "execution.json")) as handle:
            record = json.load(handle)
        assert record["stage"] == stage and record["execution_id"] == 1
        assert record["artifact_fingerprint"] == executions[stage].fingerprint
    trainer = executions["trainer"].record
    assert trainer["inputs"] == {"examples": executions["example_gen"].reference()}
    assert trainer["parameters"]["config"]["epochs"] == 1
    assert executions["pusher"].record["inputs"] == {
        "blessing": executions["evaluator"].reference(),
        "model": executions["trainer"].reference(),
    }
    assert executions["example_gen"].record["parameters"]["scale"] == SCALE


def test_first_run_writes_statistics_training_evaluation_and_a_pushed_model(
    first_pipeline_run,
):
    executions = first_pipeline_run["executions"]
    with open(os.path.join(executions["statistics"].path, "statistics.json")) as handle:
        stats = json.load(handle)
    assert {s: stats["splits"][s]["examples"] for s in ("train", "valid", "test")} == {
        "train": 39, "valid": 7, "test": 21}
    audio = stats["splits"]["train"]["features"]["audio"]
    assert audio["nan"] == 0 and audio["inf"] == 0 and audio["min"] <= audio["mean"] <= audio["max"]
    lengths = stats["splits"]["train"]["features"]["audio_length"]
    assert sum(lengths["histogram"]["counts"]) == 39 and 0 <= lengths["min"] <= lengths["max"] <= 375
    assert os.path.isfile(os.path.join(executions["trainer"].path, "run", "model.keras"))
    result = evaluation(first_pipeline_run)
    assert result["blessed"] and result["baseline"] is None
    assert result["value"] == result["metrics"]["MAE"] > 0
    assert os.path.isfile(os.path.join(executions["evaluator"].path, "BLESSED"))
    assert push(first_pipeline_run)["pushed"] and push(first_pipeline_run)["version"] == 1
    assert os.path.isfile(os.path.join(first_pipeline_run["root"], "serving", "m3sa", "1",
                                       "saved_model.pb"))


def test_rerun_with_unchanged_inputs_skips_every_stage(history):
    again, first = history["again"], history["first"]
    assert ran(again) == set()
    for stage in STAGES:
        assert again["executions"][stage].path == first["executions"][stage].path
        assert f"[{stage}] skipped (inputs unchanged): reusing " + first["executions"][stage].path in again["log"]


def test_changed_training_parameter_reruns_trainer_evaluator_and_pusher_only(history):
    retrained = history["retrained"]
    assert ran(retrained) == {"trainer", "evaluator", "pusher"}
    executions = retrained["executions"]
    assert executions["trainer"].execution_id == 2
    assert executions["trainer"].record["parameters"]["config"]["learning_rate"] == 0.003
    assert executions["evaluator"].record["inputs"]["model"] == executions["trainer"].reference()


def test_blessing_threshold_blocks_the_push_and_records_why(history, first_pipeline_run):
    threshold = history["threshold"]
    assert ran(threshold) == {"evaluator", "pusher"}  # same model, new blessing rule
    result = evaluation(threshold)
    assert not result["blessed"] and "does not beat the threshold 0" in result["reason"]
    assert os.path.isfile(os.path.join(threshold["executions"]["evaluator"].path, "NOT_BLESSED"))
    pushed = push(threshold)
    assert not pushed["pushed"] and pushed["version"] is None
    assert pushed["reason"].startswith("not blessed: ")


def test_a_model_worse_than_the_last_pushed_one_is_not_pushed(history, first_pipeline_run):
    first_mae = evaluation(history["first"])["value"]
    retrained_mae = evaluation(history["retrained"])["value"]
    assert retrained_mae != first_mae
    retrained_push = push(history["retrained"])
    original = history["original"]
    assert ran(original) - {"evaluator", "pusher"} == set()  # the first model is reused
    if retrained_mae < first_mae:
        # The retrained model beat the first and was pushed; the first model, now the
        # worse one, is judged against it and kept out.
        assert retrained_push["pushed"] and retrained_push["version"] == 2
        result = evaluation(original)
        assert result["baseline"]["value"] == retrained_mae
        assert not result["blessed"] and "last pushed model" in result["reason"]
        assert not push(original)["pushed"]
    else:
        # The retrained model was the worse one and was kept out; the first model has no
        # other pushed model to beat, so its earlier blessing stands unchanged.
        result = evaluation(history["retrained"])
        assert result["baseline"]["value"] == first_mae
        assert not result["blessed"] and "last pushed model" in result["reason"]
        assert not retrained_push["pushed"]
        assert ran(original) == set()
    assert serving_versions(first_pipeline_run) == (
        ["1", "2"] if retrained_mae < first_mae else ["1"])


def test_cli_rejects_an_unknown_blessing_metric_and_bad_overrides(tmp_path, capsys):
    base = ["--dataset", "synthetic-mosi", "--pipeline-root", str(tmp_path)]
    assert run.main(base + ["--blessing-metric", "Accuracy"]) == 2
    assert "Has0_acc_2" in capsys.readouterr().err
    assert run.main(base + ["--set", "learning_rate"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    assert run.main(base + ["--set", "no_such_field=1"]) == 2
    assert "no_such_field" in capsys.readouterr().err
    assert run.main(base + ["--scale", "2"]) == 2
    assert os.listdir(tmp_path) == []
