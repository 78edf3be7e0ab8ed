"""Judging per-clip gating: shifts under a swapped modality, model against peer, with the
ideal predictor deciding where "moves less" is a fair demand."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from pipelines.experiments.gating import gating_verdict, shift_record

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def record(**relative_shifts):
    """A `shift_record` with the given relative shifts for "corrupted:<modality>"."""
    out = {"clean": {"accuracy": 0.7}}
    for modality, value in relative_shifts.items():
        out[f"corrupted:{modality}"] = {"shift": value, "relative_shift": value,
                                        "accuracy": 0.6}
    return out


def test_shift_is_the_mean_absolute_change_relative_to_the_clean_spread():
    clean = np.array([0.0, 1.0, 2.0, 3.0])
    moved = clean + np.array([1.0, -1.0, 0.0, 2.0])
    out = shift_record({"clean": clean, "corrupted:audio": moved},
                       {"clean": 0.75, "corrupted:audio": 0.5})
    assert out["corrupted:audio"]["shift"] == pytest.approx(1.0)
    assert out["corrupted:audio"]["relative_shift"] == pytest.approx(1.0 / np.std(clean))
    assert out["corrupted:audio"]["accuracy"] == 0.5
    assert out["clean"] == {"accuracy": 0.75}


def test_shift_record_refuses_mismatched_or_non_finite_predictions():
    with pytest.raises(ValueError, match="same clips"):
        shift_record({"clean": [0.0, 1.0], "missing:text": [0.0]},
                     {"clean": 1.0, "missing:text": 1.0})
    with pytest.raises(ValueError, match="NaN"):
        shift_record({"clean": [0.0, 1.0], "missing:text": [0.0, float("nan")]},
                     {"clean": 1.0, "missing:text": 1.0})
    with pytest.raises(ValueError, match="'clean'"):
        shift_record({"missing:text": [0.0]}, {"missing:text": 1.0})


def test_a_model_that_moves_less_on_every_seed_passes():
    model = {1: record(audio=0.10, vision=0.20), 2: record(audio=0.12, vision=0.25)}
    peer = {1: record(audio=0.30, vision=0.40), 2: record(audio=0.35, vision=0.45)}
    verdict = gating_verdict(model, peer, ["audio", "vision"])
    assert verdict["passed"]
    assert verdict["seeds"] == [1, 2]
    audio = verdict["modalities"]["audio"]
    assert audio["model"] == pytest.approx(0.11) and audio["peer"] == pytest.approx(0.325)
    assert audio["mean_difference"] == pytest.approx(-0.215) and audio["passes"]


def test_a_model_that_moves_more_for_one_modality_fails():
    model = {1: record(audio=0.50, vision=0.20), 2: record(audio=0.45, vision=0.25)}
    peer = {1: record(audio=0.30, vision=0.40), 2: record(audio=0.35, vision=0.45)}
    verdict = gating_verdict(model, peer, ["audio", "vision"])
    assert not verdict["passed"]
    assert not verdict["modalities"]["audio"]["passes"]
    assert verdict["modalities"]["vision"]["passes"]


def test_a_modality_the_ideal_follows_more_than_the_peer_is_not_judged():
    # The Bayes reference moves more than the peer when the text is swapped: a model
    # should follow a swapped-in text, so moving more is no failure there.
    model = {1: record(text=1.0, audio=0.1), 2: record(text=1.1, audio=0.1)}
    peer = {1: record(text=0.7, audio=0.3), 2: record(text=0.7, audio=0.3)}
    bayes = record(text=0.9, audio=0.2)
    verdict = gating_verdict(model, peer, ["text", "audio"], reference=bayes)
    assert not verdict["modalities"]["text"]["expected"]
    assert not verdict["modalities"]["text"]["passes"]
    assert verdict["modalities"]["audio"]["expected"]
    assert verdict["passed"]
    # Without the reference every modality is judged, and the text fails.
    assert not gating_verdict(model, peer, ["text", "audio"])["passed"]
    # Nothing judged is no pass.
    assert not gating_verdict(model, peer, ["text"], reference=bayes)["passed"]


def test_runs_are_paired_by_seed_and_unpaired_seeds_are_left_out():
    model = {1: record(audio=0.1), 2: record(audio=0.2), 3: record(audio=9.0)}
    peer = {1: record(audio=0.3), 2: record(audio=0.4), 4: record(audio=0.0)}
    verdict = gating_verdict(model, peer, ["audio"])
    assert verdict["seeds"] == [1, 2]
    assert verdict["modalities"]["audio"]["mean_difference"] == pytest.approx(-0.2)
    assert verdict["modalities"]["audio"]["p_value"] == 0.0  # the same difference twice


def test_bad_comparisons_are_refused_with_what_was_expected():
    with pytest.raises(ValueError, match="no seed in common"):
        gating_verdict({1: record(audio=0.1)}, {2: record(audio=0.1)}, ["audio"])
    with pytest.raises(ValueError, match="'corrupted:vision'"):
        gating_verdict({1: record(audio=0.1)}, {1: record(audio=0.1)}, ["vision"])
    with pytest.raises(ValueError, match="kind="):
        gating_verdict({1: record(audio=0.1)}, {1: record(audio=0.1)}, ["audio"],
                       kind="swapped")


def gating_cli(tmp_path, *args):
    for name in ("a", "b"):
        run = tmp_path / name / "seed_1"
        run.mkdir(parents=True)
        (run / "metrics.json").write_text(json.dumps({"seed": 1, "dataset": "x"}))
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "gating_check.py"),
         "--group", f"A={tmp_path / 'a' / 'seed_*'}", "--group", f"B={tmp_path / 'b' / 'seed_*'}",
         "--output", str(tmp_path / "out.json"), *args],
        capture_output=True, text=True, cwd=ROOT)


def test_gating_check_refuses_a_comparison_of_unknown_groups(tmp_path):
    result = gating_cli(tmp_path, "--compare", "A,C")
    assert result.returncode == 2
    assert "two of the groups' names ['A', 'B']" in result.stderr
    assert not (tmp_path / "out.json").exists()


def test_gating_check_refuses_a_compared_group_with_two_runs_of_one_seed(tmp_path):
    extra = tmp_path / "a" / "seed_1_again"
    extra.mkdir(parents=True)
    (extra / "metrics.json").write_text(json.dumps({"seed": 1, "dataset": "x"}))
    result = gating_cli(tmp_path, "--compare", "A,B")
    assert result.returncode == 2
    assert "group 'A' needs one run per seed" in result.stderr
    assert not (tmp_path / "out.json").exists()


def test_gating_check_require_needs_a_comparison(tmp_path):
    result = gating_cli(tmp_path, "--require")
    assert result.returncode == 2 and "--require needs --compare" in result.stderr


def test_gating_check_writes_each_verdict_and_require_fails_a_model_that_moves_more(
        tmp_path, monkeypatch, load_benchmark):
    module = load_benchmark("gating_check")
    shifts = {"a": 0.1, "b": 0.3, "c": 0.5}  # per group: a moves least, c most
    for name in shifts:
        for seed in (1, 2):
            run = tmp_path / name / f"seed_{seed}"
            run.mkdir(parents=True)
            (run / "metrics.json").write_text(json.dumps({"seed": seed}))
    monkeypatch.setattr(module, "check_run", lambda run_dir, data_dir=None: record(
        audio=shifts[os.path.basename(os.path.dirname(run_dir))]))
    groups = [arg for name in shifts
              for arg in ("--group", f"{name.upper()}={tmp_path / name / 'seed_*'}")]
    output = tmp_path / "out.json"
    assert module.main(groups + ["--compare", "A,B", "--require",
                                 "--output", str(output)]) == 0
    assert module.main(groups + ["--compare", "A,B", "--compare", "C,B", "--require",
                                 "--output", str(output)]) == 1
    verdicts = json.loads(output.read_text())["verdicts"]
    assert [(v["model"], v["peer"], v["passed"]) for v in verdicts] == [
        ("A", "B", True), ("C", "B", False)]
    assert verdicts[1]["modalities"]["audio"]["mean_difference"] == pytest.approx(0.2)
