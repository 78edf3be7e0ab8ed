"""The project's file I/O: every result, record and model file is written atomically.

A reader (a resumed run, a tuner's chief, TF Serving's pusher, a person's `cat`) sees
either the old file or the complete new one, never a prefix: content goes to a
temporary file in the target's directory (same filesystem, so the rename is atomic), is
flushed to disk with `fsync`, and then `os.replace`s the target. Whatever fails on the
way, the temporary file is removed and the target is left as it was. The final file has
the permissions any newly created file gets (0666 minus the umask), not the 0600 that
`tempfile.mkstemp` would leave behind.

>>> import os, tempfile
>>> folder = tempfile.mkdtemp()
>>> path = os.path.join(folder, "scores.csv")
>>> write_csv_atomic(path, [{"seed": 1, "mae": 0.7}, {"seed": 2, "mae": float("nan")}])
>>> print(open(path).read(), end="")
seed,mae
1,0.7
2,nan
>>> write_json_atomic(os.path.join(folder, "run.json"), {"epochs": 3})
>>> read_json(os.path.join(folder, "run.json"))
{'epochs': 3}
>>> sorted(os.listdir(folder))
['run.json', 'scores.csv']
>>> import shutil; shutil.rmtree(folder)
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import secrets
from collections.abc import Mapping
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence

TEMP_PREFIX = ".tmp-"


class JSONFileError(ValueError):
    """A JSON file that is missing, unreadable or not valid JSON."""


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yields a fresh temporary path next to `path` for any writer (Keras, matplotlib,
    `open`); when the block ends without an error the file is synced and renamed onto
    `path`, otherwise it is removed. The parent directory is created if needed.

    The temporary name ends with `path`'s base name, so writers that pick a format by
    extension (`model.save` needs ".keras", `savefig` reads ".png") see the right one.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    temp = _create_temp(directory, os.path.basename(path))
    try:
        yield temp
        descriptor = os.open(temp, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temp)
        raise


def _create_temp(directory: str, name: str) -> str:
    # os.open with mode 0666 lets the kernel apply the umask, which is the permission a
    # plain open() would give the final file; reading the umask instead (os.umask) would
    # briefly change it for every thread of the process.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        temp = os.path.join(directory, f"{TEMP_PREFIX}{secrets.token_hex(4)}-{name}")
        try:
            os.close(os.open(temp, flags, 0o666))
            return temp
        except FileExistsError:
            continue


def write_text_atomic(path: str, text: str) -> None:
    """Writes `text` (UTF-8, line endings as given) to `path` atomically."""
    with atomic_path(path) as temp:
        with open(temp, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)


def write_json_atomic(path: str, value: Any) -> None:
    """Writes `value` as indented, key-sorted JSON to `path` atomically.

    NaN and infinities are written as JSON's `NaN`/`Infinity` extension (metrics can be
    NaN, e.g. `Non0_acc_2` when every label is 0), which `read_json` reads back. A value
    JSON cannot encode raises before anything is written.
    """
    text = json.dumps(value, indent=2, sort_keys=True, allow_nan=True) + "\n"
    write_text_atomic(path, text)


def write_csv_atomic(path: str, rows: Iterable[Any],
                     header: Optional[Sequence[str]] = None) -> None:
    """Writes `rows` as a CSV file atomically.

    `rows` are either all mappings (column name -> value) or all sequences of values:
    - mappings: the header is `header`, else every key in order of first appearance; a
      key missing from a row is written empty, a key not in `header` is an error;
    - sequences: written as they are, after `header` when one is given.
    None is written as an empty cell and NaN as "nan".
    """
    rows = list(rows)
    mappings = [isinstance(row, Mapping) for row in rows]
    if any(mappings) and not all(mappings):
        raise TypeError(f"{path}: CSV rows must be all mappings or all sequences, not both")
    buffer = io.StringIO()
    if rows and mappings[0]:
        if header is None:
            header = list(dict.fromkeys(key for row in rows for key in row))
        writer = csv.DictWriter(buffer, fieldnames=list(header), restval="",
                                extrasaction="raise", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    else:
        for row in rows:
            if isinstance(row, (str, bytes)):
                # csv would split a string into one cell per character.
                raise TypeError(f"{path}: a CSV row must be a mapping or a sequence of "
                                f"values, got the string {row!r}")
        writer = csv.writer(buffer, lineterminator="\n")
        if header is not None:
            writer.writerow(header)
        writer.writerows(rows)
    write_text_atomic(path, buffer.getvalue())


def read_csv(path: str) -> List[Dict[str, str]]:
    """The rows of a CSV file with a header, as dicts of strings."""
    with open(path, "r", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def read_json(path: str, *, error: Callable[[str], Exception] = JSONFileError) -> Any:
    """The JSON value stored in `path`.

    A missing or unreadable file, or one that is not JSON, raises `error(message)` (a
    message naming the file and what is wrong with it), chained to the original error.
    Callers pass their own exception class so that the error reaches the user the way
    their other errors do.
    """
    try:
        with open(path, "r", encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as err:
        raise error(f"cannot read {path}: {err.strerror or err}") from err
    except ValueError as err:  # JSONDecodeError, UnicodeDecodeError
        raise error(f"cannot read {path}: not valid JSON ({err})") from err


def save_model_atomic(model, path: str) -> None:
    """`model.save(path)` for a ".keras" file, atomically (see `atomic_path`)."""
    if not str(path).endswith(".keras"):
        raise ValueError(f"model path must end with .keras, got {path}")
    with atomic_path(path) as temp:
        model.save(temp)


def default_data_dir(data_dir: Optional[str] = None) -> str:
    """The absolute data directory: `data_dir` if given, else `$M3SA_DATA_DIR`, else
    `~/tensorflow_datasets` (docs/interfaces.md §1)."""
    chosen = data_dir or os.environ.get("M3SA_DATA_DIR") or "~/tensorflow_datasets"
    return os.path.abspath(os.path.expanduser(chosen))
