"""The execution rules every pipeline stage follows (pipelines.stages.execution), on
small stand-in stages that write text files, and the evaluator's blessing rule."""

import json
import os

import pytest

from m3sa_tf.config import ConfigError
from m3sa_tf.config import parse_assignments as parse_overrides
from pipelines.stages import evaluator
from pipelines.stages.execution import (
    fingerprint_tree,
    list_executions,
    run_stage,
)


def source_stage(artifact_dir, inputs, params):
    with open(os.path.join(artifact_dir, "numbers.txt"), "w") as handle:
        handle.write(" ".join(str(i) for i in range(params["count"])))
    return {"count": params["count"]}


def double_stage(artifact_dir, inputs, params):
    with open(os.path.join(inputs["numbers"].path, "numbers.txt")) as handle:
        numbers = [int(x) * params["factor"] for x in handle.read().split()]
    with open(os.path.join(artifact_dir, "scaled.txt"), "w") as handle:
        handle.write(" ".join(map(str, numbers)))
    return {"total": sum(numbers)}


def chain(root, count=3, factor=2, log=None):
    """numbers → scaled and numbers → summary (a sibling of `scaled`)."""
    log = log if log is not None else []
    numbers = run_stage(root, "numbers", source_stage, {}, {"count": count}, log=log.append)
    scaled = run_stage(root, "scaled", double_stage, {"numbers": numbers}, {"factor": factor},
                       log=log.append)
    summary = run_stage(root, "summary", double_stage, {"numbers": numbers}, {"factor": 1},
                        log=log.append)
    return {"numbers": numbers, "scaled": scaled, "summary": summary}, log


def test_a_first_run_executes_each_stage_into_execution_1_with_its_record(tmp_path):
    executions, _ = chain(str(tmp_path))
    scaled = executions["scaled"]
    assert scaled.path == str(tmp_path / "scaled" / "1") and not scaled.skipped
    record = json.loads((tmp_path / "scaled" / "1" / "execution.json").read_text())
    assert record["inputs"] == {"numbers": {"stage": "numbers", "execution_id": 1,
                                            "fingerprint": executions["numbers"].fingerprint}}
    assert record["parameters"] == {"factor": 2}
    assert record["outputs"] == {"total": 6}
    assert record["artifact_fingerprint"] == fingerprint_tree(scaled.path)
    assert sorted(os.listdir(tmp_path / "scaled")) == ["1"]  # no staging directory left


def test_a_rerun_with_unchanged_inputs_skips_every_stage(tmp_path):
    first, _ = chain(str(tmp_path))
    second, log = chain(str(tmp_path))
    assert all(e.skipped for e in second.values())
    assert [e.path for e in second.values()] == [e.path for e in first.values()]
    assert sum("skipped (inputs unchanged)" in line for line in log) == 3


def test_a_changed_parameter_reruns_its_stage_and_everything_downstream_only(tmp_path):
    chain(str(tmp_path))
    changed, _ = chain(str(tmp_path), factor=5)
    assert changed["numbers"].skipped and changed["summary"].skipped
    assert not changed["scaled"].skipped and changed["scaled"].execution_id == 2
    upstream, _ = chain(str(tmp_path), count=4, factor=5)
    assert not any(e.skipped for e in upstream.values())


def test_going_back_to_earlier_inputs_reuses_the_earlier_execution(tmp_path):
    chain(str(tmp_path))
    chain(str(tmp_path), factor=5)
    back, _ = chain(str(tmp_path))
    assert back["scaled"].skipped and back["scaled"].execution_id == 1


def test_a_failing_stage_leaves_no_execution_and_its_rerun_continues_its_work(tmp_path):
    calls = []

    def flaky(artifact_dir, inputs, params):
        calls.append(sorted(os.listdir(artifact_dir)))
        if len(calls) == 1:
            with open(os.path.join(artifact_dir, "checkpoint"), "w") as handle:
                handle.write("epoch 1")
            raise KeyboardInterrupt  # killed mid-stage
        return {}

    with pytest.raises(KeyboardInterrupt):
        run_stage(str(tmp_path), "train", flaky, {}, {"epochs": 2}, log=lambda _: None)
    assert list_executions(str(tmp_path), "train") == []
    execution = run_stage(str(tmp_path), "train", flaky, {}, {"epochs": 2}, log=lambda _: None)
    assert calls[1] == ["checkpoint"]  # the second attempt found the first one's work
    assert execution.execution_id == 1 and os.listdir(tmp_path / "train") == ["1"]


def test_an_artifact_changed_on_disk_is_not_reused(tmp_path):
    first, _ = chain(str(tmp_path))
    (tmp_path / "numbers" / "1" / "numbers.txt").write_text("7 7 7")
    second, log = chain(str(tmp_path))
    assert not second["numbers"].skipped and second["numbers"].execution_id == 2
    assert any("artifacts changed on disk" in line for line in log)


def test_fingerprint_tree_covers_file_names_and_contents_but_not_the_record(tmp_path):
    (tmp_path / "a").write_text("x")
    base = fingerprint_tree(str(tmp_path))
    (tmp_path / "execution.json").write_text("{}")
    assert fingerprint_tree(str(tmp_path)) == base
    (tmp_path / "a").write_text("y")
    assert fingerprint_tree(str(tmp_path)) != base
    (tmp_path / "a").write_text("x")
    assert fingerprint_tree(str(tmp_path)) == base
    (tmp_path / "a").rename(tmp_path / "b")
    assert fingerprint_tree(str(tmp_path)) != base


@pytest.mark.parametrize(
    "value, metric, threshold, baseline, blessed, says",
    [
        (0.8, "MAE", None, None, True, "no model was pushed before"),
        (0.8, "MAE", 0.9, None, True, "beats the threshold 0.9"),
        (0.8, "MAE", 0.7, None, False, "does not beat the threshold 0.7 (lower is better)"),
        (0.8, "MAE", None, 0.8, False, "does not beat the last pushed model's 0.8"),
        (0.7, "MAE", 0.9, 0.8, True, "beats the last pushed model's 0.8"),
        (0.6, "Has0_acc_2", 0.5, 0.65, False, "last pushed model's 0.65 (pusher execution 1; higher"),
        (0.7, "Has0_acc_2", 0.5, 0.65, True, "beats the threshold 0.5"),
        (float("nan"), "MAE", None, None, False, "not a finite number"),
    ],
)
def test_blessing_needs_to_beat_the_threshold_and_the_last_pushed_model(
    value, metric, threshold, baseline, blessed, says
):
    base = None if baseline is None else {"value": baseline, "pusher_execution": 1}
    verdict, reason = evaluator.bless(value, metric, threshold, base)
    assert verdict is blessed and says in reason


def test_overrides_are_read_as_json_values_or_strings():
    assert parse_overrides(["epochs=3", "readout=mean", 'hidden_sizes={"text": 8}',
                            "gradient_clip_norm=null"]) == {
        "epochs": 3, "readout": "mean", "hidden_sizes": {"text": 8},
        "gradient_clip_norm": None}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_overrides(["epochs"])


def test_run_cli_resolves_the_config_like_every_other_cli():
    from pipelines import run

    args = run.build_parser().parse_args(
        ["--dataset", "synthetic-sims", "--set", "hidden_sizes.text=32", "--epochs", "2"])
    options = run.options_from_args(args)
    assert options.config.hidden_sizes["text"] == 32 and options.config.epochs == 2
    args = run.build_parser().parse_args(["--dataset", "synthetic-sims", "--scale", "2"])
    with pytest.raises(ConfigError, match="--scale"):
        run.options_from_args(args)
