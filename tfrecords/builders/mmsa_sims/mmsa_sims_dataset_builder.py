"""CH-SIMS (MMSA's processed features), built from the user's pickle."""

from tfrecords.builders.real import RealMSABuilder, manual_download_instructions


class Builder(RealMSABuilder):
    """CH-SIMS as MMSA ships it: BERT text features, audio and vision sequences.

    The user downloads the pickle; see `MANUAL_DOWNLOAD_INSTRUCTIONS`.
    """

    DATASET = "sims"
    DESCRIPTION = """CH-SIMS from MMSA's processed pickle; sequences trimmed to their
    true lengths (text length from the BERT attention mask), -inf in audio set to 0."""
    MANUAL_DOWNLOAD_INSTRUCTIONS = manual_download_instructions("sims", "CH-SIMS")
