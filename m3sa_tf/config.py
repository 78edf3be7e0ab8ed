"""The single configuration object of M³SA-TF.

`M3SAConfig` holds every hyper-parameter of the model, its losses and its training
protocol. Per-dataset defaults follow Table I of the paper where it gives a value; where
the paper is silent or its value does not suit a from-scratch model, the field's
docstring says what was chosen and why. The object round-trips through JSON, which is
the form `pipelines.train --hparams FILE` reads and `tuning.search` writes.

Example:

>>> cfg = M3SAConfig.for_dataset("mosi", n_scales=4)
>>> M3SAConfig.from_json(cfg.to_json()) == cfg
True
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from msa_core.constants import DATASET_FAMILIES as _DATASET_FAMILY
from msa_core.constants import MODALITIES, PAIRS  # noqa: F401  (re-exported)
from msa_core.io import read_json

EXTRACTORS = ("lstm", "gru", "simple_rnn", "dense", "conv")
READOUTS = ("last", "mean", "max", "attention")
FUSIONS = ("key", "equal", "early", "late", "multi_key")
FUSION_GATES = ("none", "null_step", "sigmoid", "softmax")
KEY_MODALITIES = ("auto",) + MODALITIES
TEXT_PATHS = ("features", "bert", "embedding")
TASKS = ("auto", "multitask", "contrastive", "fused_only")
EXCITATION_GATES = ("relu", "sigmoid")
CONTRASTIVE_PAIR_WEIGHTS = ("detached", "full", "none")
UNIMODAL_HEAD_TRAININGS = ("probe", "auxiliary", "off")
BEST_EPOCH_MONITORS = ("fused_loss", "loss")
KEY_MODALITY_RULES = ("fused_label", "own_label")
BATCHINGS = ("bucketed", "longest", "max_length")
REGRESSION_LOSSES = ("l1", "mse", "huber")
WEIGHT_SCHEDULES = ("constant", "exponential", "linear", "cosine")
DEFAULT_MODEL = "m3sa"
# How the model is trained rather than what it is: kept out of a saved model's config
# (model.keras), so that a model file says nothing about batch size or patience.
TRAINING_FIELDS = (
    "batch_size", "learning_rate", "weight_decay", "epochs", "early_stopping_patience",
    "best_epoch_monitor", "key_warmup_epochs", "key_warmup_learning_rate",
    "key_modality_rule", "gradient_clip_norm", "modality_dropout", "word_vectors", "word_vectors_vocab",
    "batching",
)


class ConfigError(ValueError):
    """A configuration value or key that M³SA-TF cannot use."""


@dataclasses.dataclass(frozen=True)
class M3SAConfig:
    """Every hyper-parameter of M³SA, with the paper's defaults.

    Which model:
        model: "m3sa" (default) or the name of a baseline of the model zoo
            (`m3sa_tf.models.registry.MODEL_NAMES`: ef_lstm, lf_dnn, tfn, …).
        model_hparams: a baseline's own hyper-parameters (its spec's defaults for the
            dataset family, with these entries applied over them; unknown keys are an
            error). Empty for M³SA, whose hyper-parameters are the fields below. The
            training fields (batch size, learning rate, epochs, …) serve every model; a
            baseline's defaults for them follow MMSA's per-dataset configuration.

    Model (paper §III-A, III-C):
        n_scales: number of scales n (eq. 2); the paper's optimum on MOSI is 5.
        channel_ratio: channel transformation ratio r of the SE excitation (eq. 5); the
            hidden width of the excitation is n·r. Paper optimum 4.
        multi_scale: False turns the multi-scale block off (one scale, no SE), the
            ablation of Fig. 7.
        extractor: first-scale extractor of eq. 1: "lstm" (paper), "gru", "simple_rnn"
            or "dense" (Fig. 9), or "conv" (not in the paper: a window detector of
            parallel 1-D convolutions, `WindowConvolution`; pair it with
            readout="max" or "attention").
        conv_kernel_sizes: the "conv" extractor's kernel widths in steps.
        hidden_sizes: width d_m of each modality's extractor output.
        readout: how a sequence becomes a vector for the unimodal heads (eqs 8–10) and
            the fused head (eq. 24); the paper leaves it open.
        fusion_dim: common width every X_m is projected to before attention.
        num_heads: heads h of every multi-head attention (Table I gives 5 for SIMS).
        dropout: dropout rate (Table I: 0.4 MOSI, 0.3 SIMS).
        fusion: "key" (the paper's key-modality fusion), the Fig. 8 ablations
            "equal", "early", "late", or "multi_key" (key fusion around every modality,
            mixed with per-clip weights: a clip can move away from an unreliable key).
        fusion_gate: how key-modality fusion may discount, clip by clip, a modality
            that does not fit the key: "none" (the paper's eqs 18–22), "null_step" (each
            cross-attention also sees a learned null step), "sigmoid" (a per-clip gate
            on each cross-attended part) or "softmax" (per-clip weights over all parts,
            the key's own included, equal before training); `KeyModalityFusion`,
            docs/model.md §6.
        key_modality: "auto" picks the modality whose unimodal head is most accurate on
            validation data after a warm-up (see `key_modality_rule`); or a fixed
            "text", "audio", "vision".
        modalities: the modalities the model sees (Fig. 5 subsets).
        text_path: "features" (precomputed BERT feature sequences from the data),
            "bert" (a keras-hub BERT backbone inside the model, fed token ids) or
            "embedding" (a word-embedding table over the data's own token ids, trained
            from scratch or started from `word_vectors`: the paper's GloVe path, Fig. 6).
        word_embedding_dim: width of the "embedding" text path's vectors (300, GloVe's
            common width; a `word_vectors` file's width must match).
        vocab_size: rows of the "embedding" table: the id space of the data's token ids
            (30522 for the uncased BERT vocabulary of MOSI/MOSEI, 21128 for SIMS's
            Chinese one; None: the dataset's).
        bert_preset: keras-hub preset name or local checkpoint directory for "bert".
        bert_trainable: fine-tune the backbone (True) or freeze it.
        head_hidden_size: width of the hidden layer of every sentiment head (eqs 8–10,
            24); the paper does not give it.
        excitation_gate: outer activation of the SE excitation (eq. 5). "relu" is what
            the paper writes; "sigmoid" is SENet's original gate. With "relu" the
            excitation's output bias starts at 1 so that no scale starts switched off.

    Losses (paper §III-D):
        task: "multitask" (eq. 25, needs unimodal labels), "contrastive" (eqs 26–27),
            "fused_only", or "auto" (multitask when the data has unimodal labels, else
            contrastive).
        regression_loss: per-subtask loss L_i of eq. 25.
        fused_weight: ∂_f.
        unimodal_weights: ∂_T, ∂_A, ∂_V of eq. 25 at epoch 0.
        contrastive_weights: ∂_αβ of eq. 27 per modality pair, at epoch 0.
        temperature: τ of eq. 26.
        contrastive_normalize: L2-normalise the projected embeddings before the dot
            products of eq. 26 (cosine similarity / τ). The paper says "dot product";
            normalising bounds exp(s/τ) and so the exp(·) weight in front of eq. 26's log.
        contrastive_pair_weight: how eq. 26's exp(u_α·u_β/τ) factor in front of the log
            is treated: "detached" (a per-pair weight, no gradient through it; default),
            "full" (the literal formula, gradient through the weight too, which rewards
            lowering the positive similarity), "none" (drop the factor: plain InfoNCE).
        unimodal_head_training: how the unimodal heads (eqs 8–10) learn when the task is
            not "multitask" (eqs 26–27 have no unimodal term, yet the heads' predictions
            are outputs and rank the modalities for the key choice, §III-B). They regress
            the unimodal label when the batch has one, else the fused label, weighted by
            the (decaying) unimodal weights. "probe" (default): the gradient stops at the
            heads' input F^n, so the network itself is trained by eq. 27 exactly;
            "auxiliary": the gradient flows into the blocks (extra subtasks); "off": the
            heads are not trained.
        contrastive_dim: width of the shared embedding the modalities are projected to
            before their dot products (the paper's modalities differ in width).
        subtask_weight_schedule / subtask_weight_decay / subtask_weight_floor: the
            paper's "dynamic weight decay" of the subtask weights, made explicit:
            epoch e multiplies every unimodal and contrastive weight by a factor that is
            1 at e = 0 and never below the floor (a fraction of the initial weight).
            "exponential": decay**e; "linear": 1 - decay·e; "cosine": half a cosine
            over `epochs`; "constant": 1.

    Training (paper §IV-C, Table I, and the field's protocol):
        batch_size, learning_rate, weight_decay (AdamW), epochs,
        early_stopping_patience, key_warmup_epochs (epochs of unimodal training before
        an "auto" key modality is chosen), seed, gradient_clip_norm.
        key_modality_rule: what the warm-up's unimodal heads are scored against when
            `key_modality="auto"`: "fused_label" (default), the multimodal label, i.e.
            how much each modality alone says about the sentiment the model must
            predict (the paper ranks by its unimodal sentiment results, Fig. 5); or
            "own_label", each modality's own unimodal label where the data has one
            (SIMS). The two differ only on data with unimodal labels, where "own_label"
            measures how learnable a modality's label is rather than how informative the
            modality is; both rankings are recorded in metrics.json (docs/model.md).
        batching: how the training batches are formed. "bucketed" (default): clips of
            similar length (`tfrecords.pipeline.length_key`) are batched together and
            each batch is padded only to its longest sequence, so the recurrences skip
            most of the padding (about half of the audio and vision steps of MOSI-like
            data); "longest": shuffled batches padded to their longest sequence;
            "max_length": shuffled batches padded to the dataset's padded lengths
            (fixed shapes). Validation and test batches keep their order and are padded
            to their longest sequence ("max_length": to the padded lengths).
        key_warmup_learning_rate: the warm-up's learning rate (None: `learning_rate`).
            1e-3 by default: the warm-up only has to rank the unimodal heads, and at
            MOSI's 5e-5 two epochs left them at chance (validation accuracy text 0.485,
            audio 0.515 with seed 2222 on full-size synthetic-mosi), so the choice was a
            coin toss. The main fit starts from the warm-up's blocks and heads.
        learning_rate per dataset: Table I's 5e-5 on MOSI/MOSEI (it trains from scratch
        and did at least as well on validation as 1e-3); 1e-3 on SIMS, where Table I's
        1e-6 barely moves the validation loss in 20 epochs (docs/model.md).
        modality_dropout: in training only, each modality of each clip is removed (as
            if its sequence were empty) with this probability, never all of a clip's
            modalities; new draws every epoch from `seed`. 0 by default: 0.2 raised
            validation acc-2 on full-size synthetic-sims-hard but lowered it on the easy
            synthetic-sims (docs/model.md §6.5).
        best_epoch_monitor: the validation loss that picks the best epoch and drives
            early stopping. "fused_loss" (default): the fused head's regression loss
            L_f alone, which is what MMSA selects on; "loss": the whole weighted loss.
            The paper says "validation loss"; its subtask weights decay every epoch, so
            the whole loss falls by construction and would favour late epochs.
    """

    dataset: str = "mosi"
    # --- which model: M³SA (every field below) or a baseline of the zoo
    model: str = DEFAULT_MODEL
    model_hparams: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    # --- model
    n_scales: int = 5
    channel_ratio: int = 4
    multi_scale: bool = True
    extractor: str = "lstm"
    conv_kernel_sizes: Tuple[int, ...] = (4, 16, 48)
    hidden_sizes: Mapping[str, int] = dataclasses.field(
        default_factory=lambda: {"text": 128, "audio": 32, "vision": 64}
    )
    readout: str = "last"
    fusion_dim: int = 128
    num_heads: int = 4
    dropout: float = 0.4
    fusion: str = "key"
    fusion_gate: str = "none"
    key_modality: str = "auto"
    modalities: Tuple[str, ...] = MODALITIES
    text_path: str = "features"
    bert_preset: Optional[str] = None
    bert_trainable: bool = True
    word_embedding_dim: int = 300
    vocab_size: Optional[int] = None
    head_hidden_size: int = 64
    excitation_gate: str = "relu"
    # --- losses
    task: str = "auto"
    regression_loss: str = "l1"
    fused_weight: float = 1.0
    unimodal_weights: Mapping[str, float] = dataclasses.field(
        default_factory=lambda: {"text": 1.0, "audio": 1.0, "vision": 1.0}
    )
    contrastive_weights: Mapping[str, float] = dataclasses.field(
        default_factory=lambda: {"text_audio": 0.1, "text_vision": 0.1, "audio_vision": 0.1}
    )
    temperature: float = 0.5
    contrastive_normalize: bool = True
    contrastive_pair_weight: str = "detached"
    unimodal_head_training: str = "probe"
    contrastive_dim: int = 64
    subtask_weight_schedule: str = "exponential"
    subtask_weight_decay: float = 0.95
    subtask_weight_floor: float = 0.1
    # --- training
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 5e-3
    epochs: int = 50
    early_stopping_patience: int = 8
    best_epoch_monitor: str = "fused_loss"
    key_warmup_epochs: int = 2
    key_warmup_learning_rate: Optional[float] = 1e-3
    key_modality_rule: str = "fused_label"
    batching: str = "bucketed"
    gradient_clip_norm: Optional[float] = 1.0
    modality_dropout: float = 0.0
    word_vectors: Optional[str] = None
    word_vectors_vocab: Optional[str] = None
    seed: int = 1111

    # ------------------------------------------------------------------ construction
    @classmethod
    def for_dataset(cls, dataset: str, **overrides: Any) -> "M3SAConfig":
        """The defaults for `dataset` (Table I; for a baseline, `overrides["model"]`,
        its own defaults for the dataset's family), with `overrides` applied on top."""
        family = _DATASET_FAMILY.get(dataset)
        if family is None:
            raise ConfigError(
                f"unknown dataset {dataset!r}; expected one of {sorted(_DATASET_FAMILY)}"
            )
        base: Dict[str, Any] = {"dataset": dataset}
        if family == "sims":
            base.update(dropout=0.3, epochs=100, num_heads=5)
        else:
            base.update(dropout=0.4, epochs=50, num_heads=4, learning_rate=5e-5)
        model = overrides.get("model", DEFAULT_MODEL)
        if model != DEFAULT_MODEL:
            spec = _model_spec(model)
            base.update(spec.training_defaults(family))
        base.update(overrides)
        return cls.from_dict(base)

    @classmethod
    def from_overrides(
        cls,
        dataset: Optional[str] = None,
        *,
        hparams_file: Optional[str] = None,
        assignments: Sequence[str] = (),
        default_dataset: str = "synthetic-mosi",
        **values: Any,
    ) -> "M3SAConfig":
        """The one resolver of user overrides, used by every CLI and by `run_fn`.

        Later wins: the dataset's (and model's) defaults, the JSON file `hparams_file`
        (the config's JSON form, possibly partial), the `assignments` ("key=value"
        strings of `--set`; the value is read as JSON when it parses, else as a string;
        "hidden_sizes.text=32" sets one entry of a mapping field, and
        "model_hparams.hidden_dim=64" one of a baseline's hyper-parameters), then
        `values` (dedicated flags such as epochs=…; None values are ignored). The
        dataset is `dataset`, else the file's, else `default_dataset`.

        Example:

        >>> cfg = M3SAConfig.from_overrides("mosi", assignments=["hidden_sizes.text=32",
        ...                                                     "dropout=0.1"], epochs=3)
        >>> cfg.hidden_sizes["text"], cfg.dropout, cfg.epochs
        (32, 0.1, 3)
        """
        file_values: Dict[str, Any] = {}
        if hparams_file:
            file_values = dict(read_hparams_file(hparams_file))
        file_dataset = file_values.pop("dataset", None)
        if dataset and file_dataset and dataset != file_dataset:
            raise ConfigError(
                f"dataset {dataset!r} disagrees with {hparams_file}, which is for "
                f"{file_dataset!r}"
            )
        merged = dict(file_values)
        for key, value in parse_assignments(assignments).items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
        merged.update({k: v for k, v in values.items() if v is not None})
        return cls.for_dataset(dataset or file_dataset or default_dataset, **merged)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "M3SAConfig":
        """Builds a config from a plain dict; unknown keys are an error, not ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigError(
                f"unknown hyper-parameter(s) {unknown}; expected keys among {sorted(names)}"
            )
        values = dict(values)
        model = values.get("model", DEFAULT_MODEL)
        if model != DEFAULT_MODEL or values.get("model_hparams"):
            family = _DATASET_FAMILY.get(values.get("dataset", "mosi"), "mosi")
            values["model_hparams"] = _model_spec(model).resolve_hparams(
                family, values.get("model_hparams") or {}
            )
        for key in ("modalities", "conv_kernel_sizes"):
            if key in values:
                values[key] = tuple(values[key])
        for key in ("hidden_sizes", "unimodal_weights", "contrastive_weights"):
            if key in values:
                default = getattr(cls(), key)
                merged = dict(default)
                extra = sorted(set(values[key]) - set(default))
                if extra:
                    raise ConfigError(
                        f"{key} has unknown key(s) {extra}; expected {sorted(default)}"
                    )
                merged.update({k: v for k, v in values[key].items()})
                values[key] = merged
        config = cls(**values)
        config.validate()
        return config

    def replace(self, **overrides: Any) -> "M3SAConfig":
        """A copy with `overrides` applied and validated."""
        return type(self).from_dict({**self.to_dict(), **overrides})

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> Dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Mapping):
                value = dict(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    def reported_dict(self) -> Dict[str, Any]:
        """The fields that concern `self.model`: every field for M³SA; for a baseline
        its hyper-parameters, the training fields, the data's and the seed, and the
        config fields its spec says it reads."""
        values = self.to_dict()
        if self.model == DEFAULT_MODEL:
            return values
        keep = {"dataset", "model", "model_hparams", "modalities", "text_path",
                "bert_preset", "bert_trainable", "seed"} | set(TRAINING_FIELDS)
        keep |= set(_model_spec(self.model).config_fields)
        keep -= {"key_warmup_epochs", "key_warmup_learning_rate", "key_modality_rule"}
        return {k: v for k, v in values.items() if k in keep}

    def model_dict(self) -> Dict[str, Any]:
        """`to_dict` without the training fields: what a saved model records."""
        return {k: v for k, v in self.to_dict().items() if k not in TRAINING_FIELDS}

    def to_json(self, indent: int = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "M3SAConfig":
        try:
            values = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(f"hyper-parameters are not valid JSON: {err}") from err
        if not isinstance(values, dict):
            raise ConfigError(
                f"hyper-parameters must be a JSON object, got {type(values).__name__}"
            )
        return cls.from_dict(values)

    @classmethod
    def from_json_file(cls, path: str, **overrides: Any) -> "M3SAConfig":
        """Reads a JSON file; a file holding a subset of keys is applied over the
        dataset's defaults (its "dataset" key, or `overrides["dataset"]`)."""
        values = dict(read_hparams_file(path))
        values.update(overrides)
        dataset = values.pop("dataset", "mosi")
        return cls.for_dataset(dataset, **values)

    # ------------------------------------------------------------------ derived values
    @property
    def family(self) -> str:
        """"mosi" (MOSI, MOSEI and their synthetic twins) or "sims"."""
        return _DATASET_FAMILY[self.dataset]

    @property
    def warmup_learning_rate(self) -> float:
        """The key-modality warm-up's learning rate: `key_warmup_learning_rate`, or the
        main `learning_rate` when that is None."""
        if self.key_warmup_learning_rate is None:
            return self.learning_rate
        return self.key_warmup_learning_rate

    def resolve_task(self, has_unimodal_labels: bool) -> str:
        """The loss actually used: "auto" becomes multitask or contrastive."""
        if self.task == "auto":
            return "multitask" if has_unimodal_labels else "contrastive"
        if self.task == "multitask" and not has_unimodal_labels:
            raise ConfigError(
                f"task='multitask' needs unimodal labels, and dataset {self.dataset!r} has "
                "none; use task='contrastive' or 'auto'"
            )
        return self.task

    def subtask_weight_factor(self, epoch: int) -> float:
        """Multiplier of the unimodal/contrastive weights at `epoch` (0-based)."""
        import math

        if self.subtask_weight_schedule == "constant":
            factor = 1.0
        elif self.subtask_weight_schedule == "exponential":
            factor = self.subtask_weight_decay ** epoch
        elif self.subtask_weight_schedule == "linear":
            factor = 1.0 - self.subtask_weight_decay * epoch
        else:  # cosine
            span = max(self.epochs - 1, 1)
            factor = 0.5 * (1.0 + math.cos(math.pi * min(epoch, span) / span))
        return max(factor, self.subtask_weight_floor)

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Raises ConfigError naming the first bad value and what was expected."""

        def choice(name, allowed):
            value = getattr(self, name)
            if value not in allowed:
                raise ConfigError(f"{name}={value!r} is not one of {list(allowed)}")

        def positive(name, integer=False, allow_zero=False):
            value = getattr(self, name)
            ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
            if isinstance(value, bool) or not ok_type or value < 0 or (value == 0 and not allow_zero):
                kind = "integer" if integer else "number"
                bound = ">= 0" if allow_zero else "> 0"
                raise ConfigError(f"{name}={value!r} must be a {kind} {bound}")

        if self.model != DEFAULT_MODEL:
            spec = _model_spec(self.model)  # names the accepted models when unknown
            if spec.needs_unimodal_labels and _DATASET_FAMILY.get(self.dataset) != "sims":
                from m3sa_tf.models.registry import check_data_supports

                check_data_supports(self.model, False, self.dataset)
        elif self.model_hparams:
            raise ConfigError(
                f"model_hparams={dict(self.model_hparams)!r} is for baselines; M³SA's "
                "hyper-parameters are the config's own fields"
            )
        if self.dataset not in _DATASET_FAMILY:
            raise ConfigError(
                f"dataset={self.dataset!r} is not one of {sorted(_DATASET_FAMILY)}"
            )
        for name, allowed in (
            ("extractor", EXTRACTORS),
            ("readout", READOUTS),
            ("fusion", FUSIONS),
            ("fusion_gate", FUSION_GATES),
            ("key_modality", KEY_MODALITIES),
            ("text_path", TEXT_PATHS),
            ("task", TASKS),
            ("regression_loss", REGRESSION_LOSSES),
            ("subtask_weight_schedule", WEIGHT_SCHEDULES),
            ("excitation_gate", EXCITATION_GATES),
            ("contrastive_pair_weight", CONTRASTIVE_PAIR_WEIGHTS),
            ("unimodal_head_training", UNIMODAL_HEAD_TRAININGS),
            ("best_epoch_monitor", BEST_EPOCH_MONITORS),
            ("key_modality_rule", KEY_MODALITY_RULES),
            ("batching", BATCHINGS),
        ):
            choice(name, allowed)
        if self.fusion_gate != "none" and (self.model != DEFAULT_MODEL or self.fusion != "key"):
            raise ConfigError(
                f"fusion_gate={self.fusion_gate!r} gates M³SA's key-modality fusion; it "
                f"needs model='m3sa' and fusion='key' (got model={self.model!r}, "
                f"fusion={self.fusion!r})")
        for name in ("n_scales", "channel_ratio", "fusion_dim", "num_heads", "contrastive_dim",
                     "batch_size", "epochs", "head_hidden_size"):
            positive(name, integer=True)
        for name in ("early_stopping_patience", "key_warmup_epochs", "seed"):
            positive(name, integer=True, allow_zero=True)
        for name in ("learning_rate", "temperature"):
            positive(name)
        for name in ("weight_decay", "fused_weight", "subtask_weight_decay",
                     "subtask_weight_floor"):
            positive(name, allow_zero=True)
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout={self.dropout!r} must be in [0, 1)")
        if (isinstance(self.modality_dropout, bool)
                or not isinstance(self.modality_dropout, (int, float))
                or not 0.0 <= self.modality_dropout < 1.0):
            raise ConfigError(
                f"modality_dropout={self.modality_dropout!r} must be a number in [0, 1)")
        positive("word_embedding_dim", integer=True)
        if self.vocab_size is not None:
            positive("vocab_size", integer=True)
        if self.word_vectors is not None and self.text_path != "embedding":
            raise ConfigError(
                f"word_vectors={self.word_vectors!r} initialises the 'embedding' text path; "
                f"text_path is {self.text_path!r}")
        if self.word_vectors is not None and not self.word_vectors_vocab:
            raise ConfigError(
                "word_vectors needs word_vectors_vocab: the vocabulary file (one token per "
                "line, line i = token id i) that names the token of each id")
        for name in ("multi_scale", "bert_trainable", "contrastive_normalize"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name}={getattr(self, name)!r} must be true or false")
        if self.gradient_clip_norm is not None:
            positive("gradient_clip_norm")
        if self.key_warmup_learning_rate is not None:
            positive("key_warmup_learning_rate")
        if not self.modalities or len(set(self.modalities)) != len(self.modalities) or any(
            m not in MODALITIES for m in self.modalities
        ):
            raise ConfigError(
                f"modalities={list(self.modalities)!r} must be a non-empty subset of "
                f"{list(MODALITIES)} without repeats"
            )
        if self.key_modality not in ("auto",) + tuple(self.modalities):
            raise ConfigError(
                f"key_modality={self.key_modality!r} is not among the model's modalities "
                f"{list(self.modalities)} (or 'auto')"
            )
        sizes = tuple(self.conv_kernel_sizes)
        if not sizes or any(isinstance(k, bool) or not isinstance(k, int) or k < 1
                            for k in sizes):
            raise ConfigError(f"conv_kernel_sizes={list(sizes)!r} must be a non-empty list "
                              "of integers >= 1 (kernel widths in steps)")
        if self.extractor == "conv":
            narrow = {m: w for m, w in self.hidden_sizes.items() if w < len(sizes)}
            if narrow:
                raise ConfigError(f"extractor='conv' splits each width across its "
                                  f"{len(sizes)} kernels; hidden_sizes {narrow} are "
                                  f"narrower than that")
        for key, value in self.hidden_sizes.items():
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"hidden_sizes[{key!r}]={value!r} must be an integer > 0")
        for field_name in ("unimodal_weights", "contrastive_weights"):
            for key, value in getattr(self, field_name).items():
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                    raise ConfigError(f"{field_name}[{key!r}]={value!r} must be a number >= 0")
        if self.text_path == "bert" and not self.bert_preset:
            raise ConfigError(
                "text_path='bert' needs bert_preset: a keras-hub preset name or a local "
                "checkpoint directory"
            )
        if self.subtask_weight_floor > 1.0:
            raise ConfigError(
                f"subtask_weight_floor={self.subtask_weight_floor!r} must be in [0, 1]"
            )

    @property
    def uses_key_modality(self) -> bool:
        """Whether training must settle a key modality (M³SA with key fusion)."""
        return self.model == DEFAULT_MODEL and self.fusion == "key"

    def __hash__(self) -> int:  # dict fields make the generated hash unusable
        return hash(self.to_json())


def _model_spec(name: str):
    # Imported here: the registry imports the models, which import this module.
    from m3sa_tf.models.registry import get_spec

    return get_spec(name)


def read_hparams_file(path: str) -> Dict[str, Any]:
    """The JSON object of hyper-parameters in `path`, or a ConfigError naming the file
    and what is wrong with it."""
    values = read_json(path, error=ConfigError)
    if not isinstance(values, dict):
        raise ConfigError(f"{path} must hold a JSON object of hyper-parameters")
    return values


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _check_type(key: str, value: Any, default: Any) -> None:
    """The value's JSON type must fit the field's default (bool, int, number, string,
    mapping, list); `validate` then checks the range."""
    if default is None:
        return
    if isinstance(default, bool):
        ok, expected = isinstance(value, bool), "true or false"
    elif isinstance(default, int):
        ok, expected = isinstance(value, int) and not isinstance(value, bool), "an integer"
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        expected = "a number"
    elif isinstance(default, str):
        ok, expected = isinstance(value, str), "a string"
    elif isinstance(default, dict):
        ok, expected = isinstance(value, dict), "a JSON object"
    else:
        ok, expected = isinstance(value, list), "a JSON list"
    if not ok:
        raise ConfigError(f"{key}={json.dumps(value)}: expected {expected}")


# Fields that accept null ("use the fallback"), e.g. gradient_clip_norm=null: no clipping.
_NULLABLE_FIELDS = frozenset(
    f.name for f in dataclasses.fields(M3SAConfig) if str(f.type).startswith("Optional")
)


def parse_assignments(items: Sequence[str]) -> Dict[str, Any]:
    """`["dropout=0.1", "hidden_sizes.text=32"]` → {"dropout": 0.1, "hidden_sizes":
    {"text": 32}}; unknown fields and values of the wrong JSON type are ConfigErrors."""
    defaults = M3SAConfig().to_dict()
    overrides: Dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"{item!r}: expected KEY=VALUE")
        key, raw = item.split("=", 1)
        key = key.strip()
        value = _parse_value(raw)
        if "." in key:
            field, entry = key.split(".", 1)
            if field not in defaults or not isinstance(defaults[field], dict):
                raise ConfigError(f"{key}: {field!r} is not a mapping field of M3SAConfig")
            overrides.setdefault(field, {})[entry] = value
            continue
        if key not in defaults:
            raise ConfigError(
                f"{key}: unknown hyper-parameter; expected one of {sorted(defaults)}"
            )
        if not (value is None and key in _NULLABLE_FIELDS):
            _check_type(key, value, defaults[key])
        if isinstance(value, dict):
            overrides.setdefault(key, {}).update(value)
        else:
            overrides[key] = value
    return overrides
