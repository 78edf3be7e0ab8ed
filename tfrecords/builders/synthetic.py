"""Builder base for the synthetic datasets (no download; see `tfrecords.synthetic`)."""

from __future__ import annotations

import dataclasses
from typing import Dict, List

import numpy as np
import tensorflow_datasets as tfds

from tfrecords import specs, synthetic
from tfrecords.builders.base import MSABuilderBase


@dataclasses.dataclass(eq=False)
class SyntheticConfig(tfds.core.BuilderConfig):
    """One (scale, seed) of a synthetic dataset; its name keeps builds apart on disk.

    Attributes:
        scale: fraction of the real split sizes, in (0, 1].
        seed: generator seed.
    """

    scale: float = 1.0
    seed: int = 0


def config_for(scale: float, seed: int) -> SyntheticConfig:
    return SyntheticConfig(name=specs.synthetic_config_name(scale, seed),
                           scale=float(scale), seed=int(seed),
                           description=f"split sizes × {scale:g}, seed {seed}")


# The full-size dataset and the small one the tests and quick runs use; any other
# (scale, seed) is a custom config made by `config_for`.
PREDEFINED_CONFIGS = [config_for(1.0, 0), config_for(0.02, 0)]


class SyntheticMSABuilder(MSABuilderBase, skip_registration=True):
    """Generates a synthetic dataset and records its Bayes reference metrics."""

    BUILDER_CONFIGS = PREDEFINED_CONFIGS

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download
        config = self.builder_config
        generator = synthetic.generator_for(self.DATASET, config.scale, config.seed)
        self._record(split_sizes=dict(generator.split_sizes), scale=config.scale,
                     seed=config.seed, bayes_reference={})
        return {split: self._generate_examples(generator, split)
                for split in specs.SPLITS}

    def _generate_examples(self, generator, split):
        reference = generator.bayes_reference()
        stats: List[np.ndarray] = []
        labels: Dict[str, List[float]] = {}
        for key, example in self._keyed(generator.examples(split)):
            stats.append(reference.statistics(example))
            for k, v in example["labels"].items():
                labels.setdefault(k, []).append(float(v))
            yield key, example
        # Runs when the split is fully written, before tfds saves the metadata.
        metrics = synthetic.reference_metrics(
            self.DATASET, {k: np.asarray(v) for k, v in labels.items()},
            np.stack(stats), seed=generator.seed, reference=reference)
        bayes = dict(self.dataset_info().bayes_reference or {})
        bayes[split] = metrics
        self._record(bayes_reference=bayes)
