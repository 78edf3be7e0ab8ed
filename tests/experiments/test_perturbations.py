"""Missing and corrupted modalities at test time, and modality dropout in training
(pipelines.experiments.perturbations)."""

import numpy as np
import pytest
import tensorflow as tf

from m3sa_tf.models import build_model, model_names
from pipelines.experiments import perturbations as P
from tests.baselines.conftest import build_tiny
from tests.model.helpers import FEATURE_DIMS, tiny_batch, tiny_config
from tests.pipelines.conftest import SCALE, TINY

ALL = ("text", "audio", "vision")
TEXT_KEYS = ("text", "text_length", "text_token_ids", "text_segment_ids", "text_padding_mask")


def full_batch(batch_size=6, seed=0, with_vision=True):
    """One batch with every key of interfaces §2 (BERT inputs and ids included), and
    labels; every clip has at least one step of each modality."""
    modalities = ALL if with_vision else ("text", "audio")
    features = tiny_batch(batch_size=batch_size, seed=seed, modalities=modalities)
    rng = np.random.default_rng(seed + 100)
    steps = features["text"].shape[1]
    valid = np.arange(steps)[None, :] < features["text_length"][:, None]
    features["text_token_ids"] = (rng.integers(1, 50, size=(batch_size, steps)) * valid
                                  ).astype("int32")
    features["text_segment_ids"] = valid.astype("int32")
    features["text_padding_mask"] = valid
    features["id"] = np.array([f"clip{i}" for i in range(batch_size)])
    labels = {"fused": rng.uniform(-3, 3, size=batch_size).astype("float32"),
              "audio": rng.uniform(-1, 1, size=batch_size).astype("float32")}
    return features, labels


def as_numpy(features):
    return {k: np.asarray(v) for k, v in features.items()}


def batched_dataset(n=24, batch_size=6, seed=0, with_vision=True):
    features, labels = full_batch(n, seed, with_vision)
    return tf.data.Dataset.from_tensor_slices((features, labels)).batch(batch_size)


# ---------------------------------------------------------------------- conditions
def test_conditions_are_clean_then_each_modality_and_pair_missing_then_corrupted():
    names = [c.name for c in P.conditions()]
    assert names == [
        "clean",
        "missing:text", "missing:audio", "missing:vision",
        "missing:text+audio", "missing:text+vision", "missing:audio+vision",
        "corrupted:text", "corrupted:audio", "corrupted:vision",
        "corrupted:text+audio", "corrupted:text+vision", "corrupted:audio+vision",
    ]
    assert [c.name for c in P.conditions(("audio", "vision"))] == [
        "clean", "missing:audio", "missing:vision", "missing:audio+vision",
        "corrupted:audio", "corrupted:vision", "corrupted:audio+vision"]
    pair = P.conditions()[6]
    assert (pair.kind, pair.modalities) == ("missing", ("audio", "vision"))


def test_parse_condition_round_trips_and_rejects_junk():
    for condition in P.conditions():
        assert P.parse_condition(condition.name) == condition
    assert P.parse_condition("corrupted:vision+text").name == "corrupted:text+vision"
    for junk in ("", "missing", "missing:", "missing:smell", "broken:text", "clean:text",
                 "missing:text+text", "missing:text+audio+vision", "corrupted:text+", None):
        with pytest.raises(ValueError, match="unknown condition"):
            P.parse_condition(junk)


# ---------------------------------------------------------------------- missing
def test_missing_zeroes_exactly_the_named_modality_and_nothing_else():
    features, _ = full_batch()
    out = as_numpy(P.apply_condition(features, "missing:audio"))
    assert not out["audio"].any() and not out["audio_length"].any()
    assert out["audio"].shape == features["audio"].shape
    for key in features:
        if not key.startswith("audio"):
            np.testing.assert_array_equal(out[key], features[key], err_msg=key)
            assert out[key].dtype == features[key].dtype, key


def test_missing_text_removes_every_text_input_so_bert_and_embedding_paths_see_none():
    features, _ = full_batch()
    out = as_numpy(P.apply_condition(features, "missing:text+vision"))
    for key in TEXT_KEYS + ("vision", "vision_length"):
        assert not out[key].any(), key
    np.testing.assert_array_equal(out["audio"], features["audio"])
    np.testing.assert_array_equal(out["id"], features["id"])


def test_a_modality_the_features_lack_is_skipped():
    features, _ = full_batch(with_vision=False)
    for name in ("missing:vision", "corrupted:vision"):
        out = as_numpy(P.apply_condition(features, name))
        assert set(out) == set(features)
        for key in features:
            np.testing.assert_array_equal(out[key], features[key], err_msg=key)
    # The pair still removes the modality that is there.
    assert not as_numpy(P.apply_condition(features, "missing:audio+vision"))["audio"].any()


def test_perturbed_datasets_keep_labels_ids_and_element_spec():
    dataset = batched_dataset()
    clean = list(dataset.as_numpy_iterator())
    for condition in P.conditions():
        perturbed = P.perturb_dataset(dataset, condition, seed=3)
        assert perturbed.element_spec == dataset.element_spec, condition.name
        for (features, labels), (f0, l0) in zip(perturbed.as_numpy_iterator(), clean):
            np.testing.assert_array_equal(features["id"], f0["id"])
            for key in l0:
                np.testing.assert_array_equal(labels[key], l0[key])


# ---------------------------------------------------------------------- corrupted
def test_corrupted_gives_every_clip_another_clips_sequence_length_and_tokens():
    features, _ = full_batch(batch_size=7)
    out = as_numpy(P.apply_condition(features, "corrupted:text+audio", seed=5))
    donors = []
    for i in range(7):
        # Rows are all distinct, so the donor is the one row equal to the output's.
        matches = [j for j in range(7) if np.array_equal(out["audio"][i], features["audio"][j])]
        assert len(matches) == 1
        j = matches[0]
        assert j != i, "a clip kept its own audio"
        donors.append(j)
        # The whole modality travels together, and the pair from the same donor.
        assert out["audio_length"][i] == features["audio_length"][j]
        for key in TEXT_KEYS:
            np.testing.assert_array_equal(out[key][i], features[key][j], err_msg=key)
    assert sorted(donors) == list(range(7))  # a permutation: the marginals are kept
    for key in ("vision", "vision_length", "id"):
        np.testing.assert_array_equal(out[key], features[key], err_msg=key)


def test_corruption_is_deterministic_given_the_seed():
    for batch in (2, 3, 16):
        for seed in range(5):
            donors = P.derangement(batch, seed).numpy()
            assert sorted(donors) == list(range(batch))
            assert not np.any(donors == np.arange(batch)), (batch, seed)
            np.testing.assert_array_equal(donors, P.derangement(batch, seed).numpy())
    assert not np.array_equal(P.derangement(16, 0).numpy(), P.derangement(16, 1).numpy())
    dataset = batched_dataset()
    a = list(P.perturb_dataset(dataset, "corrupted:vision", seed=2).as_numpy_iterator())
    b = list(P.perturb_dataset(dataset, "corrupted:vision", seed=2).as_numpy_iterator())
    c = list(P.perturb_dataset(dataset, "corrupted:vision", seed=9).as_numpy_iterator())
    for (fa, _), (fb, _) in zip(a, b):
        np.testing.assert_array_equal(fa["vision"], fb["vision"])
    assert any(not np.array_equal(fa["vision"], fc["vision"]) for (fa, _), (fc, _) in zip(a, c))


# ---------------------------------------------------------------------- models
def predict(model, features):
    inputs = {k: features[k] for k in model.input_signature()}
    return model(inputs, training=False)["fused"].numpy()


def test_removing_a_modality_changes_a_model_that_uses_it_and_no_other():
    features, _ = full_batch(batch_size=6, seed=1)
    text_audio = build_model(tiny_config(modalities=("text", "audio"), key_modality="text"),
                             FEATURE_DIMS, False)
    base = predict(text_audio, features)
    for name in ("missing:vision", "corrupted:vision"):
        np.testing.assert_array_equal(
            predict(text_audio, as_numpy(P.apply_condition(features, name, seed=1))), base)
    for name in ("missing:audio", "corrupted:audio", "missing:text"):
        changed = predict(text_audio, as_numpy(P.apply_condition(features, name, seed=1)))
        assert np.all(np.isfinite(changed)), name
        assert np.abs(changed - base).max() > 1e-6, name


@pytest.mark.parametrize("name", model_names())
def test_every_model_of_the_zoo_copes_with_each_condition(name):
    """Length 0 everywhere in a modality (as real data has for some clips) gives
    finite predictions, and every condition moves them."""
    if name == "m3sa":
        model = build_model(tiny_config(), FEATURE_DIMS, False)
    else:
        model = build_tiny(name)[0]
    features, _ = full_batch(batch_size=4, seed=2)
    base = predict(model, features)
    for condition in P.conditions()[1:]:
        out = predict(model, as_numpy(P.apply_condition(features, condition, seed=1)))
        assert np.all(np.isfinite(out)), condition.name
        assert np.abs(out - base).max() > 1e-6, condition.name


def test_the_embedding_text_path_sees_missing_and_corrupted_text():
    model = build_model(tiny_config(text_path="embedding", vocab_size=60,
                                    word_embedding_dim=4), FEATURE_DIMS, False)
    assert "text" not in model.input_signature()  # it reads the token ids
    features, _ = full_batch(batch_size=4, seed=2)
    base = predict(model, features)
    for condition in ("missing:text", "corrupted:text"):
        out = predict(model, as_numpy(P.apply_condition(features, condition, seed=1)))
        assert np.all(np.isfinite(out)) and np.abs(out - base).max() > 1e-6, condition


def test_evaluate_conditions_scores_every_condition_with_one_trace():
    model = build_model(tiny_config(), FEATURE_DIMS, False)
    dataset = batched_dataset(n=20, batch_size=8, seed=4)  # a last batch of 4
    predictions = {}
    results = P.evaluate_conditions(model, dataset, "mosi", ALL, P.conditions(),
                                    seed=1, predictions=predictions)
    names = [c.name for c in P.conditions()]
    assert list(results) == names and list(predictions) == names
    for name in names:
        assert {"Has0_acc_2", "MAE", "Corr"} <= set(results[name]), name
        assert np.isfinite(results[name]["MAE"]), name
        assert list(predictions[name]["id"]) == [f"clip{i}" for i in range(20)]
    assert model._m3sa_forward.experimental_get_tracing_count() == 1
    from pipelines.protocol import evaluate_predictions, predict_dataset
    clean = evaluate_predictions(predict_dataset(model, dataset), "mosi", ALL)
    assert results["clean"]["MAE"] == pytest.approx(clean["MAE"])
    assert results["missing:text"]["MAE"] != pytest.approx(clean["MAE"])


# ---------------------------------------------------------------------- dropout
def dropped(dataset, modalities=ALL):
    """Per clip and modality, whether the modality was removed (length 0), [N, M]."""
    rows = [np.stack([f[f"{m}_length"] == 0 for m in modalities], axis=1)
            for f, _ in dataset.as_numpy_iterator()]
    return np.concatenate(rows)


@pytest.fixture(scope="module")
def many_clips():
    features, labels = full_batch(batch_size=50, seed=7)
    return tf.data.Dataset.from_tensor_slices((features, labels)).repeat(40).batch(50)


def test_modality_dropout_keeps_the_rate_and_never_drops_a_whole_clip(many_clips):
    rate = 0.5
    out = P.apply_modality_dropout(many_clips, rate, ALL, seed=1)
    assert out.element_spec == many_clips.element_spec
    drops = dropped(out)
    assert drops.shape == (2000, 3)
    assert not drops.all(axis=1).any()
    # With the rescue of all-dropped clips the expected rate is r - r**M / M.
    expected = rate - rate ** 3 / 3
    assert drops.mean() == pytest.approx(expected, abs=0.02)
    for column in drops.T:
        assert column.mean() == pytest.approx(expected, abs=0.04)
    # A dropped modality is removed as "missing" removes it; the rest is untouched.
    original = next(many_clips.as_numpy_iterator())
    features, labels = next(out.as_numpy_iterator())
    for i, m in enumerate(ALL):
        gone = features[f"{m}_length"] == 0
        assert not features[m][gone].any()
        np.testing.assert_array_equal(features[m][~gone], original[0][m][~gone])
    assert not features["text_token_ids"][features["text_length"] == 0].any()
    np.testing.assert_array_equal(labels["fused"], original[1]["fused"])
    np.testing.assert_array_equal(features["id"], original[0]["id"])


def test_modality_dropout_is_seeded_and_changes_every_epoch(many_clips):
    small = many_clips.take(4)
    first = P.apply_modality_dropout(small, 0.4, ALL, seed=3)
    again = P.apply_modality_dropout(small, 0.4, ALL, seed=3)
    other = P.apply_modality_dropout(small, 0.4, ALL, seed=4)
    # Each call of dropped() is one pass (one epoch) over the dataset.
    first_epochs = [dropped(first) for _ in range(2)]
    again_epochs = [dropped(again) for _ in range(2)]
    np.testing.assert_array_equal(first_epochs[0], again_epochs[0])
    np.testing.assert_array_equal(first_epochs[1], again_epochs[1])
    assert not np.array_equal(first_epochs[0], dropped(other))
    # The next epoch drops other modalities.
    assert not np.array_equal(first_epochs[0], first_epochs[1])


def test_modality_dropout_only_touches_the_named_modalities_and_rate_zero_is_identity(
        many_clips):
    assert P.apply_modality_dropout(many_clips, 0.0, ALL, seed=1) is many_clips
    drops = dropped(P.apply_modality_dropout(many_clips.take(8), 0.6, ("text", "audio"),
                                             seed=1))
    assert not drops[:, 2].any()
    assert drops[:, :2].any() and not drops[:, :2].all(axis=1).any()
    with pytest.raises(ValueError, match="must be in"):
        P.apply_modality_dropout(many_clips, 1.0, ALL, seed=1)


@pytest.fixture(scope="module")
def mosi_dir(tmp_path_factory):
    import tfrecords

    path = str(tmp_path_factory.mktemp("data"))
    tfrecords.build_dataset("synthetic-mosi", path, scale=SCALE, seed=0)
    return path


def test_training_with_modality_dropout_runs_through_the_driver(mosi_dir, tmp_path,
                                                                monkeypatch):
    from m3sa_tf import M3SAConfig
    from pipelines import training

    calls = []
    real = P.apply_modality_dropout

    def spy(dataset, rate, modalities, *, seed):
        calls.append((rate, tuple(modalities), seed))
        return real(dataset, rate, modalities, seed=seed)

    monkeypatch.setattr(P, "apply_modality_dropout", spy)
    config = M3SAConfig.for_dataset(
        "synthetic-mosi", **dict(TINY, epochs=1, key_modality="text"),
        modalities=("text", "audio"), modality_dropout=0.3, seed=5)
    metrics = training.train_and_evaluate(config, mosi_dir, str(tmp_path / "run"),
                                          scale=SCALE, verbose=0)
    assert calls == [(0.3, ("text", "audio"), 5)]
    assert metrics["epochs_trained"] == 1
    assert np.isfinite(metrics["test"]["MAE"])
    assert metrics["hyperparameters"]["modality_dropout"] == 0.3
