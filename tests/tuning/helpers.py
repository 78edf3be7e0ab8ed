"""Small settings shared by the tuning tests: a tiny synthetic dataset and a tiny model."""

DATASET = "synthetic-mosi"
SCALE = 0.03  # 39 train / 7 valid / 21 test examples
# A tiny, quick-to-trace model: dense extractor, narrow widths. n_scales, channel_ratio,
# the learning rate, dropout and the loss weights stay searchable.
TINY_SET = [
    'hidden_sizes={"text": 8, "audio": 4, "vision": 4}',
    "fusion_dim=8", "num_heads=2", "head_hidden_size=4", "contrastive_dim=8",
    "batch_size=16", "extractor=dense",
]
TINY_OVERRIDES = {
    "hidden_sizes": {"text": 8, "audio": 4, "vision": 4},
    "fusion_dim": 8, "num_heads": 2, "head_hidden_size": 4, "contrastive_dim": 8,
    "batch_size": 16, "extractor": "dense",
}


def set_args(items=TINY_SET):
    """["a=1", "b=2"] → ["--set", "a=1", "--set", "b=2"]."""
    out = []
    for item in items:
        out += ["--set", item]
    return out
