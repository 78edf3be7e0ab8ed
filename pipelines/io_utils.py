"""Former home of the atomic writers; they live in `msa_core.io` now. Import from there.

Kept only so that modules not yet switched keep working.
"""

from msa_core.io import atomic_path  # noqa: F401
from msa_core.io import default_data_dir  # noqa: F401
from msa_core.io import read_json  # noqa: F401
from msa_core.io import save_model_atomic  # noqa: F401
from msa_core.io import write_json_atomic  # noqa: F401
from msa_core.io import write_text_atomic  # noqa: F401
from msa_core import io as _msa_io


def write_csv_atomic(path, header, rows):
    """The old argument order (header before rows) that pipelines/training.py still
    uses; `msa_core.io.write_csv_atomic(path, rows, header=...)` is the one to call.
    Delete this once no caller is left."""
    _msa_io.write_csv_atomic(path, rows, header=header)
