"""synthetic-sims: CH-SIMS's shapes and quirks with a planted sentiment signal."""

from tfrecords.builders.synthetic import SyntheticMSABuilder


class Builder(SyntheticMSABuilder):
    """Synthetic CH-SIMS: same shapes, split sizes, label range and quirks, a known
    Bayes-optimal predictor (`tfrecords.synthetic`). Configs are (scale, seed)."""

    DATASET = "synthetic-sims"
    DESCRIPTION = """Synthetic stand-in for CH-SIMS (see tfrecords/synthetic.py): the real
    shapes, split sizes and quirks, with a planted signal strongest in text, then vision,
    then audio. Metadata key `m3sa` holds the Bayes reference metrics per split."""
