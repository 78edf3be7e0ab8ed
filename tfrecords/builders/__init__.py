"""tensorflow-datasets builders of M³SA-TF: one per dataset, sharing `base`.

Importing this package registers `mmsa_mosi`, `mmsa_sims`, `mmsa_mosei`,
`synthetic_mosi`, `synthetic_sims`, `synthetic_mosei` and the hard family's
`synthetic_mosi_hard`, `synthetic_sims_hard`, `synthetic_mosei_hard` with
tensorflow-datasets.
"""

from tfrecords.builders.mmsa_mosei.mmsa_mosei_dataset_builder import Builder as MmsaMosei
from tfrecords.builders.mmsa_mosi.mmsa_mosi_dataset_builder import Builder as MmsaMosi
from tfrecords.builders.mmsa_sims.mmsa_sims_dataset_builder import Builder as MmsaSims
from tfrecords.builders.synthetic_mosei.synthetic_mosei_dataset_builder import (
    Builder as SyntheticMosei)
from tfrecords.builders.synthetic_mosei_hard.synthetic_mosei_hard_dataset_builder import (
    Builder as SyntheticMoseiHard)
from tfrecords.builders.synthetic_mosi.synthetic_mosi_dataset_builder import (
    Builder as SyntheticMosi)
from tfrecords.builders.synthetic_mosi_hard.synthetic_mosi_hard_dataset_builder import (
    Builder as SyntheticMosiHard)
from tfrecords.builders.synthetic_sims.synthetic_sims_dataset_builder import (
    Builder as SyntheticSims)
from tfrecords.builders.synthetic_sims_hard.synthetic_sims_hard_dataset_builder import (
    Builder as SyntheticSimsHard)

BUILDERS = {
    "mosi": MmsaMosi,
    "sims": MmsaSims,
    "mosei": MmsaMosei,
    "synthetic-mosi": SyntheticMosi,
    "synthetic-sims": SyntheticSims,
    "synthetic-mosei": SyntheticMosei,
    "synthetic-mosi-hard": SyntheticMosiHard,
    "synthetic-sims-hard": SyntheticSimsHard,
    "synthetic-mosei-hard": SyntheticMoseiHard,
}


def builder_class(name: str):
    """The builder class of dataset `name` ("mosi", "synthetic-sims", ...)."""
    from tfrecords import specs

    return BUILDERS[specs.check_name(name)]
