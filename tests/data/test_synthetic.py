"""The synthetic generator: real shapes and quirks, determinism, a measurable signal."""

import numpy as np
import pytest
from sklearn.linear_model import RidgeCV

from tfrecords import specs
from tfrecords.synthetic import BayesReference, SyntheticGenerator


@pytest.mark.parametrize("name,scale", [("synthetic-mosi", 0.05), ("synthetic-sims", 0.05),
                                        ("synthetic-mosei", 0.01)])
def test_splits_have_the_real_shapes_dtypes_and_quirks(name, scale):
    spec = specs.spec_for(name)
    gen = SyntheticGenerator(name, scale=scale, seed=0)
    raw = gen.raw_dataset()
    assert set(raw) == {"train", "valid", "test"}
    zero_lengths = 0
    for split, arrays in raw.items():
        n = round(spec.split_sizes[split] * scale)
        for m in ("text", "audio", "vision"):
            assert arrays[m].shape == (n, spec.max_lengths[m], spec.feature_dims[m])
            assert arrays[m].dtype == np.float64
        assert arrays["text_bert"].shape == (n, 3, spec.max_lengths["text"])
        lo, hi = spec.label_range
        assert lo <= arrays["regression_labels"].min() <= arrays["regression_labels"].max() <= hi
        assert spec.has_unimodal_labels == ("regression_labels_T" in arrays)
        for m in ("audio", "vision"):
            lengths = arrays[f"{m}_lengths"]
            zero_lengths += int(np.sum(lengths == 0))
            past = np.arange(spec.max_lengths[m])[None, :] >= lengths[:, None]
            assert not np.any(arrays[m][past])
        assert np.isneginf(arrays["audio"]).any()
        assert not np.isnan(arrays["audio"]).any()
    assert zero_lengths > 0


def test_sims_labels_are_on_the_point_two_grid():
    raw = SyntheticGenerator("synthetic-sims", scale=0.1, seed=0).split_arrays("train")
    for key in ("regression_labels", "regression_labels_T", "regression_labels_A",
                "regression_labels_V"):
        steps = raw[key] / 0.2
        np.testing.assert_allclose(steps, np.round(steps), atol=1e-9)
    assert len(np.unique(raw["regression_labels"])) >= 7


def test_the_same_seed_gives_the_same_arrays_and_another_seed_differs():
    a = SyntheticGenerator("synthetic-sims", scale=0.02, seed=3).raw_dataset()
    b = SyntheticGenerator("synthetic-sims", scale=0.02, seed=3).raw_dataset()
    c = SyntheticGenerator("synthetic-sims", scale=0.02, seed=4).raw_dataset()
    for split in a:
        for key in ("text", "audio", "vision", "text_bert", "regression_labels"):
            np.testing.assert_array_equal(a[split][key], b[split][key])
        assert not np.array_equal(a[split]["text"], c[split]["text"])


def _masked_means(examples):
    out = {m: [] for m in specs.MODALITIES}
    labels = []
    for example in examples:
        for m in specs.MODALITIES:
            x = example[m]
            out[m].append(x.mean(axis=0) if len(x) else np.zeros(x.shape[1]))
        labels.append(example["labels"]["fused"])
    return {m: np.stack(v) for m, v in out.items()}, np.asarray(labels)


@pytest.mark.parametrize("name", ["synthetic-mosi", "synthetic-sims"])
def test_a_ridge_fit_finds_the_signal_strongest_in_text_then_vision_then_audio(name):
    gen = SyntheticGenerator(name, scale=0.3, seed=11)
    train_x, train_y = _masked_means(gen.examples("train"))
    test_x, test_y = _masked_means(gen.examples("test"))
    r2 = {}
    for m in specs.MODALITIES:
        model = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(train_x[m], train_y)
        r2[m] = model.score(test_x[m], test_y)
    assert r2["text"] > r2["vision"] > r2["audio"] > 0.05, r2


def test_the_bayes_reference_beats_a_ridge_fit_on_all_features():
    name = "synthetic-mosi"
    gen = SyntheticGenerator(name, scale=0.3, seed=5)
    train_x, train_y = _masked_means(gen.examples("train"))
    test_examples = list(gen.examples("test"))
    test_x, test_y = _masked_means(test_examples)
    stack = lambda x: np.concatenate([x[m] for m in specs.MODALITIES], axis=1)
    ridge = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(stack(train_x), train_y)
    ridge_mse = np.mean((ridge.predict(stack(test_x)) - test_y) ** 2)
    reference = BayesReference(name, seed=5)
    stats = np.stack([reference.statistics(e) for e in test_examples])
    bayes = reference.posterior_means(stats)["fused"]
    bayes_mse = np.mean((bayes - test_y) ** 2)
    assert bayes_mse < ridge_mse
    # More features never hurt the posterior mean: text alone is worse than all three.
    text_only = reference.posterior_means(stats, modalities=("text",))["fused"]
    assert bayes_mse < np.mean((text_only - test_y) ** 2)


def test_the_build_records_the_bayes_reference_on_every_split(synthetic_mosi,
                                                              synthetic_sims):
    for info in (synthetic_mosi, synthetic_sims):
        assert set(info.bayes_reference) == {"train", "valid", "test"}
    test = synthetic_mosi.bayes_reference["test"]
    assert {"Has0_acc_2", "Mult_acc_7", "MAE", "Corr"} <= set(test)
    assert set(test["single_modality"]) == {"text", "audio", "vision"}
    sims = synthetic_sims.bayes_reference["test"]
    assert {"Mult_acc_2", "Mult_acc_3", "F1_score"} <= set(sims)
    assert set(sims["unimodal_labels"]) == {"text", "audio", "vision"}
    assert 0.0 < sims["MAE"] < 1.0 and 0.0 < test["Corr"] <= 1.0
