"""M³SA written plainly in PyTorch: the peer that `benchmarks/peer_step.py` times ours against.

    /tmp/torch-venv/bin/python benchmarks/peers/torch_m3sa.py [--batch FILE.npz]
        [--batch-size 64] [--widths 64] [--n-scales 5] [--channel-ratio 4]
        [--warmup 3] [--steps 10] [--threads N] [--lstm padded|packed] [--seed 0]
        [--output FILE.json]

An optional benchmark, run with the Python of a scratch virtual environment that has
torch (benchmarks/peers/README.md). Nothing in `m3sa_tf`, the pipelines or the tests
imports it, and torch is no dependency of the package.

The network follows `m3sa_tf` layer by layer at the configuration the train-step
benchmark times on MOSI shapes (text 50×768, audio 375×5, vision 500×20, batch 64):
the defaults of `M3SAConfig.for_dataset("mosi")`, i.e. n = 5, r = 4, fusion width 128,
4 heads, dropout 0.4, head width 64, readout "last", key modality text (the provisional
key of "auto"), task "contrastive" (MOSI has no unimodal labels) with the unimodal heads
trained as probes, AdamW (learning rate 5e-5, weight decay 5e-3) with every gradient
clipped to norm 1 (Keras' `clipnorm`, per tensor). Every d_m is `--widths` (default 64).

Per modality m (`MultiScaleBlock`, `SentimentHead`, `ContrastiveProjection`):
    F¹ = nn.LSTM(U_m) over the zero-padded sequence, zeroed past the length (eq. 1)
    F^{k+1} = Linear(LayerNorm(ReLU(F^k))), zeroed past the length, k < n (eq. 2)
    SE over the n scales (eqs 4–6): z_k = masked mean over valid steps × d,
        s = ReLU(W2 ReLU(W1 z)), W1: n → n·r, W2: n·r → n (bias starting at 1)
    X_m = einsum("btdn,n->btd", s·F, w) + b, w starting at 1/n (eq. 7, the 1×1 conv)
    ŷ_m = head(stop_gradient(F^n)): last valid step → dropout → Linear(d, 64) → ReLU →
        dropout → Linear(64, 1)
    e_m = Linear(d, 64)(last valid step of X_m)
Fusion (`KeyModalityFusion`, key β = text): P_m = Linear(d_m, 128)(X_m), zeroed past
the length; X_βα = nn.MultiheadAttention(128, 4 heads, dropout 0.4)(P_β, P_α, P_α) for
α = audio, vision (zero when α has no valid step), X_ββ the same as self-attention;
X_f = concat(X_βa, X_βv, X_ββ) [B, T_β, 384], zeroed past the key's length;
ŷ_f = head(X_f) read at the key's last valid step.
Loss (`M3SALoss`, task "contrastive"): batch mean of |ŷ_f − y| + Σ_m 1·|ŷ_m − y| +
Σ_pairs 0.1·ℓ_pair, ℓ of eq. 26 on L2-normalised embeddings, τ = 0.5, the exp(s_ii)
factor detached, the denominator over all N² − N negatives of the batch.

Differences from ours, none of which changes the amount of work much:
- The LSTM reads the zero-padded sequence in full and its outputs past the lengths are
  zeroed: a one-directional LSTM's outputs at valid steps do not depend on the padding
  after them, so this equals Keras' masked LSTM (which also steps through all T). With
  `--lstm packed` it reads a `pack_padded_sequence` instead and skips the padding (less
  work than ours; not the default).
- `nn.MultiheadAttention` gets a key-padding mask [B, T_k]; ours gets a [B, T_q, T_k]
  mask of valid query × valid key. Outputs at valid query steps are the same; padded
  query steps are zeroed afterwards in both.
- The "last valid step" is a gather at length − 1 (ours: a one-hot select and a sum).
- `nn.LSTM` has two bias vectors (input and recurrent) where Keras has one: 4·d more
  parameters per modality (578,809 against our 578,041 at d = 64).
- Initialisers are PyTorch's (ours: Keras' Glorot), Adam's epsilon 1e-8 (Keras 1e-7),
  the subtask-weight schedule is not run (one step at epoch 0 weights) and the
  fused-loss metric that `fit` tracks is not computed.

Output: a JSON record (samples/s = batch size / median step, per-step times, the
parameter count, torch's thread settings, the load average), printed on stdout's last
line and written to `--output` when given.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

MODALITIES = ("text", "audio", "vision")
PAIRS = (("text", "audio"), ("text", "vision"), ("audio", "vision"))
MOSI_SHAPES = {"text": (50, 768), "audio": (375, 5), "vision": (500, 20)}


def zero_past(x, mask):
    """x [B, T, d] with the steps where mask [B, T] is False set to zero."""
    return x * mask.unsqueeze(-1).to(x.dtype)


def last_valid(x, lengths):
    """x [B, T, d] at step length − 1 -> [B, d]; a zero row for length 0."""
    index = (lengths - 1).clamp(min=0)
    picked = x[torch.arange(x.shape[0], device=x.device), index]
    return picked * (lengths > 0).unsqueeze(-1).to(x.dtype)


class MultiScale(nn.Module):
    """Eqs 1–7 for one modality: (X, F^n), both [B, T, d] and zero past the lengths."""

    def __init__(self, in_dim, width, n_scales, ratio, packed=False):
        super().__init__()
        self.packed = packed
        self.lstm = nn.LSTM(in_dim, width, batch_first=True)
        self.norms = nn.ModuleList(nn.LayerNorm(width) for _ in range(n_scales - 1))
        self.denses = nn.ModuleList(nn.Linear(width, width) for _ in range(n_scales - 1))
        self.se_hidden = nn.Linear(n_scales, n_scales * ratio)
        self.se_gates = nn.Linear(n_scales * ratio, n_scales)
        nn.init.ones_(self.se_gates.bias)  # ReLU gate: every scale starts open
        self.conv_weight = nn.Parameter(torch.full((n_scales,), 1.0 / n_scales))
        self.conv_bias = nn.Parameter(torch.zeros(()))

    def forward(self, x, mask, lengths):
        if self.packed:
            packed = nn.utils.rnn.pack_padded_sequence(
                x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
            out, _ = self.lstm(packed)
            feature, _ = nn.utils.rnn.pad_packed_sequence(
                out, batch_first=True, total_length=x.shape[1])
        else:
            feature, _ = self.lstm(x)
        feature = zero_past(feature, mask)
        scales = [feature]
        for norm, dense in zip(self.norms, self.denses):
            feature = zero_past(dense(norm(F.relu(feature))), mask)
            scales.append(feature)
        stacked = torch.stack(scales, dim=-1)  # [B, T, d, n]
        count = lengths.to(x.dtype).clamp(min=1.0) * stacked.shape[2]
        squeezed = stacked.sum(dim=(1, 2)) / count.unsqueeze(-1)  # z, [B, n]
        gates = F.relu(self.se_gates(F.relu(self.se_hidden(squeezed))))  # s, [B, n]
        rescaled = stacked * gates[:, None, None, :]
        mixed = torch.einsum("btdn,n->btd", rescaled, self.conv_weight) + self.conv_bias
        return zero_past(mixed, mask), scales[-1]


class Head(nn.Module):
    """Readout (last valid step, for a sequence) → dropout → Linear → ReLU → dropout →
    Linear(1); [B]."""

    def __init__(self, width, hidden, dropout):
        super().__init__()
        self.drop_in = nn.Dropout(dropout)
        self.hidden = nn.Linear(width, hidden)
        self.drop_hidden = nn.Dropout(dropout)
        self.score = nn.Linear(hidden, 1)

    def forward(self, sequence, lengths):
        pooled = last_valid(sequence, lengths)
        hidden = F.relu(self.hidden(self.drop_in(pooled)))
        return self.score(self.drop_hidden(hidden))[:, 0]


class KeyFusion(nn.Module):
    """Eqs 11–23 around the key modality: [B, T_key, M·fusion_dim]."""

    def __init__(self, widths, key, fusion_dim, heads, dropout):
        super().__init__()
        self.key = key
        self.others = tuple(m for m in widths if m != key)
        self.project = nn.ModuleDict({m: nn.Linear(w, fusion_dim) for m, w in widths.items()})
        self.attend = nn.ModuleDict({
            m: nn.MultiheadAttention(fusion_dim, heads, dropout=dropout, batch_first=True)
            for m in widths})  # attend[key] is the self-attention

    def forward(self, xs, masks):
        projected = {m: zero_past(self.project[m](x), masks[m]) for m, x in xs.items()}
        query = projected[self.key]
        parts = []
        for m in self.others + (self.key,):
            has_keys = masks[m].any(dim=1)
            # A row without any valid key would give NaN: let it attend to everything
            # and drop its result (has_keys), as ours gives zeros there.
            ignore = ~masks[m] & has_keys.unsqueeze(1)
            attended, _ = self.attend[m](query, projected[m], projected[m],
                                         key_padding_mask=ignore, need_weights=False)
            parts.append(attended * has_keys[:, None, None].to(attended.dtype))
        return zero_past(torch.cat(parts, dim=-1), masks[self.key])


class TorchM3SA(nn.Module):
    def __init__(self, feature_dims, widths, n_scales=5, ratio=4, fusion_dim=128, heads=4,
                 dropout=0.4, head_hidden=64, contrastive_dim=64, key="text",
                 packed=False):
        super().__init__()
        self.modalities = tuple(feature_dims)
        self.blocks = nn.ModuleDict({
            m: MultiScale(feature_dims[m], widths[m], n_scales, ratio, packed)
            for m in self.modalities})
        self.heads = nn.ModuleDict({m: Head(widths[m], head_hidden, dropout)
                                    for m in self.modalities})
        self.embed = nn.ModuleDict({m: nn.Linear(widths[m], contrastive_dim)
                                    for m in self.modalities})
        self.key = key
        self.fusion = KeyFusion({m: widths[m] for m in self.modalities}, key, fusion_dim,
                                heads, dropout)
        self.fused_head = Head(len(self.modalities) * fusion_dim, head_hidden, dropout)

    def forward(self, features, lengths):
        masks, xs, outputs = {}, {}, {}
        for m in self.modalities:
            steps = features[m].shape[1]
            masks[m] = torch.arange(steps).unsqueeze(0) < lengths[m].unsqueeze(1)
            x, last_scale = self.blocks[m](zero_past(features[m], masks[m]), masks[m],
                                           lengths[m])
            xs[m] = x
            outputs[m] = self.heads[m](last_scale.detach(), lengths[m])  # probe heads
            outputs[f"embedding_{m}"] = self.embed[m](last_valid(x, lengths[m]))
        fused = self.fusion(xs, masks)
        outputs["fused"] = self.fused_head(fused, lengths[self.key])
        return outputs


def contrastive_terms(a, b, temperature=0.5):
    """Per-sample terms of eq. 26 [B] (normalised, all N² − N negatives, weight detached)."""
    a, b = F.normalize(a, dim=-1, eps=1e-6), F.normalize(b, dim=-1, eps=1e-6)
    similarity = a @ b.T / temperature
    positive = similarity.diagonal()
    off_diagonal = ~torch.eye(similarity.shape[0], dtype=torch.bool)
    log_negatives = torch.logsumexp(similarity.masked_fill(~off_diagonal, -1e9).flatten(), 0)
    log_probability = positive - torch.logaddexp(positive, log_negatives)
    return -positive.exp().detach() * log_probability


def m3sa_loss(outputs, target, modalities, pair_weight=0.1, unimodal_weight=1.0):
    total = (outputs["fused"] - target).abs()
    for m in modalities:
        total = total + unimodal_weight * (outputs[m] - target).abs()
    for first, second in PAIRS:
        if first in modalities and second in modalities:
            total = total + pair_weight * contrastive_terms(outputs[f"embedding_{first}"],
                                                            outputs[f"embedding_{second}"])
    return total.mean()


def random_batch(batch_size, seed):
    """Like benchmarks/train_step.py's synthetic_batch: lengths uniform in [1, T], normal
    values zeroed past them, labels uniform in [-3, 3]."""
    rng = np.random.default_rng(seed)
    features = {}
    for m, (steps, dim) in MOSI_SHAPES.items():
        lengths = rng.integers(1, steps + 1, size=batch_size).astype("int32")
        values = rng.normal(size=(batch_size, steps, dim)).astype("float32")
        values *= np.arange(steps)[None, :, None] < lengths[:, None, None]
        features[m] = values
        features[f"{m}_length"] = lengths
    return features, {"fused": rng.uniform(-3, 3, size=batch_size).astype("float32")}


def load_batch(path):
    """(features, labels) from an .npz of `feature/NAME` and `label/NAME` arrays."""
    with np.load(path) as data:
        features = {k.split("/", 1)[1]: data[k] for k in data.files if k.startswith("feature/")}
        labels = {k.split("/", 1)[1]: data[k] for k in data.files if k.startswith("label/")}
    return features, labels


def clip_each(parameters, max_norm):
    """Keras' `clipnorm`: every gradient tensor scaled to norm <= max_norm on its own."""
    grads = [p.grad for p in parameters if p.grad is not None]
    norms = torch._foreach_norm(grads)
    scales = [torch.clamp(max_norm / (n + 1e-12), max=1.0) for n in norms]
    torch._foreach_mul_(grads, scales)


def run(args) -> dict:
    load_before = os.getloadavg()
    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(args.threads)
    except RuntimeError:  # already set (only possible before any parallel work)
        pass
    torch.manual_seed(args.seed)
    features, labels = load_batch(args.batch) if args.batch else random_batch(
        args.batch_size, args.seed)
    batch_size = int(labels["fused"].shape[0])
    modalities = tuple(m for m in MODALITIES if m in features)
    feature_dims = {m: int(features[m].shape[-1]) for m in modalities}
    widths = {m: args.widths for m in modalities}
    model = TorchM3SA(feature_dims, widths, n_scales=args.n_scales, ratio=args.channel_ratio,
                      packed=args.lstm == "packed")
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=5e-3)
    parameters = [p for p in model.parameters() if p.requires_grad]
    inputs = {m: torch.from_numpy(features[m]) for m in modalities}
    lengths = {m: torch.from_numpy(features[f"{m}_length"]).long() for m in modalities}
    target = torch.from_numpy(labels["fused"])

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = m3sa_loss(model(inputs, lengths), target, modalities)
        loss.backward()
        clip_each(parameters, 1.0)
        optimizer.step()
        return float(loss.detach())

    start = time.perf_counter()
    step()
    first_step_s = time.perf_counter() - start
    for _ in range(args.warmup - 1):
        step()
    step_seconds, losses = [], []
    for _ in range(args.steps):
        start = time.perf_counter()
        losses.append(step())
        step_seconds.append(time.perf_counter() - start)
    if not all(np.isfinite(losses)):
        raise FloatingPointError(f"the peer's training loss became non-finite: {losses}")
    median_s = statistics.median(step_seconds)
    return {
        "implementation": "pytorch-peer",
        "batch_size": batch_size,
        "shapes": {m: list(features[m].shape[1:]) for m in modalities},
        "lengths_mean": {m: float(np.mean(features[f"{m}_length"])) for m in modalities},
        "widths": args.widths,
        "n_scales": args.n_scales,
        "channel_ratio": args.channel_ratio,
        "lstm": args.lstm,
        "parameters": int(sum(p.numel() for p in parameters)),
        "warmup_steps": args.warmup,
        "timed_steps": args.steps,
        "first_step_seconds": first_step_s,
        "step_ms_median": 1000.0 * median_s,
        "step_ms_min": 1000.0 * min(step_seconds),
        "step_ms_max": 1000.0 * max(step_seconds),
        "step_ms_all": [1000.0 * s for s in step_seconds],
        "samples_per_s": batch_size / median_s,
        "final_loss": losses[-1],
        "threads": {"torch.get_num_threads": torch.get_num_threads(),
                    "torch.get_num_interop_threads": torch.get_num_interop_threads()},
        "versions": {"torch": torch.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
        "load_average_1_5_15min": {"before": list(load_before),
                                   "after": list(os.getloadavg())},
    }


def positive_int(text):
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", default=None,
                        help=".npz batch (written by benchmarks/peer_step.py); default: a "
                             "random MOSI-shaped batch drawn from --seed")
    parser.add_argument("--batch-size", type=positive_int, default=64,
                        help="size of the random batch (ignored with --batch)")
    parser.add_argument("--widths", type=positive_int, default=64, help="every d_m")
    parser.add_argument("--n-scales", type=positive_int, default=5)
    parser.add_argument("--channel-ratio", type=positive_int, default=4)
    parser.add_argument("--warmup", type=positive_int, default=3,
                        help="untimed steps first")
    parser.add_argument("--steps", type=positive_int, default=10, help="timed steps")
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    parser.add_argument("--threads", type=positive_int, default=cpus,
                        help="intra- and inter-op threads (default: the usable CPUs)")
    parser.add_argument("--lstm", choices=("padded", "packed"), default="padded")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None, help="also write the record here")
    args = parser.parse_args(argv)
    record = run(args)
    record["command"] = " ".join([os.path.basename(sys.executable), "torch_m3sa.py"]
                                 + list(sys.argv[1:] if argv is None else argv))
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            json.dump(record, handle, indent=2)
    print(f"peer: {record['samples_per_s']:.1f} samples/s, "
          f"{record['step_ms_median']:.0f} ms/step (median of {args.steps})", file=sys.stderr)
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
