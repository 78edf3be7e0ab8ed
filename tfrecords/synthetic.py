"""Synthetic stand-ins for CMU-MOSI, CH-SIMS and CMU-MOSEI with a planted signal.

`synthetic-mosi`, `synthetic-sims` and `synthetic-mosei` have the real datasets' shapes,
split sizes, label ranges and quirks (float64 arrays, `-inf` in audio, zero padding past
the lengths, zero-length audio/vision sequences, the text length only in the `text_bert`
mask). They are produced in MMSA's pickle layout and go through the same validation and
cleaning as a real pickle (`mmsa_pickle.ValidatedSplit`).

Design (all random draws come from `numpy.random.SeedSequence([seed, ...])`):

- A latent state k is drawn from a prior table. For the MOSI/MOSEI-like data the state is
  the label y on a grid (MOSI: steps of 0.2, MOSEI: steps of 1/3, a discretised normal
  on [-3, 3]); every modality carries y. For the SIMS-like data the state is the triple of
  unimodal labels (y_T, y_A, y_V) on the 0.2 grid of [-1, 1], correlated through a common
  sentiment c: y_m = clip(round_0.2(c + e_m)), c ~ N(0, 0.55²), e_m ~ N(0, 0.3²); the
  fused label is round_0.2(mean(y_T, y_A, y_V)). The prior table is exact (quadrature).
- Modality m carries u_m = y_m / 3 (MOSI/MOSEI) or y_m (SIMS), a number in [-1, 1]:
  every valid step is x_t = P_m (a_m · u_m · v_m + z_t) + τ_m ε_t with z_t ~ N(0, I_k),
  ε_t ~ N(0, I_D), P_m a fixed random D×k matrix with orthonormal columns and v_m a fixed
  random unit vector in R^k, so w_m = P_m v_m is the signal direction. Wide modalities
  (D > 64: BERT text, SIMS' 709-d vision) live mostly in k = 64 latent dimensions, as real
  features do (they are far from isotropic); narrow ones have P_m = I, τ_m = 0. The noise
  along w_m has variance σ_m² = 1 + τ_m² and is independent of the rest, so the mean over
  valid steps projected on w_m is the sufficient statistic; a recurrent model or a masked
  mean can learn it. a_m is set so that a sequence of mean length carries information
  I_m = a_m² · E[L_m] / σ_m² about u_m: text > vision > audio.
- The token ids (`text_bert` row 0) carry a weaker text signal: a quarter of the content
  tokens are sentiment words, positive with probability sigmoid(κ · u_T).
- `BayesReference` computes the posterior mean of every label given all the features
  (sum over the prior table of prior × Gaussian likelihood × token likelihood), the
  best possible predictor in squared error; the builders record its metrics.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from msa_core.metrics import compute_metrics
from tfrecords import specs
from tfrecords.mmsa_pickle import ValidatedSplit

CLS_ID, SEP_ID = 101, 102
POSITIVE_TOKENS = (2000, 2050)  # [lo, hi) ids of positive sentiment words
NEGATIVE_TOKENS = (2050, 2100)
NEUTRAL_TOKENS_FROM = 2100
CHUNK_SIZE = 256
LATENT_DIM = 64  # k of the wide modalities
WIDE_NOISE = 0.1  # τ of the wide modalities
_SPLIT_INDEX = {split: i for i, split in enumerate(specs.SPLITS)}


@dataclasses.dataclass(frozen=True)
class SignalDesign:
    """How strong the planted signal is in each modality.

    Attributes:
        information: I_m, the Fisher information about u_m (in [-1, 1]) that a sequence
            of mean length carries; the per-step amplitude is sqrt(I_m / E[L_m]).
        token_rate: fraction of content tokens that are sentiment words.
        token_slope: κ; a sentiment word is positive with probability sigmoid(κ · u_T).
        audio_inf_rate: fraction of valid audio entries that are -inf (a real quirk).
        zero_length_rate: fraction of audio and vision sequences of length 0.
    """

    information: Mapping[str, float]
    token_rate: float = 0.25
    token_slope: float = 1.2
    audio_inf_rate: float = 0.003
    zero_length_rate: float = 0.03


# Chosen so that the Bayes-optimal predictor reaches Has0_acc_2 ≈ 0.85 on the MOSI-like
# data (neither trivial nor hopeless) and a text-only model is clearly better than an
# audio-only one. Measured values are in docs/data.md.
DESIGNS: Dict[str, SignalDesign] = {
    "mosi": SignalDesign(information={"text": 8.0, "vision": 4.0, "audio": 1.5}),
    "mosei": SignalDesign(information={"text": 8.0, "vision": 4.0, "audio": 1.5}),
    "sims": SignalDesign(information={"text": 8.0, "vision": 4.0, "audio": 1.5}),
}
# Mean fraction of the padded length that a sequence fills (see `_sample_lengths`).
_TEXT_MEAN_FRACTION = 0.45
_AV_MEAN_FRACTION = (1 - 0.03) * 2.0 / 3.5  # Beta(2, 1.5) mean, times the non-empty rate


@dataclasses.dataclass(frozen=True)
class StateTable:
    """The latent states of the generator and their exact prior.

    Attributes:
        prior: (K,) probabilities.
        fused: (K,) fused label of each state.
        unimodal: {modality: (K,)} the label each modality carries.
        signal_scale: u_m = unimodal[m] / signal_scale.
    """

    prior: np.ndarray
    fused: np.ndarray
    unimodal: Dict[str, np.ndarray]
    signal_scale: float


def _normal_cdf(x):
    return 0.5 * (1.0 + np.vectorize(math.erf)(np.asarray(x) / math.sqrt(2.0)))


def state_table(name: str) -> StateTable:
    """The prior over latent states for synthetic dataset `name`."""
    base = specs.base_name(name)
    if base in ("mosi", "mosei"):
        step, mean, std = (0.2, 0.0, 1.5) if base == "mosi" else (1.0 / 3.0, 0.4, 1.2)
        grid = np.round(np.arange(-3.0, 3.0 + step / 2, step) / step) * step
        prior = np.exp(-0.5 * ((grid - mean) / std) ** 2)
        prior /= prior.sum()
        return StateTable(prior=prior, fused=grid,
                          unimodal={m: grid for m in specs.MODALITIES}, signal_scale=3.0)
    grid = np.round(np.linspace(-1.0, 1.0, 11), 1)
    edges = np.concatenate([[-np.inf], (grid[:-1] + grid[1:]) / 2, [np.inf]])
    # Quadrature over the common sentiment c: P(y_m = g | c) from the normal CDF.
    c = np.linspace(-4, 4, 1601) * 0.55
    weight_c = np.exp(-0.5 * (c / 0.55) ** 2)
    weight_c /= weight_c.sum()
    cdf = _normal_cdf((edges[None, :] - c[:, None]) / 0.3)  # (C, 12)
    p_given_c = np.diff(cdf, axis=1)  # (C, 11)
    joint = np.einsum("c,ci,cj,ck->ijk", weight_c, p_given_c, p_given_c, p_given_c)
    i, j, k = np.meshgrid(np.arange(11), np.arange(11), np.arange(11), indexing="ij")
    y = {"text": grid[i.ravel()], "audio": grid[j.ravel()], "vision": grid[k.ravel()]}
    fused = np.clip(np.round((y["text"] + y["audio"] + y["vision"]) / 3 / 0.2) * 0.2,
                    -1.0, 1.0)
    fused = np.round(fused, 1)
    prior = joint.ravel() / joint.sum()
    return StateTable(prior=prior, fused=fused, unimodal=y, signal_scale=1.0)


@dataclasses.dataclass(frozen=True)
class ModalityGeometry:
    """Where a modality's signal and noise live.

    Attributes:
        embedding: P, (D, k) with orthonormal columns, or None when k = D (P = I).
        latent_direction: v, unit vector in R^k.
        direction: w = P v, unit vector in R^D.
        noise: τ, the isotropic noise added on top of the k latent dimensions.
        amplitude: a, the per-step signal amplitude.
    """

    embedding: Optional[np.ndarray]
    latent_direction: np.ndarray
    direction: np.ndarray
    noise: float
    amplitude: float

    @property
    def variance_along_direction(self) -> float:
        return 1.0 + self.noise ** 2


def _geometry(name: str, seed: int) -> Dict[str, ModalityGeometry]:
    spec = specs.spec_for(name)
    design = DESIGNS[spec.base]
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    out = {}
    for m in specs.MODALITIES:
        d = spec.feature_dims[m]
        wide = d > LATENT_DIM
        k = LATENT_DIM if wide else d
        v = rng.standard_normal(k)
        v /= np.linalg.norm(v)
        if wide:
            embedding, _ = np.linalg.qr(rng.standard_normal((d, k)))
            direction, noise = embedding @ v, WIDE_NOISE
        else:
            embedding, direction, noise = None, v, 0.0
        fraction = _TEXT_MEAN_FRACTION if m == "text" else _AV_MEAN_FRACTION
        amplitude = math.sqrt(design.information[m] * (1.0 + noise ** 2)
                              / (fraction * spec.max_lengths[m]))
        out[m] = ModalityGeometry(embedding, v, direction, noise, amplitude)
    return out


def _sample_lengths(rng, n: int, max_length: int, modality: str, design) -> np.ndarray:
    if modality == "text":
        # [CLS] + words + [SEP]: at least 3 tokens, about 45 % of the padded length.
        raw = rng.lognormal(math.log(0.42 * max_length), 0.35, size=n)
        return np.clip(np.round(raw), 3, max_length).astype(np.int64)
    lengths = np.clip(np.round(rng.beta(2.0, 1.5, size=n) * max_length), 1, max_length)
    lengths[rng.random(n) < design.zero_length_rate] = 0
    return lengths.astype(np.int64)


class SyntheticGenerator:
    """Deterministic generator of one synthetic dataset in MMSA's pickle layout.

    Arguments:
        name: "synthetic-mosi", "synthetic-sims" or "synthetic-mosei".
        scale: fraction of the real split sizes, in (0, 1].
        seed: every array is a function of (name, scale, seed); the split of a smaller
            scale is not a prefix of a larger one.

    Example:

    >>> gen = SyntheticGenerator("synthetic-mosi", scale=0.01, seed=0)
    >>> raw = gen.split_arrays("valid")
    >>> raw["audio"].shape, raw["audio"].dtype
    ((2, 375, 5), dtype('float64'))
    """

    def __init__(self, name: str, scale: float = 1.0, seed: int = 0):
        if not specs.is_synthetic(name):
            raise ValueError(f"{name!r} is not a synthetic dataset")
        if specs.is_hard(name):
            raise ValueError(f"{name!r} is of the hard family: use generator_for(name) or "
                             "tfrecords.synthetic_hard.HardSyntheticGenerator")
        self.name, self.scale, self.seed = name, specs.check_scale(scale), int(seed)
        self.spec = specs.spec_for(name)
        self.design = DESIGNS[self.spec.base]
        self.table = state_table(name)
        self.geometry = _geometry(name, self.seed)
        self.split_sizes = specs.scaled_split_sizes(name, self.scale)

    def _split_plan(self, split: str):
        """States and lengths of a whole split (cheap; drawn once per split)."""
        n = self.split_sizes[split]
        rng = np.random.default_rng(np.random.SeedSequence(
            [self.seed, _SPLIT_INDEX[split], 0, int(round(self.scale * 1e6))]))
        states = rng.choice(len(self.table.prior), size=n, p=self.table.prior)
        lengths = {m: _sample_lengths(rng, n, self.spec.max_lengths[m], m, self.design)
                   for m in specs.MODALITIES}
        return states, lengths

    def split_chunks(self, split: str, chunk_size: int = CHUNK_SIZE
                     ) -> Iterator[Dict[str, np.ndarray]]:
        """Yields the split as MMSA-layout dicts of at most `chunk_size` samples."""
        states, lengths = self._split_plan(split)
        n = len(states)
        for chunk_index, start in enumerate(range(0, n, chunk_size)):
            stop = min(n, start + chunk_size)
            rng = np.random.default_rng(np.random.SeedSequence(
                [self.seed, _SPLIT_INDEX[split], 1, int(round(self.scale * 1e6)),
                 chunk_index]))
            yield self._chunk(split, rng, states[start:stop],
                              {m: v[start:stop] for m, v in lengths.items()}, start)

    def _chunk(self, split, rng, states, lengths, start) -> Dict[str, np.ndarray]:
        spec, table, c = self.spec, self.table, len(states)
        out: Dict[str, Any] = {}
        for m in specs.MODALITIES:
            t, d = spec.max_lengths[m], spec.feature_dims[m]
            geo = self.geometry[m]
            u = table.unimodal[m][states] / table.signal_scale
            k = len(geo.latent_direction)
            x = rng.standard_normal((c, t, k))
            x += (geo.amplitude * u)[:, None, None] * geo.latent_direction[None, None]
            if geo.embedding is not None:
                # One 2-D product with a contiguous P^T: a stacked 3-D matmul against a
                # transposed view is two orders of magnitude slower.
                x = (x.reshape(-1, k) @ np.ascontiguousarray(geo.embedding.T)).reshape(
                    c, t, d)
                x += geo.noise * rng.standard_normal((c, t, d))
            valid = np.arange(t)[None, :] < lengths[m][:, None]
            x *= valid[:, :, None]
            if m == "audio":
                inf = (rng.random((c, t, d)) < self.design.audio_inf_rate) & valid[..., None]
                x[inf] = -np.inf
            out[m] = x  # float64, as in MMSA's files
        out["audio_lengths"] = lengths["audio"].astype(np.int64)
        out["vision_lengths"] = lengths["vision"].astype(np.int64)
        ids, raw_text = self._tokens(rng, states, lengths["text"])
        t_text = spec.max_lengths["text"]
        mask = (np.arange(t_text)[None, :] < lengths["text"][:, None]).astype(np.float64)
        out["text_bert"] = np.stack([ids.astype(np.float64), mask, np.zeros_like(mask)],
                                    axis=1)
        out["regression_labels"] = table.fused[states].astype(np.float64)
        if spec.has_unimodal_labels:
            for m, key in (("text", "T"), ("audio", "A"), ("vision", "V")):
                out[f"regression_labels_{key}"] = table.unimodal[m][states].astype(
                    np.float64)
        out["classification_labels"] = np.sign(out["regression_labels"])
        out["id"] = np.array([f"synth_{split}_{start + i:05d}$_$0" for i in range(c)],
                             dtype=object)
        out["raw_text"] = np.array(raw_text, dtype=object)
        return out

    def _tokens(self, rng, states, text_lengths):
        spec, design = self.spec, self.design
        c, t = len(states), spec.max_lengths["text"]
        u = self.table.unimodal["text"][states] / self.table.signal_scale
        ids = np.zeros((c, t), dtype=np.int64)
        neutral = rng.integers(NEUTRAL_TOKENS_FROM, spec.vocab_size, size=(c, t))
        is_sentiment = rng.random((c, t)) < design.token_rate
        p_positive = 1.0 / (1.0 + np.exp(-design.token_slope * u))
        positive = rng.random((c, t)) < p_positive[:, None]
        pos_ids = rng.integers(*POSITIVE_TOKENS, size=(c, t))
        neg_ids = rng.integers(*NEGATIVE_TOKENS, size=(c, t))
        words = np.where(is_sentiment, np.where(positive, pos_ids, neg_ids), neutral)
        raw_text = []
        for i in range(c):
            length = int(text_lengths[i])
            ids[i, 0], ids[i, length - 1] = CLS_ID, SEP_ID
            ids[i, 1:length - 1] = words[i, 1:length - 1]
            raw_text.append(" ".join(f"w{w}" for w in ids[i, 1:length - 1]))
        return ids, raw_text

    def split_arrays(self, split: str) -> Dict[str, np.ndarray]:
        """The whole split as one MMSA-layout dict (for small scales)."""
        chunks = list(self.split_chunks(split))
        return {k: np.concatenate([ch[k] for ch in chunks]) for k in chunks[0]}

    def raw_dataset(self) -> Dict[str, Dict[str, np.ndarray]]:
        """All splits in MMSA's pickle layout (small scales only: it is all in memory)."""
        return {split: self.split_arrays(split) for split in specs.SPLITS}

    def validated_chunks(self, split: str) -> Iterator[ValidatedSplit]:
        """The split's chunks, checked and cleaned exactly like a real pickle."""
        for raw in self.split_chunks(split):
            yield ValidatedSplit(raw, file=f"<{self.name} generator, seed {self.seed}>",
                                 split=split, name=self.name)

    def examples(self, split: str) -> Iterator[Dict[str, Any]]:
        """Cleaned, trimmed examples (the builders' example dicts) of a split."""
        for chunk in self.validated_chunks(split):
            yield from chunk.examples()

    def bayes_reference(self) -> "BayesReference":
        return BayesReference(self.name, self.seed)


class BayesReference:
    """The Bayes-optimal predictor of a synthetic dataset: E[label | all features].

    Arguments:
        name: synthetic dataset name.
        seed: the generator seed (fixes the directions w_m).

    `statistics(example)` reduces one cleaned example (as the data pipeline yields it:
    trimmed, -inf already 0) to its sufficient statistics; `posterior_means(stats)` turns
    (N, ·) statistics into predictions {"fused", "text", "audio", "vision"}. Entries that
    are exactly 0 inside a valid step are treated as missing (the -inf of the raw audio):
    a Gaussian draw is never exactly 0.

    Example:

    >>> gen = SyntheticGenerator("synthetic-mosi", scale=0.01, seed=0)
    >>> ref = gen.bayes_reference()
    >>> stats = np.stack([ref.statistics(ex) for ex in gen.examples("valid")])
    >>> sorted(ref.posterior_means(stats))
    ['audio', 'fused', 'text', 'vision']
    """

    def __init__(self, name: str, seed: int = 0):
        if specs.is_hard(name):
            raise ValueError(f"{name!r} is of the hard family: use "
                             "tfrecords.synthetic_hard.HardBayesReference")
        self.name = name
        self.spec = specs.spec_for(name)
        self.design = DESIGNS[self.spec.base]
        self.table = state_table(name)
        self.geometry = _geometry(name, int(seed))

    def statistics(self, example: Mapping[str, Any]) -> np.ndarray:
        """[S_T, Q_T, S_A, Q_A, S_V, Q_V, n_positive, n_negative] of one example."""
        out: List[float] = []
        for m in specs.MODALITIES:
            x = np.asarray(example[m], dtype=np.float64)
            observed = x != 0
            w = self.geometry[m].direction
            out.append(float(np.sum(x @ w)))
            out.append(float(np.sum(observed * (w * w)[None, :])))
        ids = np.asarray(example["text_token_ids"])
        out.append(float(np.sum((ids >= POSITIVE_TOKENS[0]) & (ids < POSITIVE_TOKENS[1]))))
        out.append(float(np.sum((ids >= NEGATIVE_TOKENS[0]) & (ids < NEGATIVE_TOKENS[1]))))
        return np.asarray(out)

    def log_posterior(self, stats: np.ndarray,
                      modalities: Sequence[str] = specs.MODALITIES) -> np.ndarray:
        """(N, K) unnormalised log posterior over the latent states."""
        stats = np.atleast_2d(stats)
        table = self.table
        logp = np.log(table.prior)[None, :].repeat(len(stats), axis=0)
        for i, m in enumerate(specs.MODALITIES):
            if m not in modalities:
                continue
            geo = self.geometry[m]
            a, var = geo.amplitude, geo.variance_along_direction
            u = table.unimodal[m] / table.signal_scale
            s, q = stats[:, 2 * i], stats[:, 2 * i + 1]
            logp += (a * s[:, None] * u[None, :]
                     - 0.5 * a * a * q[:, None] * (u * u)[None]) / var
        if "text" in modalities:
            z = self.design.token_slope * table.unimodal["text"] / table.signal_scale
            log_pos = -np.logaddexp(0.0, -z)
            log_neg = -np.logaddexp(0.0, z)
            logp += stats[:, 6:7] * log_pos[None] + stats[:, 7:8] * log_neg[None]
        return logp

    def posterior_means(self, stats: np.ndarray,
                        modalities: Sequence[str] = specs.MODALITIES
                        ) -> Dict[str, np.ndarray]:
        """Posterior mean of the fused and unimodal labels given `modalities`' features."""
        logp = self.log_posterior(stats, modalities)
        logp -= logp.max(axis=1, keepdims=True)
        post = np.exp(logp)
        post /= post.sum(axis=1, keepdims=True)
        out = {"fused": post @ self.table.fused}
        for m in specs.MODALITIES:
            out[m] = post @ self.table.unimodal[m]
        return out


def generator_for(name: str, scale: float = 1.0, seed: int = 0) -> "SyntheticGenerator":
    """The generator of synthetic dataset `name`, easy or hard family."""
    if specs.is_hard(name):
        from tfrecords.synthetic_hard import HardSyntheticGenerator

        return HardSyntheticGenerator(name, scale, seed)
    return SyntheticGenerator(name, scale, seed)


def reference_metrics(name: str, labels: Mapping[str, np.ndarray], stats: np.ndarray,
                      seed: int = 0, reference=None) -> Dict[str, Any]:
    """Metrics of the Bayes reference on one split.

    Returns {metric: value} for the fused label (MMSA's names via
    `msa_core.metrics.compute_metrics`), plus "single_modality": {modality: {metric}} for
    the predictor that sees one modality's features only, and for SIMS-like data
    "unimodal_labels": {modality: {metric}} for the unimodal labels. `reference` (default
    `BayesReference(name, seed)`) is the predictor scored; the hard family passes its own.
    """
    spec = specs.spec_for(name)
    ref = BayesReference(name, seed) if reference is None else reference
    y = np.asarray(labels["fused"], dtype=np.float64)

    def metrics(y_true, y_pred):
        return {k: float(v) for k, v in compute_metrics(spec.family, y_true, y_pred).items()}

    means = ref.posterior_means(stats)
    out: Dict[str, Any] = metrics(y, means["fused"])
    out["single_modality"] = {
        m: metrics(y, ref.posterior_means(stats, modalities=(m,))["fused"])
        for m in specs.MODALITIES}
    if spec.has_unimodal_labels:
        out["unimodal_labels"] = {
            m: metrics(np.asarray(labels[m], dtype=np.float64), means[m])
            for m in specs.MODALITIES}
    return out
