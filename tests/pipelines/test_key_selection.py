"""The key-modality rule: unimodal heads ranked against the fused label (default) or
against their own unimodal labels, with both rankings always reported."""

import numpy as np
import pytest

from m3sa_tf import ConfigError, M3SAConfig
from pipelines.key_selection import choose_key, rank_unimodal_heads

MODALITIES = ("text", "audio", "vision")


def sims_like_predictions(n=400, seed=0):
    """Text's head tracks the fused label; audio's head tracks audio's own label, which
    on these clips has little to do with the fused one (as on real SIMS, where a
    modality's label can be easy to learn and still say little about the sentiment)."""
    rng = np.random.default_rng(seed)
    fused = rng.uniform(-1, 1, n)
    own_text = np.clip(fused + rng.normal(0, 0.3, n), -1, 1)
    own_audio = rng.uniform(-1, 1, n)
    own_vision = np.clip(0.5 * fused + rng.normal(0, 0.5, n), -1, 1)
    return {
        "label_fused": fused,
        "label_text": own_text, "label_audio": own_audio, "label_vision": own_vision,
        "text": fused + rng.normal(0, 0.2, n),        # right about the sentiment
        "audio": own_audio + rng.normal(0, 0.05, n),   # right about its own label only
        "vision": own_vision + rng.normal(0, 0.3, n),
    }


def test_both_rankings_are_reported_and_disagree_when_own_labels_mislead():
    rankings = rank_unimodal_heads(sims_like_predictions(), "sims", MODALITIES)
    assert set(rankings) == {"fused_label", "own_label"}
    assert set(rankings["fused_label"]) == set(rankings["own_label"]) == set(MODALITIES)
    assert choose_key(rankings["fused_label"], MODALITIES) == "text"
    assert choose_key(rankings["own_label"], MODALITIES) == "audio"


def test_without_unimodal_labels_the_two_rankings_coincide():
    predictions = sims_like_predictions()
    for m in MODALITIES:
        del predictions[f"label_{m}"]
    rankings = rank_unimodal_heads(predictions, "mosi", MODALITIES)
    assert rankings["fused_label"] == rankings["own_label"]


def test_ties_go_to_the_earlier_modality_and_no_heads_is_an_error():
    assert choose_key({"text": 0.7, "audio": 0.8, "vision": 0.8}, MODALITIES) == "audio"
    with pytest.raises(ConfigError, match="no unimodal head"):
        choose_key({}, MODALITIES)


def test_the_rule_is_a_validated_training_field():
    config = M3SAConfig.for_dataset("sims")
    assert config.key_modality_rule == "fused_label"
    assert "key_modality_rule" not in config.model_dict()
    with pytest.raises(ConfigError, match="key_modality_rule"):
        M3SAConfig.for_dataset("sims", key_modality_rule="loudest")
