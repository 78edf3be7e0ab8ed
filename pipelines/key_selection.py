"""The paper's key-modality rule (§III-B): which modality leads the fusion.

`rank_unimodal_heads` scores a trained model's unimodal heads on VALIDATION data, both
against the fused label and against each modality's own label; `select_key_modality`
picks the key by the configured rule (`M3SAConfig.key_modality_rule`);
`warm_up_and_choose` trains the short warm-up model the rule needs and records the
choice in the run directory so that a resumed run keeps it.

Why the fused label by default: a head that predicts its *own* modality's label well
says how learnable that label is, not how much the modality tells about the multimodal
sentiment the model has to predict. The paper ranks the modalities by their unimodal
sentiment results (Fig. 5: one modality predicting the sentiment), which is the
fused-label ranking. On data without unimodal labels (MOSI, MOSEI) the two coincide.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Dict, Mapping, Sequence, Tuple

import keras
import numpy as np
import tensorflow as tf

from m3sa_tf import ConfigError, M3SAConfig
from m3sa_tf import metrics as msa_metrics
from m3sa_tf.losses import M3SALoss
from m3sa_tf.models import provisional_key
from msa_core.io import write_json_atomic
from pipelines import run_dir as rundir
from pipelines.protocol import build_compiled_model, predict_dataset, unimodal_scores


def rank_unimodal_heads(
    predictions: Mapping[str, np.ndarray], family: str, modalities: Sequence[str]
) -> Dict[str, Dict[str, float]]:
    """Each unimodal head's accuracy under both rules: {"fused_label": {modality: acc},
    "own_label": {modality: acc}} ("own_label" falls back to the fused label where the
    data has no unimodal labels, so both rankings always exist)."""
    fused = {
        m: float(msa_metrics.unimodal_accuracy(family, predictions["label_fused"],
                                               predictions[m]))
        for m in modalities if m in predictions
    }
    return {"fused_label": fused,
            "own_label": unimodal_scores(predictions, family, modalities)}


def choose_key(scores: Mapping[str, float], modalities: Sequence[str]) -> str:
    """The modality with the best score; ties go to the earlier one in `modalities`."""
    if not scores:
        raise ConfigError(f"the model has no unimodal head among {list(modalities)}")
    best = max(scores.values())
    return next(m for m in modalities if scores.get(m) == best)


def select_key_modality(
    model: keras.Model,
    valid_dataset: tf.data.Dataset,
    family: str,
    modalities: Sequence[str],
    rule: str = "fused_label",
) -> Tuple[str, Dict[str, Dict[str, float]]]:
    """The key modality by `rule` ("fused_label" or "own_label") from the unimodal heads'
    VALIDATION accuracy. Returns (key, rankings) with `rankings` as
    `rank_unimodal_heads` gives them."""
    if rule not in ("fused_label", "own_label"):
        raise ConfigError(f"key_modality_rule={rule!r} is not 'fused_label' or 'own_label'")
    rankings = rank_unimodal_heads(predict_dataset(model, valid_dataset), family, modalities)
    return choose_key(rankings[rule], modalities), rankings


def shares_warmup_graph(config: M3SAConfig, has_unimodal_labels: bool) -> bool:
    """Whether the main model of `config` can itself be the key-modality warm-up
    (`M3SALoss.set_key_warmup`): M³SA with a loss that trains the unimodal heads."""
    return config.model == "m3sa" and M3SALoss.heads_are_trained(
        config, config.resolve_task(bool(has_unimodal_labels)))


def continue_after_warmup(model: keras.Model, config: M3SAConfig) -> None:
    """Turns the warm-up model into the main fit's starting point, as a fresh model with
    the warm-up's weights would be (the main fit's loss, the optimizer's moments and
    step count at zero, the main learning rate) while keeping the model's traced
    training, validation and prediction functions."""
    model.m3sa_loss.set_key_warmup(False)
    optimizer = model.optimizer
    # Adam's moments and the step count start at zero; the learning rate is set after.
    for variable in optimizer.variables:
        variable.assign(tf.zeros(variable.shape, variable.dtype))
    optimizer.learning_rate = float(config.learning_rate)


def warm_up_and_choose(info, valid_eval, phase_args, write_dir, verbose, fit_phase):
    """Trains the warm-up model (`fit_phase` is the driver's resumable fit) with the
    provisional key, then the validation ranking. The choice
    is stored in checkpoints/key_modality.json so that a resumed run keeps it.

    Returns (key, scores, rankings, warm-up epoch log, warm-up model, shared): with
    `shared` True the warm-up model is the main fit's own model (same configuration,
    in warm-up mode) and can continue as the main model when the key stays the
    provisional one (`continue_after_warmup`)."""
    config: M3SAConfig = phase_args["config"]
    strategy = phase_args["strategy"]
    provisional = provisional_key(config)
    # The heads are ranked by how well they predict, so the warm-up must train them:
    # it uses the multi-task loss (eq. 25) with the heads' gradient reaching the
    # blocks. Data without unimodal labels (MOSI, MOSEI) trains them on the fused
    # label, the only label there is. Where the main model's loss can be switched to
    # that (`M3SALoss.set_key_warmup`), the warm-up trains the main model itself, so
    # that both phases share one traced graph.
    warm_config = config.replace(learning_rate=config.warmup_learning_rate)
    warm_info = info
    warm_sets = dict(phase_args["datasets"])
    shared = shares_warmup_graph(config, info.has_unimodal_labels)
    if not shared:
        if not info.has_unimodal_labels:
            warm_info = dataclasses.replace(info, has_unimodal_labels=True)
            modalities = tuple(config.modalities)

            def proxy_labels(features, labels):
                return features, {**labels, **{m: labels["fused"] for m in modalities}}

            warm_sets = {split: ds.map(proxy_labels) for split, ds in warm_sets.items()}
        warm_config = warm_config.replace(task="multitask")
    warm_model = build_compiled_model(
        warm_config, warm_info, key_modality=provisional, strategy=strategy
    )
    if shared:
        warm_model.m3sa_loss.set_key_warmup(True)
    warm_args = dict(phase_args, config=warm_config, datasets=warm_sets)
    checkpoint = fit_phase(
        name="warmup", model=warm_model, epochs=config.key_warmup_epochs, patience=None,
        extra_callbacks=(), **warm_args,
    )
    stored = rundir.read_optional_json(
        os.path.join(phase_args["read_dir"], rundir.CHECKPOINT_DIR, rundir.KEY_FILE))
    rule = config.key_modality_rule
    if stored is not None:
        key, scores = stored["key_modality"], stored["unimodal_validation_accuracy"]
        rankings = stored.get("rankings", {rule: scores})
    else:
        key, rankings = select_key_modality(
            warm_model, valid_eval, info.family, tuple(config.modalities), rule=rule
        )
        scores = rankings[rule]
        write_json_atomic(
            os.path.join(write_dir, rundir.CHECKPOINT_DIR, rundir.KEY_FILE),
            {"key_modality": key, "rule": rule, "unimodal_validation_accuracy": scores,
             "rankings": rankings},
        )
    against = "the fused label" if rule == "fused_label" else "their own labels"
    rundir.say(verbose, f"key modality: {key} (validation accuracy of the unimodal heads "
               f"against {against}: " + ", ".join(f"{m} {v:.4f}" for m, v in scores.items())
               + ")")
    return key, scores, rankings, checkpoint.log, warm_model, shared and key == provisional
