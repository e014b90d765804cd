"""Tell weight-file formats apart by their first bytes, not by their suffix.

Users rename files (``resnet50_ft_weight.pth`` that is really a pickle is common), and
``torch.load`` on the VGGFace2 ``.pkl`` fails with a misleading "Invalid magic number".
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from mer_cache.errors import WeightsError

FileFormat = Literal["pickle", "torch-zip", "torch-legacy", "hdf5"]

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_ZIP_SIGNATURE = b"PK\x03\x04"
# torch's pre-1.6 (non-zip) files are pickles too, but they start with a pickled magic
# number (0x1950a86a20f9469cfc6c as a protocol-2 LONG1), which a plain dict pickle never does.
_TORCH_LEGACY_PREFIX = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"


def detect_format(path: Path) -> FileFormat:
    """Detect a weight file's container format from its first bytes.

    Parameters
    ----------
    path : Path
        An existing file.

    Returns
    -------
    {"pickle", "torch-zip", "torch-legacy", "hdf5"}

    Raises
    ------
    WeightsError
        When the bytes match none of the known formats.
    """
    with open(path, "rb") as fh:
        head = fh.read(16)
    if head.startswith(_HDF5_SIGNATURE):
        return "hdf5"
    if head.startswith(_ZIP_SIGNATURE):
        return "torch-zip"
    if head.startswith(_TORCH_LEGACY_PREFIX):
        return "torch-legacy"
    if head.startswith(b"\x80"):  # pickle protocol >= 2 starts with the PROTO opcode
        return "pickle"
    if Path(path).suffix.lower() in (".pkl", ".pickle"):
        # Protocols 0/1 (Python 2's default) have no PROTO opcode; the restricted
        # unpickler refuses anything unsafe, so trying it is harmless.
        return "pickle"
    raise WeightsError(
        f"Cannot tell the format of weight file {path}: its first bytes {head[:8]!r} match "
        "no known format (a pickle starts with b'\\x80', a torch file is a zip archive, "
        "an HDF5 file starts with b'\\x89HDF'). Check that the file is complete and is a "
        "weight file, not an HTML error page or a tar archive that still needs unpacking."
    )


def read_torch_file(path: Path) -> object:
    """``torch.load`` with ``weights_only=True`` (tensors and plain containers only).

    Raises
    ------
    WeightsError
        When the file needs arbitrary code to load (a pickled model object) or is broken.
    """
    import pickle

    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, KeyError, IndexError,
            TypeError, AttributeError, UnicodeDecodeError) as exc:  # garbage after a valid start
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(
            f"Cannot read the torch file {path} with torch.load(weights_only=True): "
            f"{first_line}. Only files holding tensors and plain containers (a state dict) "
            "are loaded, never pickled model objects; re-save the model's state_dict() or "
            "pass the original weight file."
        ) from None
