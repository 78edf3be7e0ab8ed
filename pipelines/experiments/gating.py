"""Does a model discount a clip's unreliable modality? Shifts under a swapped modality.

A fusion model that weighs each clip's modalities by how trustworthy they look should
move little when one modality of a clip is replaced by another clip's: the swapped-in
modality contradicts the others about half of the time, and a gating model treats it as
it treats an unreliable recording. A model that averages its modalities with fixed
weights moves in proportion to the weight. The measure, per modality and condition:

- ``shift``: the mean |prediction(condition) − prediction(clean)| over the test clips;
- ``relative_shift``: that divided by the standard deviation of the clean predictions,
  so that a model whose predictions span a wider range is not penalised for it.

``gating_verdict`` compares a model with a peer (typically the same model with equal
fusion) seed by seed. "Moves less than the peer" is only a fair demand where the ideal
predictor itself moves less than the peer: a swapped-in modality that is usually
reliable is strong evidence, and the Bayes posterior mean of the hard synthetic family
follows some modality *more* than equal fusion does on three of the four hard test
splits measured (docs/model.md §6.4–6.6); a model that moved less there would be discarding
evidence, not gating. So a modality is judged only when a reference record (the Bayes
reference of the hard data) moves less than the peer, or when no reference is given.

Example:
    >>> import numpy as np
    >>> clean = np.array([-1.0, 0.0, 1.0, 2.0])
    >>> record = shift_record({"clean": clean, "corrupted:audio": clean + 0.5},
    ...                       {"clean": 0.75, "corrupted:audio": 0.5})
    >>> round(record["corrupted:audio"]["relative_shift"], 4)
    0.4472
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Sequence

import numpy as np

from pipelines.experiments.significance import paired_seed_test

KINDS = ("corrupted", "missing")


def shift_record(predictions: Mapping[str, Any],
                 accuracies: Mapping[str, float]) -> Dict[str, Dict[str, float]]:
    """One run's shifts: {"clean": {"accuracy"}, condition: {"shift", "relative_shift",
    "accuracy"}}.

    Args:
        predictions: {condition: predictions for the same clips in the same order};
            "clean" first.
        accuracies: {condition: the headline accuracy under it}.

    Raises:
        ValueError: no "clean" entry, predictions of different lengths, or a non-finite
            prediction.
    """
    if "clean" not in predictions:
        raise ValueError(f"predictions need a 'clean' entry; got {sorted(predictions)}")
    clean = np.asarray(predictions["clean"], dtype=np.float64)
    spread = float(np.std(clean)) or 1.0
    out = {"clean": {"accuracy": float(accuracies["clean"])}}
    for name, values in predictions.items():
        if name == "clean":
            continue
        values = np.asarray(values, dtype=np.float64)
        if values.shape != clean.shape:
            raise ValueError(f"{name}: {values.shape[0] if values.ndim else 0} predictions "
                             f"but {clean.shape[0]} clean ones; they must be the same clips")
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{name}: a prediction is NaN or infinite")
        shift = float(np.mean(np.abs(values - clean)))
        out[name] = {"shift": shift, "relative_shift": shift / spread,
                     "accuracy": float(accuracies[name])}
    return out


def gating_verdict(
    model: Mapping[Any, Mapping[str, Mapping[str, float]]],
    peer: Mapping[Any, Mapping[str, Mapping[str, float]]],
    modalities: Sequence[str],
    *,
    reference: Optional[Mapping[str, Mapping[str, float]]] = None,
    kind: str = "corrupted",
    alpha: float = 0.05,
) -> Dict[str, Any]:
    """Per modality: does ``model`` move less than ``peer`` when it is swapped?

    Args:
        model, peer: {seed: `shift_record`} of each model's runs. They are paired by
            seed; only the seeds both have count.
        modalities: the modalities to judge.
        reference: a `shift_record` of the ideal predictor on the same clips (the Bayes
            reference), or None to judge every modality.
        kind: "corrupted" (swapped for another clip's) or "missing".
        alpha: the paired seed test's level for "significant".

    Returns:
        {"seeds": [...], "modalities": {m: {"model", "peer", "reference",
        "expected", "mean_difference", "p_value", "significant", "passes"}},
        "passed": bool}. ``expected`` is whether the demand applies (the reference moves
        less than the peer's mean, or no reference); ``passes`` whether the model's mean
        relative shift over the paired seeds is below the peer's; ``passed`` whether
        every expected modality passes (and at least one is expected).

    Raises:
        ValueError: an unknown kind, no common seed, or a record without the condition.
    """
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not one of {list(KINDS)}")
    seeds = sorted(set(model) & set(peer), key=str)
    if not seeds:
        raise ValueError(f"no seed in common: model has {sorted(model, key=str)}, "
                         f"peer has {sorted(peer, key=str)}; the comparison pairs runs "
                         "by seed")
    verdicts: Dict[str, Dict[str, Any]] = {}
    for modality in modalities:
        condition = f"{kind}:{modality}"
        for name, runs in (("model", model), ("peer", peer)):
            missing = [s for s in seeds if condition not in runs[s]]
            if missing:
                raise ValueError(f"{name} run(s) of seed {missing} have no {condition!r} "
                                 f"record; they have {sorted(runs[missing[0]])}")
        ours = [model[s][condition]["relative_shift"] for s in seeds]
        theirs = [peer[s][condition]["relative_shift"] for s in seeds]
        test = paired_seed_test(theirs, ours)
        ideal = None if reference is None else reference[condition]["relative_shift"]
        expected = ideal is None or ideal < float(np.mean(theirs))
        verdicts[modality] = {
            "model": float(np.mean(ours)), "peer": float(np.mean(theirs)),
            "reference": ideal, "expected": bool(expected),
            "mean_difference": test["mean_difference"], "p_value": test["p_value"],
            "significant": test["p_value"] is not None and test["p_value"] < alpha,
            "passes": test["mean_difference"] < 0,
        }
    judged = [v for v in verdicts.values() if v["expected"]]
    return {"kind": kind, "seeds": list(seeds), "modalities": verdicts,
            "passed": bool(judged) and all(v["passes"] for v in judged)}
