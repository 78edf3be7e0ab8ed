"""Builder base for the real datasets, read from the user's MMSA pickle."""

from __future__ import annotations

from typing import ClassVar, Optional

from tfrecords import mmsa_pickle, specs
from tfrecords.builders.base import MSABuilderBase

_INSTRUCTIONS = """\
    Download MMSA's processed features of {title} yourself (see
    https://github.com/thuiar/MMSA, "Datasets"): the file `{path}`. Then build with

        python -m tfrecords.build --dataset {name} --source /path/to/{path} --data-dir DIR

    (`--source` may also be the folder holding the file). Nothing is downloaded for you.
    """


def manual_download_instructions(name: str, title: str) -> str:
    folder = {"mosi": "MOSI", "sims": "SIMS", "mosei": "MOSEI"}[name]
    path = f"{folder}/Processed/{specs.spec_for(name).pickle_name}"
    return _INSTRUCTIONS.format(title=title, path=path, name=name)


class RealMSABuilder(MSABuilderBase, skip_registration=True):
    """Builds a real dataset from MMSA's pickle in `manual_dir` (or `source_path`).

    Arguments:
        source_path: the pickle file, or a folder holding it; defaults to the download
            manager's `manual_dir`.
        **kwargs: passed to `tfds.core.GeneratorBasedBuilder` (`data_dir`, ...).
    """

    def __init__(self, *, source_path: Optional[str] = None, **kwargs):
        self._source_path = source_path
        super().__init__(**kwargs)

    def _split_generators(self, dl_manager):
        source = self._source_path or str(dl_manager.manual_dir)
        splits = mmsa_pickle.load_mmsa_pickle(source, self.DATASET)
        first = next(iter(splits.values()))
        self._record(max_lengths=first.max_lengths,
                     split_sizes={s: v.n for s, v in splits.items()})
        return {split: self._generate_examples(validated)
                for split, validated in splits.items()}

    def _generate_examples(self, validated):
        yield from self._keyed(validated.examples())
