"""The hard synthetic family: real shapes and quirks, determinism, real-like lengths, SIMS
unimodal labels that differ from the fused one, an exact Bayes reference (checked against
brute-force enumeration) that a ridge on pooled means cannot approach, and the easy
family left bit-for-bit unchanged."""

import hashlib
import itertools
import math

import numpy as np
import pytest

from msa_core.constants import DATASET_FAMILIES
from tfrecords import specs
from tfrecords import synthetic_hard as hard
from tfrecords.mmsa_pickle import validate_splits
from tfrecords.synthetic import SyntheticGenerator, generator_for

HARD = ("synthetic-mosi-hard", "synthetic-sims-hard", "synthetic-mosei-hard")


def _arrays_hash(raw):
    h = hashlib.sha256()
    for split in ("train", "valid", "test"):
        for key in sorted(raw[split]):
            v = raw[split][key]
            h.update(f"{split}/{key}/{v.shape}/{v.dtype}".encode())
            if v.dtype == object:
                h.update("\x00".join(map(str, v.tolist())).encode())
            else:
                h.update(np.ascontiguousarray(v).tobytes())
    return h.hexdigest()


# Computed with the generator of commit 1c0d112, before the hard family existed.
EASY_HASHES = {
    ("synthetic-mosi", 0.01): "029b8c10ffe7c1d795132fbb45015e1ae2164d284249b45dbbd2c481481a84bc",
    ("synthetic-sims", 0.01): "884023717248dac5222322f9e7a68041bb71f0aa8155f129ab684bd689430fbc",
    ("synthetic-mosei", 0.002): "39e56f72a5cca7d0be7f475dd51f6306db80c69494a44266d7ff6711a1026ef9",
}
EASY_POSTERIOR_HASHES = {  # test split, posterior means rounded to 1e-8, sorted keys
    "synthetic-mosi": "46e287e9e8689e6b32e535aa39a6fc20829b5738f2df7238d85f6e3d95980a92",
    "synthetic-sims": "034856a871434086bc3a2d10b3b8ae8cf7448384bbe45446aa283706d897b7e5",
}


@pytest.mark.parametrize("name,scale", sorted(EASY_HASHES))
def test_the_easy_family_is_bit_for_bit_unchanged(name, scale):
    gen = SyntheticGenerator(name, scale=scale, seed=0)
    assert _arrays_hash(gen.raw_dataset()) == EASY_HASHES[(name, scale)]
    assert type(generator_for(name, scale, 0)) is SyntheticGenerator
    if name in EASY_POSTERIOR_HASHES:
        ref = gen.bayes_reference()
        stats = np.stack([ref.statistics(e) for e in gen.examples("test")])
        pm = ref.posterior_means(stats)
        digest = hashlib.sha256(
            np.round(np.stack([pm[k] for k in sorted(pm)]), 8).tobytes()).hexdigest()
        assert digest == EASY_POSTERIOR_HASHES[name]


def test_names_families_and_builder_names():
    assert specs.tfds_name("synthetic-sims-hard") == "synthetic_sims_hard"
    assert specs.base_name("synthetic-mosei-hard") == "mosei"
    assert DATASET_FAMILIES["synthetic-sims-hard"] == "sims"
    assert DATASET_FAMILIES["synthetic-mosei-hard"] == "mosi"
    assert specs.is_hard("synthetic-mosi-hard") and not specs.is_hard("synthetic-mosi")
    assert isinstance(generator_for("synthetic-mosi-hard", 0.01),
                      hard.HardSyntheticGenerator)
    with pytest.raises(ValueError, match="hard family"):
        SyntheticGenerator("synthetic-mosi-hard", 0.01)
    from m3sa_tf.config import M3SAConfig

    assert M3SAConfig.for_dataset("synthetic-sims-hard").family == "sims"
    assert M3SAConfig.for_dataset("synthetic-mosi-hard").family == "mosi"


@pytest.mark.parametrize("name,scale", [("synthetic-mosi-hard", 0.02),
                                        ("synthetic-sims-hard", 0.02),
                                        ("synthetic-mosei-hard", 0.002)])
def test_shapes_dtypes_quirks_and_validation(name, scale):
    spec = specs.spec_for(name)
    raw = hard.HardSyntheticGenerator(name, scale=scale, seed=0).raw_dataset()
    zero_lengths = 0
    for split, arrays in raw.items():
        n = max(2, round(spec.split_sizes[split] * scale))
        for m in specs.MODALITIES:
            assert arrays[m].shape == (n, spec.max_lengths[m], spec.feature_dims[m])
            assert arrays[m].dtype == np.float64
        assert arrays["text_bert"].shape == (n, 3, spec.max_lengths["text"])
        ids = arrays["text_bert"][:, 0]
        assert np.all(ids[:, 0] == 101)
        lo, hi = spec.label_range
        assert lo <= arrays["regression_labels"].min() <= arrays["regression_labels"].max() <= hi
        assert spec.has_unimodal_labels == ("regression_labels_T" in arrays)
        for m in ("audio", "vision"):
            lengths = arrays[f"{m}_lengths"]
            zero_lengths += int(np.sum(lengths == 0))
            past = np.arange(spec.max_lengths[m])[None, :] >= lengths[:, None]
            assert not np.any(arrays[m][past])
        assert not np.isnan(arrays["audio"]).any()
    assert any(np.isneginf(a["audio"]).any() for a in raw.values())
    # Through the same validation as a real pickle.
    validated = validate_splits(raw, file="<test>", name=name)
    example = next(validated["train"].examples())
    assert set(example["labels"]) == ({"fused"} | (set(specs.MODALITIES)
                                                   if spec.has_unimodal_labels else set()))
    assert zero_lengths > 0 or scale < 0.01


def test_the_same_seed_gives_the_same_arrays_and_another_seed_differs():
    a = hard.HardSyntheticGenerator("synthetic-mosi-hard", 0.004, seed=3).raw_dataset()
    b = hard.HardSyntheticGenerator("synthetic-mosi-hard", 0.004, seed=3).raw_dataset()
    c = hard.HardSyntheticGenerator("synthetic-mosi-hard", 0.004, seed=4).raw_dataset()
    assert _arrays_hash(a) == _arrays_hash(b) != _arrays_hash(c)


def test_audio_and_vision_lengths_have_the_real_mean():
    gen = hard.HardSyntheticGenerator("synthetic-mosi-hard", scale=1.0, seed=0)
    plan = gen._split_plan("train")  # latents only: cheap at full size
    audio, vision = plan["length_audio"], plan["length_vision"]
    assert abs(audio.mean() - 223) < 10, audio.mean()
    assert abs(vision.mean() - 288) < 12, vision.mean()
    assert 0.01 < np.mean(audio == 0) < 0.06 and np.mean(audio == 375) > 0.03
    # The exact mean of the clipped log-normal matches the target fraction.
    d = hard.HARD_DESIGNS["mosi"]
    mu = hard.lognormal_location(223 / 375, d.length_sigma, d.zero_length_rate)
    assert math.isclose((1 - d.zero_length_rate)
                        * hard._clipped_lognormal_mean(mu, d.length_sigma), 223 / 375,
                        rel_tol=1e-9)


def test_sims_unimodal_labels_differ_from_the_fused_one():
    # The labels of the stored arrays are those of the split's latent plan ...
    small = hard.HardSyntheticGenerator("synthetic-sims-hard", 0.01, seed=0)
    arrays, plan = small.split_arrays("valid"), small._split_plan("valid")
    np.testing.assert_array_equal(arrays["regression_labels"],
                                  small.table.fused[plan["state"]])
    np.testing.assert_array_equal(arrays["regression_labels_A"],
                                  small.table.values[plan["value_audio"]])
    # ... whose statistics at full size (latents only: cheap) are checked here.
    gen = hard.HardSyntheticGenerator("synthetic-sims-hard", 1.0, seed=0)
    plan = gen._split_plan("train")
    raw = {"regression_labels": gen.table.fused[plan["state"]]}
    for m, key in (("text", "T"), ("audio", "A"), ("vision", "V")):
        raw[f"regression_labels_{key}"] = gen.table.values[plan[f"value_{m}"]]
    fused = raw["regression_labels"]
    for key in ("regression_labels", "regression_labels_T", "regression_labels_A",
                "regression_labels_V"):
        np.testing.assert_allclose(raw[key] / 0.2, np.round(raw[key] / 0.2), atol=1e-9)
    corr = {}
    for key in "TAV":
        y = raw[f"regression_labels_{key}"]
        assert np.mean(y != fused) > 0.3
        corr[key] = np.corrcoef(y, fused)[0, 1]
    assert corr["T"] > corr["V"] > corr["A"] > 0.1, corr
    # The fused label is not the rounded mean of the unimodal ones.
    mean = np.clip(np.round((raw["regression_labels_T"] + raw["regression_labels_A"]
                             + raw["regression_labels_V"]) / 3 / 0.2) * 0.2, -1, 1)
    assert np.mean(np.abs(mean - fused) > 1e-9) > 0.3


def _brute_force_posterior_mean(ref, example):
    """E[fused | x] by enumerating every latent (state, each modality's expressed value,
    window position, baseline sign) with the full Gaussian likelihood of every step (the
    noise covariance P Pᵀ + τ² I inverted numerically for the wide modalities; entries
    that are 0, the raw -inf, left out for the narrow ones) and the token likelihood."""
    table, design = ref.table, ref.design
    ids = np.asarray(example["text_token_ids"])
    pos = (ids >= 2000) & (ids < 2050)
    neg = (ids >= 2050) & (ids < 2100)
    logs = {}
    for m in specs.MODALITIES:
        x = np.asarray(example[m], dtype=np.float64)
        geo = ref.geometry[m]
        w = geo.direction
        a, b = ref.amplitudes[m]
        starts, width = hard.window_starts(m, len(x), design.window[m])
        if geo.embedding is not None:
            cov = geo.embedding @ geo.embedding.T + geo.noise ** 2 * np.eye(len(w))
            cov_inv_w = np.linalg.solve(cov, w)
        out = np.zeros(len(table.values))
        for v, value in enumerate(table.values):
            u = value / table.signal_scale
            terms = []
            for j, zeta in itertools.product(range(hard.POSITIONS), (-1.0, 1.0)):
                level = np.full(len(x), b * zeta)
                level[starts[j]:starts[j] + width] = a * u
                if geo.embedding is None:
                    resid = (x - level[:, None] * w[None, :]) * (x != 0)
                    ll = -0.5 * np.sum(resid ** 2)
                else:  # -½ (x - l w)ᵀ Σ⁻¹ (x - l w), without the xᵀ Σ⁻¹ x constant
                    ll = np.sum(level * (x @ cov_inv_w)) - 0.5 * np.sum(level ** 2) * (
                        w @ cov_inv_w)
                if m == "text":
                    inside = np.zeros(len(ids), bool)
                    inside[starts[j]:starts[j] + width] = True
                    p = 1 / (1 + math.exp(-design.token_slope * u))
                    ll += (np.sum(pos & inside) * math.log(p)
                           + np.sum(neg & inside) * math.log(1 - p)
                           + np.sum((pos | neg) & ~inside) * math.log(0.5))
                terms.append(ll + math.log(1 / (2 * hard.POSITIONS)))
            out[v] = np.logaddexp.reduce(terms)
        logs[m] = out
    logp = np.log(table.prior).copy()
    for k in range(len(table.prior)):
        for m in specs.MODALITIES:
            with np.errstate(divide="ignore"):
                logp[k] += np.logaddexp.reduce(np.log(table.transition[m][k]) + logs[m])
    post = np.exp(logp - logp.max())
    post /= post.sum()
    return float(post @ table.fused)


@pytest.mark.parametrize("name", ["synthetic-sims-hard", "synthetic-mosi-hard"])
def test_the_bayes_reference_equals_brute_force_enumeration(name):
    gen = hard.HardSyntheticGenerator(name, scale=0.002, seed=2)
    ref = gen.bayes_reference()
    examples = list(gen.examples("valid"))[:2]
    stats = np.stack([ref.statistics(e) for e in examples])
    fast = ref.posterior_means(stats)["fused"]
    for e, f in zip(examples, fast):
        assert math.isclose(f, _brute_force_posterior_mean(ref, e), rel_tol=1e-7,
                            abs_tol=1e-9)


def test_posterior_of_the_unimodal_labels_sums_to_a_distribution():
    gen = hard.HardSyntheticGenerator("synthetic-sims-hard", scale=0.01, seed=0)
    ref = gen.bayes_reference()
    stats = np.stack([ref.statistics(e) for e in gen.examples("test")])
    means = ref.posterior_means(stats)
    for m in ("fused",) + specs.MODALITIES:
        assert np.all(np.abs(means[m]) <= 1.0 + 1e-9)
    # With no features, the posterior means are the prior means.
    prior = ref.posterior_means(stats[:1], modalities=())
    assert math.isclose(prior["fused"][0], float(ref.table.prior @ ref.table.fused))


def _masked_means(examples):
    rows, labels = [], []
    for e in examples:
        rows.append(np.concatenate([e[m].mean(axis=0) if len(e[m]) else np.zeros(e[m].shape[1])
                                    for m in specs.MODALITIES]))
        labels.append(e["labels"]["fused"])
    return np.stack(rows), np.asarray(labels)


def test_the_bayes_reference_beats_a_ridge_on_pooled_means_clearly():
    from sklearn.linear_model import RidgeCV

    gen = hard.HardSyntheticGenerator("synthetic-mosi-hard", scale=0.25, seed=5)
    train_x, train_y = _masked_means(gen.examples("train"))
    test_examples = list(gen.examples("test"))
    test_x, test_y = _masked_means(test_examples)
    model = RidgeCV(alphas=np.logspace(-2, 4, 13)).fit(train_x, train_y)
    ridge_corr = np.corrcoef(model.predict(test_x), test_y)[0, 1]
    ref = gen.bayes_reference()
    stats = np.stack([ref.statistics(e) for e in test_examples])
    bayes_corr = np.corrcoef(ref.posterior_means(stats)["fused"], test_y)[0, 1]
    assert bayes_corr > ridge_corr + 0.2, (bayes_corr, ridge_corr)


def test_build_and_load_records_the_hard_bayes_reference(tmp_path):
    import tfrecords

    splits, info = tfrecords.load_dataset("synthetic-sims-hard", str(tmp_path), scale=0.002,
                                          seed=0, batch_size=4, build_if_missing=True)
    assert info.name == "synthetic-sims-hard" and info.family == "sims"
    assert set(info.bayes_reference) == {"train", "valid", "test"}
    assert set(info.bayes_reference["test"]["unimodal_labels"]) == set(specs.MODALITIES)
    features, labels = next(iter(splits["train"]))
    assert features["vision"].shape[1:] == (55, 709)
    assert set(labels) == {"fused", "text", "audio", "vision"}
    assert (tmp_path / "synthetic_sims_hard" / "scale0.002_seed0").is_dir()
