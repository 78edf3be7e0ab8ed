"""The paper's key-modality rule (§III-B): which modality leads the fusion.

`select_key_modality` ranks a trained model's unimodal heads on VALIDATION data;
`warm_up_and_choose` trains the short warm-up model that rule needs and records the
choice in the run directory so that a resumed run keeps it.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Dict, Sequence, Tuple

import keras
import tensorflow as tf

from m3sa_tf import ConfigError, M3SAConfig
from msa_core.io import write_json_atomic
from pipelines import run_dir as rundir
from pipelines.protocol import build_compiled_model, predict_dataset, unimodal_scores


def select_key_modality(
    model: keras.Model,
    valid_dataset: tf.data.Dataset,
    family: str,
    modalities: Sequence[str],
) -> Tuple[str, Dict[str, float]]:
    """The paper's key-modality rule (§III-B): the modality whose unimodal head is most
    accurate on VALIDATION data (ties go to the earlier modality in `modalities`).
    Returns (key, {modality: accuracy})."""
    predictions = predict_dataset(model, valid_dataset)
    scores = unimodal_scores(predictions, family, modalities)
    if not scores:
        raise ConfigError(f"the model has no unimodal head among {list(modalities)}")
    best = max(scores.values())
    key = next(m for m in modalities if scores.get(m) == best)
    return key, scores


def warm_up_and_choose(info, valid_eval, phase_args, write_dir, verbose, fit_phase):
    """Trains the warm-up model (`fit_phase` is the driver's resumable fit) with the
    provisional key, then the validation ranking. The choice
    is stored in checkpoints/key_modality.json so that a resumed run keeps it."""
    config: M3SAConfig = phase_args["config"]
    strategy = phase_args["strategy"]
    provisional = "text" if "text" in config.modalities else config.modalities[0]
    # The heads are ranked by how well they predict, so the warm-up must train them:
    # it always uses the multi-task loss (eq. 25). Data without unimodal labels
    # (MOSI, MOSEI) trains them on the fused label, the only label there is; the
    # contrastive loss of the main fit gives the unimodal heads no gradient at all.
    warm_info = info
    warm_sets = dict(phase_args["datasets"])
    if not info.has_unimodal_labels:
        warm_info = dataclasses.replace(info, has_unimodal_labels=True)
        modalities = tuple(config.modalities)

        def proxy_labels(features, labels):
            return features, {**labels, **{m: labels["fused"] for m in modalities}}

        warm_sets = {split: ds.map(proxy_labels) for split, ds in warm_sets.items()}
    warm_config = config.replace(task="multitask", learning_rate=config.warmup_learning_rate)
    warm_model = build_compiled_model(
        warm_config, warm_info, key_modality=provisional, strategy=strategy
    )
    warm_args = dict(phase_args, config=warm_config, datasets=warm_sets)
    checkpoint = fit_phase(
        name="warmup", model=warm_model, epochs=config.key_warmup_epochs, patience=None,
        extra_callbacks=(), **warm_args,
    )
    stored = rundir.read_optional_json(
        os.path.join(phase_args["read_dir"], rundir.CHECKPOINT_DIR, rundir.KEY_FILE))
    if stored is not None:
        key, scores = stored["key_modality"], stored["unimodal_validation_accuracy"]
    else:
        key, scores = select_key_modality(
            warm_model, valid_eval, info.family, tuple(config.modalities)
        )
        write_json_atomic(
            os.path.join(write_dir, rundir.CHECKPOINT_DIR, rundir.KEY_FILE),
            {"key_modality": key, "unimodal_validation_accuracy": scores},
        )
    rundir.say(verbose, f"key modality: {key} (validation accuracy of the unimodal heads: "
         + ", ".join(f"{m} {v:.4f}" for m, v in scores.items()) + ")")
    return key, scores, checkpoint.log, warm_model
