"""Machinery of the bad-input suite (``test_bad_input_*.py``): one :class:`Case` per row.

Every row builds a broken input in its own folder, runs one CLI command, and checks the
same four things: the exit code, a phrase of the message, no traceback, and (unless the
row expects writes) that no file under the row's folder was added, removed or changed.
Full and read-only disks are simulated in-process (:func:`fail_writes`): tests run
unprivileged, where neither a small tmpfs nor a read-only mount can be made.
"""

from __future__ import annotations

import builtins
import hashlib
import io
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import make_clips
from mer_cache.cli import common
from mer_cache.cli.app import app

runner = CliRunner()
FAST_HEAD = ["--arch", "mean", "--folds", "2", "--epochs", "1", "--window", "3",
             "--batch-size", "8", "--precision", "fp32"]


@dataclass(frozen=True)
class Case:
    """One row: ``build(ws)`` makes the input and returns the CLI arguments."""

    id: str
    build: Callable[["Workspace"], list]
    code: int
    phrase: str | tuple[str, ...]
    unchanged: bool = True  # nothing under the row's folder is added, removed or changed
    check: Callable[["Workspace", str], None] | None = None  # more assertions on the outcome
    absent: tuple[str, ...] = ()  # phrases the output must not hold (misleading advice)

    def __str__(self) -> str:
        return self.id


class Workspace:
    """A row's folder, copies of the shared good inputs, and the fault injector."""

    def __init__(self, path: Path, shared: dict) -> None:
        self.path, self.shared = path, shared
        self.faults = pytest.MonkeyPatch()  # undone by heal() or at the end of the row

    def copy(self, name: str) -> Path:
        """A private copy of the shared ``frames`` tree, ``cache`` or ``run``."""
        dst = self.path / name
        shutil.copytree(self.shared[name], dst)
        return dst

    def heal(self) -> None:
        self.faults.undo()

    def extract_args(self, root: Path, out: Path, *, dataset: str = "folder", more=()) -> list:
        return ["extract", "--dataset", dataset, "--root", root, "--trunk", "tiny-cnn",
                "--weights", "random", "--out", out, "--workers", "0", "--batch-size", "16", *more]

    def chunk(self, cache: Path, k: int = 0) -> Path:
        return cache / "embeddings" / "c" / str(k) / "0"


def snapshot(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of the bytes (or "dir") of everything under ``folder``."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def invoke(args: list) -> tuple[int, str]:
    """Run the CLI; returns (exit code, output with whitespace collapsed). No traceback allowed."""
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"uncaught {type(result.exception).__name__}: {result.exception}\n{result.output}")
    return result.exit_code, " ".join(result.output.split())


def run_case(case: Case, ws: Workspace) -> str:
    args = case.build(ws)
    before = snapshot(ws.path)
    try:
        code, out = invoke(args)
        after = snapshot(ws.path)
    finally:
        ws.heal()
    assert code == case.code, f"exit {code}, expected {case.code}: {out}"
    for phrase in (case.phrase,) if isinstance(case.phrase, str) else case.phrase:
        assert phrase in out, f"{phrase!r} not in: {out}"
    for phrase in case.absent:
        assert phrase not in out, f"{phrase!r} in: {out}"
    if case.unchanged:
        added = sorted(set(after) - set(before))
        removed = sorted(set(before) - set(after))
        changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
        assert not (added or removed or changed), f"added {added}, removed {removed}, changed {changed}"
    if case.check is not None:
        case.check(ws, out)
    return out


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    """No line wrapping, so phrases are found whole (paths are long)."""
    monkeypatch.setattr(common.console, "_width", 4000)
    monkeypatch.setattr(common.err_console, "_width", 4000)


@pytest.fixture(scope="session")
def shared(tmp_path_factory) -> dict:
    """Good inputs built once: a folder dataset, its tiny-cnn cache, a 2-fold mean-head run."""
    base = tmp_path_factory.mktemp("bad-input-shared")
    make_clips(base / "frames", [6, 7, 5, 8, 6, 7, 5, 6], subjects=4)
    code, out = invoke(Workspace(base, {}).extract_args(base / "frames", base / "cache"))
    assert code == 0, out
    code, out = invoke(["train-head", "--cache", base / "cache", "--out", base / "run", *FAST_HEAD])
    assert code == 0, out
    return {"frames": base / "frames", "cache": base / "cache", "run": base / "run"}


@pytest.fixture
def ws(tmp_path, shared) -> Workspace:
    w = Workspace(tmp_path / "row", shared)
    w.path.mkdir()
    yield w
    w.heal()


def fail_writes(ws: Workspace, under: Path, err: int, *, after: int = 0) -> None:
    """Make creating files or folders under ``under`` raise OSError(``err``), after ``after`` successes.

    Covers what the tool writes with: ``open``/``Path.open`` in a writing mode, ``os.mkdir``
    (``Path.mkdir``, ``os.makedirs``), ``os.unlink``/``os.remove`` and ``h5py.File``. A folder that exists is reported as
    existing first, as a real file system does.
    """
    root = os.path.abspath(under)
    left = [after]

    def hit(path) -> bool:
        if not isinstance(path, (str, os.PathLike)):
            return False
        p = os.path.abspath(os.fspath(path))
        if p != root and not p.startswith(root + os.sep):
            return False
        left[0] -= 1
        return left[0] < 0

    def error(path) -> OSError:
        return OSError(err, os.strerror(err), os.fspath(path))

    real_open, real_mkdir, real_h5, real_unlink = builtins.open, os.mkdir, h5py.File, os.unlink

    def fake_open(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+") and hit(file):
            raise error(file)
        return real_open(file, mode, *args, **kwargs)

    def fake_mkdir(path, *args, **kwargs):
        if not os.path.exists(path) and hit(path):
            raise error(path)
        return real_mkdir(path, *args, **kwargs)

    def fake_h5(name, mode="r", *args, **kwargs):
        if mode != "r" and hit(name):
            raise error(name)
        return real_h5(name, mode, *args, **kwargs)

    def fake_unlink(path, *args, **kwargs):
        if os.path.exists(path) and hit(path):
            raise error(path)
        return real_unlink(path, *args, **kwargs)

    ws.faults.setattr(os, "unlink", fake_unlink)
    ws.faults.setattr(os, "remove", fake_unlink)
    ws.faults.setattr(builtins, "open", fake_open)
    ws.faults.setattr(io, "open", fake_open)
    ws.faults.setattr(os, "mkdir", fake_mkdir)
    ws.faults.setattr(h5py, "File", fake_h5)


def flip_bytes(path: Path, offset: int = 64) -> None:
    """Change two bytes of a float16 chunk so the values stay finite (1.0 <-> other finite)."""
    data = bytearray(path.read_bytes())
    data[offset:offset + 2] = np.array([1.5], np.float16).tobytes()
    if bytes(data) == path.read_bytes():
        data[offset:offset + 2] = np.array([-2.25], np.float16).tobytes()
    path.write_bytes(bytes(data))


def truncate(path: Path, keep: int | None = None) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2 if keep is None else keep])
