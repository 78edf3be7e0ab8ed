"""The data layer of M³SA-TF: MMSA pickles and synthetic data → TFRecords → tf.data.

- `build_dataset(name, data_dir, source=None, scale=1.0, seed=0) -> DatasetInfo`
- `load_dataset(name, data_dir=None, ...) -> (dict[split, tf.data.Dataset], DatasetInfo)`
- CLI: `python -m tfrecords.build --dataset D [--source PATH] --data-dir DIR`

See docs/data.md.
"""

from tfrecords.errors import DatasetError, DatasetNotBuiltError
from tfrecords.info import DatasetInfo
from tfrecords.specs import DATASET_NAMES


def build_dataset(*args, **kwargs):
    """See `tfrecords.build.build_dataset` (imported lazily: it pulls in tfds)."""
    from tfrecords.build import build_dataset as _build

    return _build(*args, **kwargs)


def load_dataset(*args, **kwargs):
    """See `tfrecords.pipeline.load_dataset` (imported lazily: it pulls in TensorFlow)."""
    from tfrecords.pipeline import load_dataset as _load

    return _load(*args, **kwargs)


__all__ = ["DATASET_NAMES", "DatasetError", "DatasetInfo", "DatasetNotBuiltError",
           "build_dataset", "load_dataset"]
