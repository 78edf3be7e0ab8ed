"""An experiment killed and rerun trains only what was missing; the summary's
comparisons are the paired t-test and the clip bootstrap computed directly; base
settings that would change the reference are refused."""

import os

import numpy as np
import pytest
from scipy import stats

from msa_core.io import read_csv
from pipelines import experiment, training
from pipelines.experiments import report, significance
from pipelines.experiments.runner import ExperimentSettings, resolve_cells
from tests.experiments.helpers import (SEEDS, TrainingSpy, argv, check_outputs,
                                       runs_dir_for, settings_of)


def test_a_killed_experiment_resumes_without_retraining_finished_runs(data_dir, tmp_path,
                                                                       monkeypatch):
    """The `extractor` experiment (LSTM and linear cells, two seeds: four runs) is
    stopped by Ctrl-C before its third run, then rerun with the same command."""
    output_dir, runs_dir = str(tmp_path / "extractor"), str(tmp_path / "runs")
    first = TrainingSpy(interrupt_at=3)
    monkeypatch.setattr(training, "train_and_evaluate", first)
    assert experiment.main(argv("extractor", data_dir, output_dir, runs_dir)) == 130
    assert len(first.runs) == 2
    partial = read_csv(os.path.join(output_dir, report.RESULTS_FILE))
    assert len(partial) == 2  # the report covers what finished before the kill
    second = TrainingSpy()
    monkeypatch.setattr(training, "train_and_evaluate", second)
    assert experiment.main(argv("extractor", data_dir, output_dir, runs_dir)) == 0
    assert len(second.runs) == 2 and not set(second.runs) & set(first.runs)
    check_outputs(settings_of("extractor", output_dir, runs_dir, data_dir))
    third = TrainingSpy()
    monkeypatch.setattr(training, "train_and_evaluate", third)
    assert experiment.main(argv("extractor", data_dir, output_dir, runs_dir)) == 0
    assert third.runs == []  # a finished experiment trains nothing


def test_the_summary_comparisons_are_the_paired_test_and_the_clip_bootstrap(
        data_dir, runs_dirs, tmp_path):
    name = "multiscale"
    output_dir = str(tmp_path / name)
    runs_dir = runs_dir_for(name, runs_dirs)
    assert experiment.main(argv(name, data_dir, output_dir, runs_dir)) == 0
    settings = settings_of(name, output_dir, runs_dir, data_dir)
    cells = resolve_cells(settings)
    built = report.build_report(settings, cells)
    reference, other = cells[0][0], cells[1][0]
    rows = read_csv(os.path.join(output_dir, report.RESULTS_FILE))
    for metric in ("Has0_acc_2", "MAE", "Corr"):
        per_seed = {c.key: [float(r[f"test_{metric}"]) for r in sorted(
            (r for r in rows if r["cell_key"] == c.key), key=lambda r: int(r["seed"]))]
            for c in (reference, other)}
        result = built["comparisons"][f"{other.key}|clean|{metric}"]
        differences = np.subtract(per_seed[other.key], per_seed[reference.key])
        assert result["test"]["mean_difference"] == pytest.approx(differences.mean())
        if np.ptp(differences) > 1e-9:
            direct = stats.ttest_rel(per_seed[other.key], per_seed[reference.key])
            assert result["test"]["p_value"] == pytest.approx(direct.pvalue)
        # The bootstrap over the runs' own test predictions, recomputed directly.
        predictions = {}
        for c in (reference, other):
            stacked = []
            for seed in SEEDS:
                path = os.path.join(settings.run_dir(c, seed), "predictions", "test.csv")
                records = sorted(read_csv(path), key=lambda r: r["id"])
                labels = np.array([float(r["label"]) for r in records])
                stacked.append([float(r["fused"]) for r in records])
            predictions[c.key] = np.array(stacked)
        direct = significance.bootstrap_difference(
            labels, predictions[reference.key], predictions[other.key], metric, "mosi",
            n_resamples=200, seed=0)
        assert result["interval"]["low"] == pytest.approx(direct["low"])
        assert result["interval"]["high"] == pytest.approx(direct["high"])


def test_a_base_setting_that_would_change_the_reference_is_refused(data_dir, tmp_path,
                                                                    capsys):
    args = argv("extractor", data_dir, str(tmp_path / "e"), str(tmp_path / "r"))
    code = experiment.main(args + ["--set", 'extractor="gru"'])
    assert code == 2
    assert "extractor" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "r")


def test_settings_name_the_selected_cells(data_dir, tmp_path):
    settings = settings_of("fusion", str(tmp_path / "f"), str(tmp_path / "r"), data_dir)
    assert isinstance(settings, ExperimentSettings)
    assert [c.label for c, _ in resolve_cells(settings)] == ["auto key", "Early"]
