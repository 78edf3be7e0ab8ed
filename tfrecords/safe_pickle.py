"""Loading pickles without running their code.

A pickle can name any importable callable and call it while it loads (`os.system`, a
class with `__reduce__`, ...). `SafeUnpickler` resolves only the globals that rebuild
plain containers, numpy arrays, dtypes and numpy scalars; any other global raises
`UnsafePickleError` naming it, before anything is called.

Example:

>>> import io, pickle, numpy as np
>>> data = pickle.dumps({"x": np.arange(3.0)})
>>> safe_load(io.BytesIO(data))["x"].tolist()
[0.0, 1.0, 2.0]
"""

from __future__ import annotations

import codecs
import io
import pickle
from typing import Any, BinaryIO, Callable, Dict, Tuple

import numpy as np


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names a global that is not on the allow-list."""


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    # Protocol-2 pickles store `bytes` as `_codecs.encode(str, "latin1")`. Only that codec
    # is allowed: others (zlib, base64, ...) have no business in an array file.
    if codecs.lookup(encoding).name != "iso8859-1":
        raise UnsafePickleError(
            f"refused global '_codecs.encode' with encoding {encoding!r} "
            "(only 'latin1', which protocol-2 pickles use for bytes, is allowed)"
        )
    return codecs.encode(text, "latin1")


def _numpy_attr(module_name: str, attr: str) -> Callable[..., Any]:
    # numpy 2 moved numpy.core to numpy._core; pickles written by either name both load.
    from importlib import import_module

    for candidate in (module_name, module_name.replace("numpy.core", "numpy._core"),
                      module_name.replace("numpy._core", "numpy.core")):
        try:
            return getattr(import_module(candidate), attr)
        except (ImportError, AttributeError):
            continue
    raise ImportError(f"{module_name}.{attr}")


def _allowed_globals() -> Dict[Tuple[str, str], Callable[..., Any]]:
    allowed: Dict[Tuple[str, str], Callable[..., Any]] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
    }
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = _numpy_attr(module, "_reconstruct")
        allowed[(module, "scalar")] = _numpy_attr(module, "scalar")
    for module in ("numpy.core.numeric", "numpy._core.numeric"):
        allowed[(module, "_frombuffer")] = _numpy_attr(module, "_frombuffer")
    # Containers that older protocols build by calling their type.
    for builtin in (set, frozenset, list, dict, tuple, bytearray, bytes, str, int,
                    float, complex, bool, slice, range):
        allowed[("builtins", builtin.__name__)] = builtin
    return allowed


_ALLOWED = _allowed_globals()


class SafeUnpickler(pickle.Unpickler):
    """An Unpickler that resolves only plain containers, numpy arrays and scalars.

    Arguments:
        file: a binary file object, as for `pickle.Unpickler`.

    Raises:
        UnsafePickleError: from `load()`, when the pickle names any other global; the
            message names the refused `module.name`.
    """

    def find_class(self, module: str, name: str) -> Any:
        # Python 2 names of the builtins, as protocol < 3 pickles may write them.
        if module == "__builtin__":
            module = "builtins"
        target = _ALLOWED.get((module, name))
        if target is None:
            raise UnsafePickleError(
                f"refused global '{module}.{name}': only plain containers, numpy "
                "arrays, dtypes and numpy scalars may appear in a data pickle"
            )
        return target


def safe_load(file: BinaryIO) -> Any:
    """Loads one pickle from a binary file object with `SafeUnpickler`."""
    return SafeUnpickler(file).load()


def safe_loads(data: bytes) -> Any:
    """Loads one pickle from bytes with `SafeUnpickler`."""
    return safe_load(io.BytesIO(data))
