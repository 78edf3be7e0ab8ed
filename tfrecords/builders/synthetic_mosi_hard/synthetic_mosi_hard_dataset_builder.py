"""synthetic-mosi-hard: CMU-MOSI's shapes and quirks, a windowed signal with per-clip
reliability (`tfrecords.synthetic_hard`)."""

from tfrecords.builders.synthetic import SyntheticMSABuilder


class Builder(SyntheticMSABuilder):
    """Hard synthetic CMU-MOSI: same shapes, split sizes, label range and quirks as the real
    data; the label is not linear in pooled features; an exact Bayes-optimal predictor
    (`tfrecords.synthetic_hard`). Configs are (scale, seed)."""

    DATASET = "synthetic-mosi-hard"
    DESCRIPTION = """Hard synthetic stand-in for CMU-MOSI (see tfrecords/synthetic_hard.py):
    the real shapes, split sizes and quirks, audio/vision lengths distributed like the real
    data; the sentiment shows in a window at an unknown position, a label-independent
    baseline elsewhere, and each modality is present, absent or sign-flipped per clip.
    Metadata key `m3sa` holds the Bayes reference metrics per split."""
