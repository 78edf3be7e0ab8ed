"""The hard synthetic family: `synthetic-mosi-hard`, `synthetic-sims-hard`, `synthetic-mosei-hard`.

Same shapes, split sizes, label ranges, quirks, MMSA pickle layout, validation path and
token-id layout as the easy family (`tfrecords.synthetic`, whose helpers this module
reuses and does not change), but the label is *not* a linear function of pooled
features. Each clip has, besides its sentiment state, a few discrete latent variables per
modality m (all independent given the state):

- **where** the sentiment shows: a contiguous window of W_m steps whose start is one of
  G = 8 evenly spaced positions of the valid part of the sequence (j ~ uniform). Inside
  the window every step carries a_m · u_m along the signal direction w_m; W_m is fixed in
  steps, so a clip's masked mean dilutes the window by W_m / L (L = the clip's length).
- **a distractor** outside the window: the speaker's baseline expression, b_m · ζ along
  the same direction w_m on every valid step outside the window, ζ = ±1 with probability
  1/2, independent of the label (b_m = ρ · a_m). On a long clip it dominates the mean.
- **how reliable** the modality is in this clip: r_m ∈ {present, absent, flipped} with a
  per-modality prior. Present: the modality expresses the sentiment; absent: it
  expresses 0 (an occluded face, a flat voice); flipped: it expresses the opposite
  (an ironic smile, sarcasm).
- For the text, the same window holds the sentiment words: a quarter of all content
  tokens are sentiment words (ids as in the easy family); inside the window a word is
  positive with probability sigmoid(κ · u_T), outside with probability 1/2.

What a modality expresses, u_m (in [-1, 1]), is:

- MOSI/MOSEI-like: u_m = r_m · y / 3 (r_m ∈ {+1, 0, -1}), y the fused label on the grid.
- SIMS-like: each modality has its own label y_m, its own noisy view of the fused label
  c: y_m = clip(round_0.2(s + e_m)), e_m ~ N(0, σ_m²), s = c (present), 0 (absent) or -c
  (flipped); the features of m express u_m = y_m. So the fused label is not a function of
  the unimodal ones, and a unimodal label is exactly what its modality shows (learnable
  from that modality) while telling little about the fused one when σ_m or the
  unreliability is large.

Lengths: audio and vision lengths are a log-normal clipped at the padded length (real
clips are right-skewed and long ones are cut at the maximum), with the mean set to the
real MOSI fractions (audio ≈ 223 of 375, vision ≈ 288 of 500); 3 % are 0, as in the easy
family and the real files.

Everything given the state factorises over modalities, and every latent is discrete, so
the posterior over the state is an exact finite sum (`HardBayesReference`):
p(k | x) ∝ p(k) Π_m Σ_v T_m[k, v] L_m(v), L_m(v) = (1/G) Σ_j Σ_ζ ½ p(x_m | u_m = v, j, ζ),
with the Gaussian likelihood reduced to windowed sums of the projection x_t · w_m.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, Iterator, List, Mapping, Sequence, Tuple

import numpy as np

from tfrecords import specs
from tfrecords.synthetic import (
    CHUNK_SIZE,
    CLS_ID,
    NEGATIVE_TOKENS,
    NEUTRAL_TOKENS_FROM,
    POSITIVE_TOKENS,
    SEP_ID,
    SyntheticGenerator,
    _geometry,
    _normal_cdf,
    _sample_lengths,
    _SPLIT_INDEX,
)
from tfrecords import synthetic as _synthetic

POSITIONS = 8  # G: possible window starts per clip and modality
RELIABILITY_STATES = ("present", "absent", "flipped")


@dataclasses.dataclass(frozen=True)
class HardDesign:
    """The hard family's knobs for one real dataset.

    Attributes:
        window: W_m, the window length in steps (text: in word tokens).
        information: a_m² W_m / σ_m², the information about u_m of a full window.
        reliability: {m: (p_present, p_absent, p_flipped)}.
        distractor: ρ; the baseline outside the window has amplitude ρ · a_m.
        length_fraction: mean length / padded length of audio and vision (zeros included).
        length_sigma: σ of the log-normal lengths.
        unimodal_noise: SIMS only: σ_m of each unimodal label around the fused one.
        label_prior: (mean, std) of the discretised normal prior of the fused label.
        token_rate, token_slope: sentiment words per content token; κ inside the window.
        audio_inf_rate, zero_length_rate: the quirks, as in the easy family.
    """

    window: Mapping[str, int]
    information: Mapping[str, float]
    reliability: Mapping[str, Tuple[float, float, float]]
    distractor: float = 0.3
    length_fraction: Mapping[str, float] = dataclasses.field(
        default_factory=lambda: {"audio": 223 / 375, "vision": 288 / 500})
    length_sigma: float = 0.6
    unimodal_noise: Mapping[str, float] = dataclasses.field(default_factory=dict)
    label_prior: Tuple[float, float] = (0.0, 1.5)
    token_rate: float = 0.25
    token_slope: float = 3.0
    audio_inf_rate: float = 0.003
    zero_length_rate: float = 0.03


_RELIABILITY = {"text": (0.85, 0.10, 0.05), "audio": (0.60, 0.30, 0.10),
                "vision": (0.70, 0.20, 0.10)}
HARD_DESIGNS: Dict[str, HardDesign] = {
    "mosi": HardDesign(window={"text": 4, "audio": 48, "vision": 64},
                       information={"text": 30.0, "vision": 16.0, "audio": 10.0},
                       reliability=_RELIABILITY),
    "mosei": HardDesign(window={"text": 4, "audio": 64, "vision": 64},
                        information={"text": 30.0, "vision": 16.0, "audio": 10.0},
                        reliability=_RELIABILITY, label_prior=(0.4, 1.2)),
    # SIMS: audio's own label is the easiest to learn from its modality, but the
    # noisiest view of the fused label (the key-modality trap of issue 11).
    "sims": HardDesign(window={"text": 4, "audio": 48, "vision": 8},
                       information={"text": 50.0, "vision": 60.0, "audio": 100.0},
                       reliability=_RELIABILITY,
                       unimodal_noise={"text": 0.1, "vision": 0.3, "audio": 0.4},
                       label_prior=(0.0, 0.6)),
}


def _clipped_lognormal_mean(mu: float, sigma: float) -> float:
    """E[min(exp(mu + sigma Z), 1)], Z ~ N(0, 1)."""
    below = float(_normal_cdf((-mu - sigma * sigma) / sigma))
    return math.exp(mu + sigma * sigma / 2) * below + 1.0 - float(_normal_cdf(-mu / sigma))


def lognormal_location(fraction: float, sigma: float, zero_rate: float) -> float:
    """μ such that (1 - zero_rate) E[min(exp(μ + σZ), 1)] = fraction (bisection)."""
    target = fraction / (1.0 - zero_rate)
    lo, hi = -5.0, 5.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if _clipped_lognormal_mean(mid, sigma) < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def sample_lengths(rng, n: int, max_length: int, modality: str, design: HardDesign):
    """Text as in the easy family; audio/vision log-normal, clipped, 3 % zero."""
    if modality == "text":
        return _sample_lengths(rng, n, max_length, "text", design)
    mu = lognormal_location(design.length_fraction[modality], design.length_sigma,
                            design.zero_length_rate)
    raw = np.exp(mu + design.length_sigma * rng.standard_normal(n)) * max_length
    lengths = np.clip(np.round(raw), 1, max_length)
    lengths[rng.random(n) < design.zero_length_rate] = 0
    return lengths.astype(np.int64)


def window_range(modality: str, length: int) -> Tuple[int, int]:
    """[lo, hi): where a window may lie (text: the word tokens between [CLS] and [SEP])."""
    if modality == "text":
        return (1, max(1, int(length) - 1)) if length > 0 else (0, 0)
    return 0, int(length)


def window_starts(modality: str, length: int, window: int) -> Tuple[np.ndarray, int]:
    """The G possible window starts (integer arithmetic) and the effective width."""
    lo, hi = window_range(modality, length)
    width = min(int(window), hi - lo)
    free = hi - lo - width
    j = np.arange(POSITIONS)
    return lo + (2 * j * free + (POSITIONS - 1)) // (2 * (POSITIONS - 1)), width


@dataclasses.dataclass(frozen=True)
class HardStateTable:
    """The state prior and, per modality, P(expressed value | state).

    Attributes:
        prior: (K,) probabilities of the state.
        fused: (K,) fused label of each state.
        values: (V,) grid of the values a modality can express, in label units.
        transition: {m: (K, V)} P(modality m expresses values[v] | state k).
        signal_scale: u_m = values / signal_scale.
    """

    prior: np.ndarray
    fused: np.ndarray
    values: np.ndarray
    transition: Dict[str, np.ndarray]
    signal_scale: float


def _discretised_normal(grid: np.ndarray, mean: np.ndarray, std: float) -> np.ndarray:
    """(len(mean), len(grid)): P(clip(round_grid(mean + std Z)) = grid[i])."""
    edges = np.concatenate([[-np.inf], (grid[:-1] + grid[1:]) / 2, [np.inf]])
    cdf = _normal_cdf((edges[None, :] - np.asarray(mean)[:, None]) / std)
    return np.diff(cdf, axis=1)


def hard_state_table(name: str) -> HardStateTable:
    base = specs.base_name(name)
    design = HARD_DESIGNS[base]
    if base in ("mosi", "mosei"):
        step = 0.2 if base == "mosi" else 1.0 / 3.0
        grid = np.round(np.arange(-3.0, 3.0 + step / 2, step) / step) * step
        scale = 3.0
    else:
        grid = np.round(np.linspace(-1.0, 1.0, 11), 1)
        scale = 1.0
    mean, std = design.label_prior
    prior = np.exp(-0.5 * ((grid - mean) / std) ** 2)
    prior /= prior.sum()
    k = len(grid)
    index = {round(float(g), 6): i for i, g in enumerate(grid)}
    transition = {}
    for m in specs.MODALITIES:
        p_present, p_absent, p_flipped = design.reliability[m]
        if base == "sims":
            noise = design.unimodal_noise[m]
            t = (p_present * _discretised_normal(grid, grid, noise)
                 + p_flipped * _discretised_normal(grid, -grid, noise)
                 + p_absent * _discretised_normal(grid, np.zeros(k), noise))
        else:
            t = np.zeros((k, k))
            for i, g in enumerate(grid):
                t[i, i] += p_present
                t[i, index[round(float(-g), 6)]] += p_flipped
                t[i, index[0.0]] += p_absent
        transition[m] = t / t.sum(axis=1, keepdims=True)
    return HardStateTable(prior=prior, fused=grid, values=grid, transition=transition,
                          signal_scale=scale)


def _amplitudes(name: str, design: HardDesign, geometry) -> Dict[str, Tuple[float, float]]:
    """(a_m, b_m) per modality: window amplitude and distractor amplitude."""
    out = {}
    for m in specs.MODALITIES:
        var = geometry[m].variance_along_direction
        a = math.sqrt(design.information[m] * var / design.window[m])
        out[m] = (a, design.distractor * a)
    return out


class HardSyntheticGenerator(SyntheticGenerator):
    """Deterministic generator of one hard synthetic dataset in MMSA's pickle layout.

    Arguments:
        name: "synthetic-mosi-hard", "synthetic-sims-hard" or "synthetic-mosei-hard".
        scale: fraction of the real split sizes, in (0, 1].
        seed: every array is a function of (name, scale, seed).

    >>> gen = HardSyntheticGenerator("synthetic-sims-hard", scale=0.01, seed=0)
    >>> raw = gen.split_arrays("valid")
    >>> raw["vision"].shape, raw["vision"].dtype, "regression_labels_T" in raw
    ((5, 55, 709), dtype('float64'), True)
    """

    def __init__(self, name: str, scale: float = 1.0, seed: int = 0):
        if not specs.is_hard(name):
            raise ValueError(f"{name!r} is not a hard synthetic dataset")
        self.name, self.scale, self.seed = name, specs.check_scale(scale), int(seed)
        self.spec = specs.spec_for(name)
        self.design = HARD_DESIGNS[self.spec.base]
        self.table = hard_state_table(name)
        self.geometry = _geometry(name, self.seed)  # directions; amplitudes below
        self.amplitudes = _amplitudes(name, self.design, self.geometry)
        self.split_sizes = specs.scaled_split_sizes(name, self.scale)

    def _seed(self, split: str, *tail: int) -> np.random.SeedSequence:
        return np.random.SeedSequence(
            [self.seed, _SPLIT_INDEX[split], 0x4A52, int(round(self.scale * 1e6)), *tail])

    def _split_plan(self, split: str) -> Dict[str, Any]:
        """Every discrete latent of a whole split (cheap; drawn once per split)."""
        n = self.split_sizes[split]
        rng = np.random.default_rng(self._seed(split, 0))
        table = self.table
        plan: Dict[str, Any] = {
            "state": rng.choice(len(table.prior), size=n, p=table.prior)}
        for m in specs.MODALITIES:
            plan[f"length_{m}"] = sample_lengths(rng, n, self.spec.max_lengths[m], m,
                                                 self.design)
            cum = np.cumsum(table.transition[m][plan["state"]], axis=1)
            draw = rng.random(n)[:, None]
            plan[f"value_{m}"] = np.minimum((cum < draw).sum(axis=1), len(table.values) - 1)
            plan[f"position_{m}"] = rng.integers(0, POSITIONS, size=n)
            plan[f"baseline_{m}"] = np.where(rng.random(n) < 0.5, -1.0, 1.0)
        return plan

    def split_chunks(self, split: str, chunk_size: int = CHUNK_SIZE
                     ) -> Iterator[Dict[str, np.ndarray]]:
        plan = self._split_plan(split)
        n = len(plan["state"])
        for chunk_index, start in enumerate(range(0, n, chunk_size)):
            stop = min(n, start + chunk_size)
            rng = np.random.default_rng(self._seed(split, 1, chunk_index))
            yield self._chunk(split, rng, {k: v[start:stop] for k, v in plan.items()}, start)

    def _chunk(self, split, rng, plan, start) -> Dict[str, np.ndarray]:
        spec, table, c = self.spec, self.table, len(plan["state"])
        out: Dict[str, Any] = {}
        for m in specs.MODALITIES:
            t, d = spec.max_lengths[m], spec.feature_dims[m]
            geo = self.geometry[m]
            a, b = self.amplitudes[m]
            lengths = plan[f"length_{m}"]
            u = table.values[plan[f"value_{m}"]] / table.signal_scale
            steps = np.arange(t)[None, :]
            valid = steps < lengths[:, None]
            inside = np.zeros((c, t), dtype=bool)
            for i in range(c):
                starts, width = window_starts(m, lengths[i], self.design.window[m])
                s = starts[plan[f"position_{m}"][i]]
                inside[i, s:s + width] = True
            level = np.where(inside, (a * u)[:, None],
                             np.where(valid, (b * plan[f"baseline_{m}"])[:, None], 0.0))
            k = len(geo.latent_direction)
            x = rng.standard_normal((c, t, k))
            x += level[:, :, None] * geo.latent_direction[None, None]
            if geo.embedding is not None:
                x = (x.reshape(-1, k) @ np.ascontiguousarray(geo.embedding.T)).reshape(
                    c, t, d)
                x += geo.noise * rng.standard_normal((c, t, d))
            x *= valid[:, :, None]
            if m == "audio":
                inf = (rng.random((c, t, d)) < self.design.audio_inf_rate) & valid[..., None]
                x[inf] = -np.inf
            out[m] = x
            if m == "text":
                text_inside = inside
        out["audio_lengths"] = plan["length_audio"].astype(np.int64)
        out["vision_lengths"] = plan["length_vision"].astype(np.int64)
        ids, raw_text = self._hard_tokens(rng, plan, text_inside)
        t_text = spec.max_lengths["text"]
        mask = (np.arange(t_text)[None, :] < plan["length_text"][:, None]).astype(np.float64)
        out["text_bert"] = np.stack([ids.astype(np.float64), mask, np.zeros_like(mask)],
                                    axis=1)
        out["regression_labels"] = table.fused[plan["state"]].astype(np.float64)
        if spec.has_unimodal_labels:
            for m, key in (("text", "T"), ("audio", "A"), ("vision", "V")):
                out[f"regression_labels_{key}"] = table.values[
                    plan[f"value_{m}"]].astype(np.float64)
        out["classification_labels"] = np.sign(out["regression_labels"])
        out["id"] = np.array([f"synth_hard_{split}_{start + i:05d}$_$0" for i in range(c)],
                             dtype=object)
        out["raw_text"] = np.array(raw_text, dtype=object)
        return out

    def _hard_tokens(self, rng, plan, inside):
        spec, design = self.spec, self.design
        c, t = len(plan["state"]), spec.max_lengths["text"]
        u = self.table.values[plan["value_text"]] / self.table.signal_scale
        ids = np.zeros((c, t), dtype=np.int64)
        neutral = rng.integers(NEUTRAL_TOKENS_FROM, spec.vocab_size, size=(c, t))
        is_sentiment = rng.random((c, t)) < design.token_rate
        p_positive = np.where(inside, 1.0 / (1.0 + np.exp(-design.token_slope * u))[:, None],
                              0.5)
        positive = rng.random((c, t)) < p_positive
        pos_ids = rng.integers(*POSITIVE_TOKENS, size=(c, t))
        neg_ids = rng.integers(*NEGATIVE_TOKENS, size=(c, t))
        words = np.where(is_sentiment, np.where(positive, pos_ids, neg_ids), neutral)
        raw_text = []
        for i in range(c):
            length = int(plan["length_text"][i])
            ids[i, 0], ids[i, length - 1] = CLS_ID, SEP_ID
            ids[i, 1:length - 1] = words[i, 1:length - 1]
            raw_text.append(" ".join(f"w{w}" for w in ids[i, 1:length - 1]))
        return ids, raw_text

    def bayes_reference(self) -> "HardBayesReference":
        return HardBayesReference(self.name, self.seed)


class HardBayesReference:
    """The Bayes-optimal predictor of a hard synthetic dataset: E[label | all features].

    `statistics(example)` reduces a cleaned example to, per modality, the windowed sums
    S_in(j), Q_in(j) of the G candidate windows and the totals S, Q of the projection on
    w_m (and, for the text, the positive/negative sentiment words inside each window);
    `posterior_means(stats)` sums the posterior exactly over the state, each modality's
    expressed value, window position and baseline sign. Interface as `BayesReference`.
    """

    def __init__(self, name: str, seed: int = 0):
        self.name = name
        self.spec = specs.spec_for(name)
        self.design = HARD_DESIGNS[self.spec.base]
        self.table = hard_state_table(name)
        self.geometry = _geometry(name, int(seed))
        self.amplitudes = _amplitudes(name, self.design, self.geometry)

    # Layout of one statistics row: per modality [S_in(G), Q_in(G), S, Q], then the
    # text's [n_pos_in(G), n_neg_in(G)].
    _BLOCK = 2 * POSITIONS + 2

    def statistics(self, example: Mapping[str, Any]) -> np.ndarray:
        out: List[np.ndarray] = []
        for m in specs.MODALITIES:
            x = np.asarray(example[m], dtype=np.float64)
            w = self.geometry[m].direction
            p = x @ w
            q = (x != 0) @ (w * w)
            starts, width = window_starts(m, len(x), self.design.window[m])
            cp = np.concatenate([[0.0], np.cumsum(p)])
            cq = np.concatenate([[0.0], np.cumsum(q)])
            out += [cp[starts + width] - cp[starts], cq[starts + width] - cq[starts],
                    [cp[-1], cq[-1]]]
        ids = np.asarray(example["text_token_ids"])
        starts, width = window_starts("text", len(ids), self.design.window["text"])
        for lo_id, hi_id in (POSITIVE_TOKENS, NEGATIVE_TOKENS):
            c = np.concatenate([[0.0], np.cumsum((ids >= lo_id) & (ids < hi_id))])
            out.append(c[starts + width] - c[starts])
        return np.concatenate([np.asarray(v, dtype=np.float64) for v in out])

    def modality_log_likelihood(self, stats: np.ndarray, modality: str) -> np.ndarray:
        """(N, V): log p(x_m | m expresses values[v]) up to a per-sample constant."""
        stats = np.atleast_2d(stats)
        g = POSITIONS
        i = specs.MODALITIES.index(modality)
        block = stats[:, i * self._BLOCK:(i + 1) * self._BLOCK]
        s_in, q_in = block[:, :g], block[:, g:2 * g]
        s_out = block[:, 2 * g:2 * g + 1] - s_in
        q_out = block[:, 2 * g + 1:2 * g + 2] - q_in
        a, b = self.amplitudes[modality]
        var = self.geometry[modality].variance_along_direction
        u = self.table.values / self.table.signal_scale  # (V,)
        # (N, G, V): window term; the baseline sign ζ = ±1 summed in closed form.
        ll = (a * s_in[:, :, None] * u - 0.5 * a * a * q_in[:, :, None] * u * u) / var
        x = b * s_out / var
        ll += (np.logaddexp(x, -x) - math.log(2.0) - 0.5 * b * b * q_out / var)[:, :, None]
        if modality == "text":
            base = 3 * self._BLOCK
            n_pos, n_neg = stats[:, base:base + g], stats[:, base + g:base + 2 * g]
            z = self.design.token_slope * u
            log_pos = -np.logaddexp(0.0, -z) + math.log(2.0)
            log_neg = -np.logaddexp(0.0, z) + math.log(2.0)
            ll += n_pos[:, :, None] * log_pos + n_neg[:, :, None] * log_neg
        top = ll.max(axis=1, keepdims=True)
        return (top + np.log(np.mean(np.exp(ll - top), axis=1, keepdims=True)))[:, 0]

    def _terms(self, stats, modalities):
        """log prior (K,), {m: (N, V) likelihood}, {m: (N, K) log Σ_v T[k,v] L_m(v)}."""
        lik, per_state = {}, {}
        for m in modalities:
            ll = self.modality_log_likelihood(stats, m)
            top = ll.max(axis=1, keepdims=True)
            lik[m] = np.exp(ll - top)
            per_state[m] = np.log(lik[m] @ self.table.transition[m].T) + top
        return lik, per_state

    def log_posterior(self, stats: np.ndarray,
                      modalities: Sequence[str] = specs.MODALITIES) -> np.ndarray:
        """(N, K) unnormalised log posterior over the state."""
        stats = np.atleast_2d(stats)
        _, per_state = self._terms(stats, modalities)
        logp = np.log(self.table.prior)[None, :].repeat(len(stats), axis=0)
        for m in modalities:
            logp = logp + per_state[m]
        return logp

    def posterior_means(self, stats: np.ndarray,
                        modalities: Sequence[str] = specs.MODALITIES
                        ) -> Dict[str, np.ndarray]:
        """Posterior mean of the fused label and of what each modality expresses (for
        SIMS-like data: its unimodal label)."""
        stats = np.atleast_2d(stats)
        table = self.table
        lik, per_state = self._terms(stats, modalities)
        logp = np.log(table.prior)[None, :].repeat(len(stats), axis=0)
        for m in modalities:
            logp = logp + per_state[m]
        logp -= logp.max(axis=1, keepdims=True)
        post = np.exp(logp)
        post /= post.sum(axis=1, keepdims=True)
        out = {"fused": post @ table.fused}
        for m in specs.MODALITIES:
            t = table.transition[m]
            if m in modalities:
                # p(v | x) = Σ_k p(k | x) T[k, v] L(v) / Σ_v' T[k, v'] L(v').
                norm = lik[m] @ t.T  # (N, K)
                p_v = ((post / norm) @ t) * lik[m]
            else:
                p_v = post @ t
            out[m] = p_v @ table.values
        return out


def reference_metrics(name: str, labels: Mapping[str, np.ndarray], stats: np.ndarray,
                      seed: int = 0) -> Dict[str, Any]:
    """As `tfrecords.synthetic.reference_metrics`, with the hard family's reference."""
    return _synthetic.reference_metrics(name, labels, stats, seed=seed,
                                        reference=HardBayesReference(name, seed))
