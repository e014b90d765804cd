"""sha256 of weight files, read in chunks so a 100 MB file never sits in memory twice.

The digest is part of every cache fingerprint: two caches made from different weight
files must never be mixed up, even when the files share a name.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

_CHUNK_BYTES = 1 << 20


def sha256_file(path: Path | str) -> str:
    """Hex sha256 of a file's bytes.

    Parameters
    ----------
    path : Path or str
        The file to hash.

    Returns
    -------
    str
        64 lowercase hex digits.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()
