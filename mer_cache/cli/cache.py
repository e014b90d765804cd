"""`mer-cache cache info|verify|export`: look inside, check, and export a cache."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mer_cache.cli.common import console, fail, run_guarded

app = typer.Typer(help="Inspect, verify and export embedding caches.", no_args_is_help=True)

CacheArg = Annotated[Path, typer.Argument(help="Cache folder written by `mer-cache extract`.")]


@app.command("info")
def info(cache: CacheArg, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Fingerprint, clips, frames, D, dtype, bytes on disk and clips per class."""
    from mer_cache.cache import cache_kind, open_cache

    if cache_kind(cache) == "flow":
        from mer_cache.cli.flow import print_flow_info

        print_flow_info(cache, as_json=as_json)
        return
    data = run_guarded(lambda: open_cache(cache, require_complete=False).info())
    if as_json:
        console.print_json(json.dumps(data, default=str))
        return
    t = Table(title=f"Cache {cache}", show_header=False)
    fp = data["fingerprint"]
    for key in ("trunk", "layer", "weights_format", "weights_sha256", "dtype", "catalogue_sha256",
                "package_version", "torch_version"):
        t.add_row(key, str(fp.get(key)))
    t.add_row("preprocessing", json.dumps(fp.get("preprocessing")))
    for key in ("clips", "subjects", "frames", "dim", "bytes_on_disk", "chunk_rows"):
        t.add_row(key, f"{data[key]:,}")
    s = data["status"]
    t.add_row("status", f"{s['n_done']} done, {s['n_failed']} failed of {s['n_clips']}")
    console.print(t)
    c = Table(title="Clips per class")
    c.add_column("dataset:label")
    c.add_column("clips", justify="right")
    for k, v in data["clips_per_class"].items():
        c.add_row(k, str(v))
    console.print(c)


@app.command("verify")
def verify(cache: CacheArg) -> None:
    """Check every clip is complete, shapes are consistent and no value is NaN/inf."""
    from mer_cache.cache import verify_cache

    problems = run_guarded(verify_cache, cache)
    if problems:
        for p in problems:
            console.print(f"[red]-[/] {p}", highlight=False)
        raise typer.Exit(1)
    console.print(f"[green]OK[/]: {cache} is complete and finite.")


@app.command("export")
def export(
    cache: CacheArg,
    out: Annotated[Path, typer.Argument(help="Output file (.h5).")],
    fmt: Annotated[str, typer.Option("--format", help="Export format (h5).")] = "h5",
) -> None:
    """Export to HDF5 (layout in `mer_cache/cache/export.py`; MATLAB's h5read opens it)."""
    from mer_cache.cache import export_h5
    from mer_cache.errors import ConfigError

    if fmt != "h5":
        fail(ConfigError(f"--format {fmt!r}: only 'h5' is supported."))
    path = run_guarded(export_h5, cache, out)
    console.print(f"Wrote {path}")
