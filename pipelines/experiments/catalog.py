"""The paper's experiments (§IV, Figs. 4–9, Tables II/III) as lists of cells.

An experiment is a question asked by training a few variants of the model — its *cells*
— under one protocol and comparing each with a *reference* cell: does multi-scale help
(Fig. 7), which fusion wins (Fig. 8), how many scales (Fig. 4), which modalities (Fig. 5),
text features from BERT or word vectors (Fig. 6), which extractor (Fig. 9), does M³SA
beat the baselines (Tables II/III), and, beyond the paper, how each model copes with a
missing or corrupted modality (`robustness`).

A cell is a set of configuration overrides applied over the user's base configuration
(dataset defaults, `--hparams`, `--set`, `--epochs`). Its `key` — "default", or the
overrides written out ("multi_scale=false,modalities=text+audio") — names its run
directory, so two experiments that contain the same cell (the full model is the
reference of most of them) can share one finished run through `--runs-dir`.

Example:

>>> [cell.label for cell in get_experiment("multiscale").cells(ExperimentOptions())]
['T+A+V (MS)', 'T+A+V', 'T+A (MS)', 'T+A', 'T+V (MS)', 'T+V']
>>> get_experiment("fusion").cells(ExperimentOptions())[1].key
'key_modality=text'
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from m3sa_tf.config import DEFAULT_MODEL
from msa_core.constants import MODALITIES

# The paper's short names of the modalities (Figs. 5, 7, 8).
ABBREVIATIONS = {"text": "T", "audio": "A", "vision": "V"}
# The n × r grid of Fig. 4 (n from 2 to 7, r from 1 to 7); the tuner's ranges too.
FIG4_N_SCALES = (2, 7)
FIG4_CHANNEL_RATIOS = (1, 7)
# The metrics a figure shows, as the paper's figures and tables do: Acc_2, Acc_3 (SIMS;
# Acc_7 for the MOSI family, whose labels MMSA scores on seven classes), F1, MAE, Corr.
FIGURE_METRICS = {
    "mosi": ("Has0_acc_2", "Has0_F1_score", "Mult_acc_7", "MAE", "Corr"),
    "sims": ("Mult_acc_2", "Mult_acc_3", "F1_score", "MAE", "Corr"),
}
# The one metric of a robustness figure and of a scales heat map.
HEADLINE_METRIC = {"mosi": "Has0_acc_2", "sims": "Mult_acc_2"}
# Table II of the paper (real CH-SIMS), in our metric names and as fractions. Table III
# (CMU-MOSI) did not survive in the text we have, and Figs. 4–9 give no numbers.
PAPER_TABLE_II = {
    "ef_lstm": (0.6937, 0.5427, 0.5655, 0.5901, 0.1033),
    "lf_dnn": (0.7855, 0.6641, 0.7811, 0.4440, 0.5794),
    "tfn": (0.7724, 0.6597, 0.7680, 0.4352, 0.5814),
    "lmf": (0.7855, 0.6630, 0.7808, 0.4401, 0.5881),
    "misa": (0.7648, 0.6105, 0.7461, 0.4781, 0.5224),
    "mlf_dnn": (0.7899, 0.6727, 0.7919, 0.4289, 0.5849),
    "mtfn": (0.7943, 0.6827, 0.7992, 0.4057, 0.6298),
    DEFAULT_MODEL: (0.8162, 0.6808, 0.8146, 0.4010, 0.6140),
}
DEFAULT_ROBUSTNESS_MODELS = ("lf_dnn", "tfn", "lmf")
DEFAULT_MODALITY_DROPOUT = 0.3


class ExperimentError(ValueError):
    """An experiment name, option or cell that cannot be run."""


@dataclasses.dataclass(frozen=True)
class Cell:
    """One variant of an experiment.

    Attributes:
        label: the name the paper's figure or table gives it ("T+A (MS)", "TFN").
        overrides: (field, value) pairs applied over the base configuration; a
            "model" entry selects a baseline of the zoo (with its own defaults).
    """

    label: str
    overrides: Tuple[Tuple[str, Any], ...] = ()

    @property
    def key(self) -> str:
        """The cell's run-directory name: the overrides, sorted, or "default"."""
        if not self.overrides:
            return "default"
        return ",".join(f"{name}={_slug(value)}" for name, value in sorted(self.overrides))

    @property
    def values(self) -> Dict[str, Any]:
        return {name: _plain(value) for name, value in self.overrides}

    @property
    def model(self) -> str:
        return self.values.get("model", DEFAULT_MODEL)


def cell(label: str, **overrides: Any) -> Cell:
    """A `Cell` from keyword overrides (lists become tuples so cells stay hashable)."""
    return Cell(label, tuple((k, _frozen(v)) for k, v in overrides.items()))


@dataclasses.dataclass(frozen=True)
class ExperimentOptions:
    """What a user may choose about an experiment's cells.

    Attributes:
        models: baselines of `baselines` / `robustness` (None: every model of the zoo
            that the data supports, resp. DEFAULT_ROBUSTNESS_MODELS).
        n_values, r_values: the grid of `scales` (None: the paper's 2–7 × 1–7).
        word_vectors, word_vectors_vocab: a local GloVe-format file and the vocabulary
            of the data's token ids, for the `transfer` cell that starts from them.
        modality_dropout: rate of the robustness cell trained with modality dropout.
        family: the dataset family ("mosi" or "sims"), which decides which baselines
            the data supports.
    """

    models: Optional[Tuple[str, ...]] = None
    n_values: Optional[Tuple[int, ...]] = None
    r_values: Optional[Tuple[int, ...]] = None
    word_vectors: Optional[str] = None
    word_vectors_vocab: Optional[str] = None
    modality_dropout: float = DEFAULT_MODALITY_DROPOUT
    family: str = "mosi"


@dataclasses.dataclass(frozen=True)
class Experiment:
    """An experiment of the catalog.

    Attributes:
        name: the command's NAME.
        title: what it asks.
        source: where the paper has it ("Fig. 7", "Tables II/III", "§VI").
        build: options → the cells, reference first.
        robustness: whether every run is also evaluated under missing / corrupted
            modalities.
        heat_map: whether the figure is the n × r heat map.
        reference_values: what the reference cell must be on the fields the
            experiment varies. Its cell carries no overrides (so that experiments share
            it), so a base configuration that sets one of these fields otherwise
            (`--set extractor=gru` for `extractor`) would silently change the reference;
            `check_reference` refuses it.
    """

    name: str
    title: str
    source: str
    build: Callable[[ExperimentOptions], List[Cell]]
    robustness: bool = False
    heat_map: bool = False
    reference_values: Tuple[Tuple[str, Any], ...] = ()

    def check_reference(self, config: Any) -> None:
        """Raises ExperimentError when `config`, the reference cell's configuration,
        is not the reference this experiment compares against."""
        for name, expected in self.reference_values:
            actual = getattr(config, name)
            if isinstance(actual, tuple):
                actual = list(actual)
            if actual != _plain(expected):
                raise ExperimentError(
                    f"the {self.name} experiment varies {name}, and its reference cell "
                    f"needs {name}={_plain(expected)!r}; the base configuration (--set / "
                    f"--hparams) makes it {actual!r}. Leave {name} out of the base "
                    "configuration")

    def cells(self, options: ExperimentOptions) -> List[Cell]:
        cells = self.build(options)
        keys = [c.key for c in cells]
        if len(set(keys)) != len(keys):
            raise ExperimentError(f"experiment {self.name!r} has repeated cells: {keys}")
        return cells

    def reference(self, options: ExperimentOptions) -> Cell:
        """The cell every other is compared with: the first."""
        return self.cells(options)[0]

    def paper_numbers(self, family: str, cells: Sequence[Cell]) -> Dict[str, Dict[str, float]]:
        """{cell label: {metric: value}} the paper reports for these cells (real data)."""
        if self.name != "baselines" or family != "sims":
            return {}
        out = {}
        for c in cells:
            numbers = PAPER_TABLE_II.get(c.model)
            if numbers is not None:
                out[c.label] = dict(zip(FIGURE_METRICS["sims"], numbers))
        return out


def modality_label(modalities: Sequence[str]) -> str:
    """("text", "audio") → "T+A"."""
    return "+".join(ABBREVIATIONS[m] for m in modalities)


def _subsets() -> List[Tuple[str, ...]]:
    singles = [(m,) for m in MODALITIES]
    pairs = [(a, b) for i, a in enumerate(MODALITIES) for b in MODALITIES[i + 1:]]
    return singles + pairs


def _baselines(options: ExperimentOptions) -> List[Cell]:
    from m3sa_tf.models.registry import get_spec, model_names

    names = list(options.models) if options.models is not None else [
        n for n in model_names() if n != DEFAULT_MODEL
        and (options.family == "sims" or not get_spec(n).needs_unimodal_labels)
    ]
    cells = [cell("M³SA")]
    for name in names:
        if name == DEFAULT_MODEL:
            continue
        spec = get_spec(name)  # names the known models when unknown
        if spec.needs_unimodal_labels and options.family != "sims":
            raise ExperimentError(
                f"{name} needs unimodal labels, which {options.family!r}-family data lacks; "
                "leave it out of --models"
            )
        cells.append(cell(spec.title, model=name))
    return cells


def _scales(options: ExperimentOptions) -> List[Cell]:
    n_values = options.n_values or tuple(range(FIG4_N_SCALES[0], FIG4_N_SCALES[1] + 1))
    r_values = options.r_values or tuple(
        range(FIG4_CHANNEL_RATIOS[0], FIG4_CHANNEL_RATIOS[1] + 1))
    grid = [(n, r) for n in n_values for r in r_values]
    # The paper's choice (n = 5, r = 4) is the reference when the grid holds it.
    grid.sort(key=lambda nr: nr != (5, 4))
    return [cell(f"n={n} r={r}", n_scales=n, channel_ratio=r) for n, r in grid]


def _modalities(options: ExperimentOptions) -> List[Cell]:
    cells = [cell("T+A+V")]
    for subset in reversed(_subsets()):  # pairs, then single modalities, as in Fig. 5
        cells.append(cell(modality_label(subset), modalities=list(subset)))
    return cells


def _transfer(options: ExperimentOptions) -> List[Cell]:
    cells = [cell("BERT features"), cell("word embedding", text_path="embedding")]
    if options.word_vectors:
        if not options.word_vectors_vocab:
            raise ExperimentError(
                "--word-vectors needs --word-vectors-vocab: the vocabulary (one token per "
                "line, line i = token id i) of the data's token ids")
        cells.append(cell("GloVe", text_path="embedding", word_vectors=options.word_vectors,
                          word_vectors_vocab=options.word_vectors_vocab))
    return cells


def _multiscale(options: ExperimentOptions) -> List[Cell]:
    cells = []
    for subset in (MODALITIES, ("text", "audio"), ("text", "vision")):
        extra = {} if subset == MODALITIES else {"modalities": list(subset)}
        label = modality_label(subset)
        cells.append(cell(f"{label} (MS)", **extra))
        cells.append(cell(label, multi_scale=False, **extra))
    return cells


def _fusion(options: ExperimentOptions) -> List[Cell]:
    cells = [cell("auto key")]
    cells += [cell(f"{ABBREVIATIONS[m]}*", key_modality=m) for m in MODALITIES]
    cells += [cell("Equal", fusion="equal"), cell("Early", fusion="early"),
              cell("Late", fusion="late")]
    return cells


def _extractor(options: ExperimentOptions) -> List[Cell]:
    return [cell("LSTM"), cell("GRU", extractor="gru"), cell("RNN", extractor="simple_rnn"),
            cell("Linear", extractor="dense")]


def _robustness(options: ExperimentOptions) -> List[Cell]:
    from m3sa_tf.models.registry import get_spec

    if not 0.0 < options.modality_dropout < 1.0:
        raise ExperimentError(
            f"--modality-dropout {options.modality_dropout} must lie in (0, 1)")
    cells = [cell("M³SA"),
             cell(f"M³SA + modality dropout {options.modality_dropout:g}",
                  modality_dropout=options.modality_dropout)]
    names = options.models if options.models is not None else DEFAULT_ROBUSTNESS_MODELS
    for name in names:
        if name == DEFAULT_MODEL:
            continue
        spec = get_spec(name)
        if spec.needs_unimodal_labels and options.family != "sims":
            raise ExperimentError(f"{name} needs unimodal labels; leave it out of --models")
        cells.append(cell(spec.title, model=name))
    return cells


_ALL_MODALITIES = (("modalities", MODALITIES),)

EXPERIMENTS: Dict[str, Experiment] = {
    e.name: e for e in (
        Experiment("baselines", "M³SA against the baselines of the zoo", "Tables II/III",
                   _baselines, reference_values=(("model", DEFAULT_MODEL),)),
        Experiment("scales", "number of scales n × channel ratio r", "Fig. 4", _scales,
                   heat_map=True),
        Experiment("modalities", "which modalities: one, two or all three", "Fig. 5",
                   _modalities, reference_values=_ALL_MODALITIES),
        Experiment("transfer", "text from BERT features or from word vectors", "Fig. 6",
                   _transfer, reference_values=(("text_path", "features"),)),
        Experiment("multiscale", "with and without multi-scale extraction (MS)", "Fig. 7",
                   _multiscale, reference_values=(("multi_scale", True),) + _ALL_MODALITIES),
        Experiment("fusion", "key-modality fusion against equal, early and late fusion",
                   "Fig. 8", _fusion,
                   reference_values=(("fusion", "key"), ("key_modality", "auto"))
                   + _ALL_MODALITIES),
        Experiment("extractor", "the first-scale extractor: LSTM, GRU, RNN or linear",
                   "Fig. 9", _extractor, reference_values=(("extractor", "lstm"),)),
        Experiment("robustness",
                   "missing or corrupted modalities at test time, and modality dropout",
                   "§VI (beyond the paper)", _robustness, robustness=True,
                   reference_values=(("model", DEFAULT_MODEL), ("modality_dropout", 0.0))
                   + _ALL_MODALITIES),
    )
}


def experiment_names() -> Tuple[str, ...]:
    return tuple(EXPERIMENTS)


def get_experiment(name: str) -> Experiment:
    try:
        return EXPERIMENTS[name]
    except KeyError:
        raise ExperimentError(
            f"unknown experiment {name!r}; expected one of {list(EXPERIMENTS)}") from None


def check_cell_config(config: Any, cell_: Cell) -> None:
    """Raises ExperimentError when a cell's configuration cannot be what it names."""
    for name, value in cell_.values.items():
        if name == "model":
            continue
        actual = getattr(config, name)
        if isinstance(actual, tuple):
            actual = list(actual)
        if actual != value:
            raise ExperimentError(
                f"cell {cell_.label!r} sets {name}={value!r} but its configuration has "
                f"{actual!r}")


def _frozen(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _slug(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return "+".join(str(v) for v in value)
    text = str(value)
    if "/" in text or "\\" in text:  # a file path: its base name keeps the key a file name
        text = text.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return text


__all__ = [
    "Cell", "Experiment", "ExperimentError", "ExperimentOptions", "EXPERIMENTS",
    "FIGURE_METRICS", "HEADLINE_METRIC", "PAPER_TABLE_II", "cell", "check_cell_config",
    "experiment_names", "get_experiment", "modality_label",
]
