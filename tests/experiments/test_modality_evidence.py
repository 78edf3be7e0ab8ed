"""`benchmarks/modality_evidence.py`: what each modality alone tells, ideal against
learned, and the clear refusals of its command line."""

import json

import numpy as np
import pytest

@pytest.fixture
def evidence(load_benchmark):
    return load_benchmark("modality_evidence")


def test_each_modality_is_scored_alone_against_its_own_and_the_fused_label(
        evidence, tmp_path):
    out = tmp_path / "evidence.json"
    assert evidence.main(["--dataset", "synthetic-sims-hard", "--scale", "0.05",
                          "--no-learned", "--output", str(out)]) == 0
    result = json.loads(out.read_text())["results"]["synthetic-sims-hard"]
    for m in ("text", "audio", "vision"):
        assert set(result[m]) == {"fused", "own"}  # SIMS-like data have unimodal labels
        for row in result[m].values():
            assert set(row) == {"bayes_alone", "ridge_pooled_mean"}
            assert all(0.0 <= v <= 1.0 for v in row.values())
        # Each modality's own label is what its features express: the ideal reads it
        # far better than chance even on a few dozen test clips.
        assert result[m]["own"]["bayes_alone"] > 0.75


def test_mosi_like_data_have_only_the_fused_target(evidence, tmp_path):
    out = tmp_path / "evidence.json"
    evidence.main(["--dataset", "synthetic-mosi-hard", "--scale", "0.05", "--no-learned",
                   "--output", str(out)])
    result = json.loads(out.read_text())["results"]["synthetic-mosi-hard"]
    assert {m: set(result[m]) for m in ("text", "audio", "vision")} == {
        m: {"fused"} for m in ("text", "audio", "vision")}


@pytest.mark.parametrize("kind", ["lstm_last", "conv_max", "window_conv_max"])
def test_the_learned_extractors_ignore_padding_and_are_seeded(evidence, kind):
    import keras

    model = evidence.learned_model(kind, max_length=6, width=3, seed=5)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 6, 3)).astype("float32")
    lengths = np.array([6, 3, 1, 0], "int32")
    x *= (np.arange(6)[None, :] < lengths[:, None])[..., None]
    noisy = x.copy()
    noisy[np.arange(6)[None, :] >= lengths[:, None]] = 7.0  # garbage past the lengths
    clean = keras.ops.convert_to_numpy(model([x, lengths]))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model([noisy, lengths])), clean,
                               rtol=1e-5, atol=1e-6)
    again = evidence.learned_model(kind, max_length=6, width=3, seed=5)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(again([x, lengths])), clean)


def test_run_heads_are_listed_and_a_glob_without_runs_is_refused(evidence, tmp_path):
    for seed, audio in ((1, 0.5), (2, 0.7)):
        run = tmp_path / f"seed_{seed}"
        run.mkdir()
        (run / "metrics.json").write_text(json.dumps(
            {"test": {"unimodal_accuracy": {"audio": audio, "text": 0.6}}}))
    heads = evidence.run_heads(str(tmp_path / "seed_*"))
    assert heads["audio"] == {"mean": pytest.approx(0.6), "values": [0.5, 0.7]}
    with pytest.raises(SystemExit, match="no finished run"):
        evidence.run_heads(str(tmp_path / "nothing_*"))


def test_bad_command_lines_are_refused_before_any_work(evidence, tmp_path, capsys):
    out = tmp_path / "evidence.json"
    for argv, message in (
            (["--epochs", "0"], "--epochs 0: must be at least 1"),
            (["--runs", "no-equals-sign"], "expected NAME=GLOB"),
            (["--learned", "lstm_last,gru"], "expected some of lstm_last"),
            (["--dataset", "synthetic-sims-hard", "synthetic-mosi-hard",
              "--runs", f"A={tmp_path}/*"], "exactly one --dataset")):
        with pytest.raises(SystemExit) as exit_info:
            evidence.main(argv + ["--output", str(out)])
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err
    assert not out.exists()
