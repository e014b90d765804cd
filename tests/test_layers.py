"""The code's layering holds: contracts in pyproject.toml (import-linter), no import cycles,
and a CLI that starts without the heavy libraries."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    """CLI -> job API -> mechanisms (never a peer) -> protocol, cache, frames -> trunks, catalogue."""
    from importlinter.cli import lint_imports

    assert lint_imports(config_filename=str(ROOT / "pyproject.toml")) == 0


def test_no_import_cycles_between_modules():
    import grimp

    graph = grimp.build_graph("mer_cache")
    cycles = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            if graph.chain_exists(imported=module, importer=imported):
                cycles.append(f"{module} <-> {imported}")
    # a package __init__ importing its own submodules is not a cycle between files
    cycles = [c for c in cycles if not any(
        a.startswith(b + ".") or b.startswith(a + ".") for a, b in [c.split(" <-> ")])]
    assert not cycles, cycles[:10]


def test_importing_the_cli_loads_neither_torch_nor_sklearn():
    code = ("import sys, mer_cache.cli; "
            "print(sorted(m for m in ('torch', 'sklearn', 'zarr', 'h5py', 'torchvision') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         check=True).stdout.strip()
    assert out == "[]"
