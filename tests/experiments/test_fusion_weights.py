"""`benchmarks/fusion_weights.py`: per-clip fusion weights, how much they spread across
clips and how they react when one modality is swapped."""

import json

import numpy as np
import pytest

@pytest.fixture
def fusion_weights(load_benchmark):
    return load_benchmark("fusion_weights")


def test_a_gate_that_turns_a_swapped_modality_down_shows_a_negative_shift(fusion_weights):
    clean = {"text": np.array([1.0, 2.0, 1.0, 2.0]), "audio": np.array([1.0, 1.0, 1.0, 1.0])}
    record = fusion_weights.weight_record({
        "clean": clean,
        "corrupted:text": {"text": clean["text"] - 0.5, "audio": clean["audio"]},
        "corrupted:audio": {"text": clean["text"] + np.array([0.1, -0.1, 0.1, -0.1]),
                            "audio": clean["audio"]},
    })
    assert record["text"]["mean"] == pytest.approx(1.5)
    assert record["text"]["sd"] == pytest.approx(0.5)
    assert record["text"]["moved"]["text"] == pytest.approx(0.5)
    assert record["text"]["shifted"]["text"] == pytest.approx(-0.5)
    # Moving per clip without a direction: |change| without a signed shift.
    assert record["text"]["moved"]["audio"] == pytest.approx(0.1)
    assert record["text"]["shifted"]["audio"] == pytest.approx(0.0)
    assert record["audio"]["sd"] == 0.0 and record["audio"]["moved"]["text"] == 0.0
    summary = fusion_weights.summarise([record, record])
    assert summary["text"]["shifted"]["text"] == pytest.approx(-0.5)


def test_weight_records_refuse_conditions_over_different_clips(fusion_weights):
    with pytest.raises(ValueError, match="corrupted:text: 2 clips, 3 clean"):
        fusion_weights.weight_record({"clean": {"text": np.ones(3)},
                                      "corrupted:text": {"text": np.ones(2)}})


def test_a_run_without_per_clip_weights_is_refused_by_name(fusion_weights, tmp_path):
    from m3sa_tf import M3SAConfig

    run = tmp_path / "seed_1"
    run.mkdir()
    (run / "metrics.json").write_text(json.dumps({"seed": 1, "scale": 0.05,
                                                 "data_seed": 0}))
    (run / "config.json").write_text(M3SAConfig.for_dataset("synthetic-sims").to_json())
    with pytest.raises(SystemExit, match="has no per-clip weights"):
        fusion_weights.check_run(str(run))
