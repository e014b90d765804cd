"""``datasets list`` without a root: every supported dataset, its files and label schemes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mer_cache.catalogue.labels import get_scheme
from mer_cache.catalogue.registry import DATASETS
from mer_cache.catalogue.supported import SUPPORTED
from cli_run import run_cli


def test_every_registered_dataset_is_described():
    assert list(SUPPORTED) == list(DATASETS)


@pytest.mark.parametrize("name", list(SUPPORTED))
def test_listed_schemes_map_the_datasets_own_labels(name):
    info = SUPPORTED[name]
    for scheme in info.schemes:
        mapped = [get_scheme(scheme).map(name, label) for label in info.labels]
        assert any(m is not None for m in mapped), (name, scheme)


def _run(*args):
    return run_cli(*args, env={"COLUMNS": "400"})


def test_list_without_root_prints_files_layouts_and_schemes():
    res = _run("datasets", "list")
    assert res.exit_code == 0, res.output
    for name, info in SUPPORTED.items():
        assert name in res.output and info.annotation in res.output and info.frames in res.output
    assert "4DME_Labelling_Micro_release v1.xlsx" in res.output and "smic4, megc3, emotion" in res.output
    one = _run("datasets", "list", "-d", "mmew")
    assert "MMEW_Micro_Exp.xlsx" in one.output and "SAMM_Micro" not in one.output


def test_unknown_dataset_or_root_without_dataset_is_a_message():
    bad = _run("datasets", "list", "-d", "nope")
    assert bad.exit_code == 2 and "Known datasets:" in bad.output
    half = _run("datasets", "list", "-r", ".")
    assert half.exit_code == 2 and "--root needs --dataset" in half.output


def test_datasets_cli_imports_neither_torch_nor_sklearn_at_top_level():
    """Its top-level imports outside the CLI package pull in neither (the CLI package's own
    __init__ is the lazy-import restructure's business)."""
    import ast
    from pathlib import Path

    import mer_cache.cli.datasets as mod

    tree = ast.parse(Path(mod.__file__).read_text())
    names = [a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names]
    names += [n.module for n in tree.body if isinstance(n, ast.ImportFrom) and n.module]
    assert not [n for n in names if n.split(".")[0] in ("torch", "sklearn")]
    ours = [n for n in names if n.startswith("mer_cache.") and not n.startswith("mer_cache.cli")]
    assert "mer_cache.catalogue.problems" in ours
    code = (f"import sys; import {', '.join(ours)}; "
            "print(sorted({'torch', 'sklearn'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
