"""synthetic-mosei: CMU-MOSEI's shapes and quirks with a planted sentiment signal."""

from tfrecords.builders.synthetic import SyntheticMSABuilder


class Builder(SyntheticMSABuilder):
    """Synthetic CMU-MOSEI: same shapes, split sizes, label range and quirks, a known
    Bayes-optimal predictor (`tfrecords.synthetic`). Configs are (scale, seed)."""

    DATASET = "synthetic-mosei"
    DESCRIPTION = """Synthetic stand-in for CMU-MOSEI (see tfrecords/synthetic.py): the real
    shapes, split sizes and quirks, with a planted signal strongest in text, then vision,
    then audio. Metadata key `m3sa` holds the Bayes reference metrics per split."""
