"""Load a pickled ``dict[str, numpy.ndarray]`` without letting the pickle run code.

A pickle is a small program: any global it names is imported and may be called, so a
weight file from an unknown source could run ``os.system``. The VGGFace2 ``.pkl`` only
needs numpy's array reconstruction (old numpy writes ``numpy.core.multiarray``, numpy 2
``numpy._core.multiarray``), ``numpy.ndarray``, ``numpy.dtype`` and ``_codecs.encode``
(how protocol 2 stores bytes). :class:`RestrictedUnpickler` resolves exactly these names and
raises :class:`~mer_cache.errors.UnsafePickleError` for any other global *before* it is
imported, so nothing outside the allow-list is ever executed.
"""

from __future__ import annotations

import _codecs
import pickle
from pathlib import Path

import numpy as np

from mer_cache.errors import UnsafePickleError, WeightsError

try:  # numpy >= 2
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import _reconstruct

# (module, name) -> the object it resolves to. Both spellings of _reconstruct map to the
# installed numpy's function, so files written by numpy 1 and numpy 2 both load.
ALLOWED_GLOBALS: dict[tuple[str, str], object] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _codecs.encode,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only :data:`ALLOWED_GLOBALS`.

    Every way a pickle can name a global (GLOBAL, STACK_GLOBAL, the extension registry)
    goes through :meth:`find_class`, so refusing here refuses before any import or call.
    """

    def find_class(self, module: str, name: str) -> object:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"Refused to load the pickle: it asks for the global '{module}.{name}', "
                "which is not one of the numpy array names a weight file needs "
                f"({', '.join(f'{m}.{n}' for m, n in ALLOWED_GLOBALS)}). Nothing in it was "
                "executed. Do not load this file with plain pickle; get the weights from a "
                "source you trust."
            ) from None

    def persistent_load(self, pid: object) -> object:
        raise UnsafePickleError(
            f"Refused to load the pickle: it uses a persistent id ({pid!r}), which a plain "
            "dict of numpy arrays never does (torch files do: pass those as .pth). Nothing "
            "in it was executed."
        )


def load_numpy_pickle(path: Path) -> dict[str, np.ndarray]:
    """Read a pickled ``dict[str, ndarray]`` (e.g. ``resnet50_ft_weight.pkl``) safely.

    Parameters
    ----------
    path : Path
        The pickle file. Python 2 pickles are read with ``encoding="latin1"`` (the
        VGGFace2 conversion was written by Python 2).

    Returns
    -------
    dict[str, numpy.ndarray]

    Raises
    ------
    UnsafePickleError
        When the pickle names a global outside :data:`ALLOWED_GLOBALS` (nothing is run).
    WeightsError
        When the file is truncated or does not hold a dict of arrays.
    """
    try:
        with open(path, "rb") as fh:
            obj = RestrictedUnpickler(fh, encoding="latin1").load()
    except UnsafePickleError as exc:
        raise UnsafePickleError(f"{path}: {exc}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError) as exc:
        raise WeightsError(
            f"Cannot read the pickle {path}: {type(exc).__name__}: {exc}. The file is "
            "truncated or not a VGGFace2 .pkl weight file; compare its size and sha256 "
            "with the copy you were given."
        ) from None
    if not isinstance(obj, dict) or not all(
        isinstance(k, str) and isinstance(v, np.ndarray) for k, v in obj.items()
    ):
        raise WeightsError(
            f"The pickle {path} does not hold a dict of parameter name -> numpy array "
            f"(it holds a {type(obj).__name__}), so it is not a weight file in the .pkl "
            "format of the VGGFace2 PyTorch conversion."
        )
    return obj
