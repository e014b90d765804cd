"""Shared CLI pieces: the console, the error table, and option aliases."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from mer_cache.errors import (
    CacheError, ConfigError, DatasetError, LabelError, MerCacheError, ProtocolError,
    TrunkError, WeightsError, os_error_errno, os_error_message,
)

console = Console()
err_console = Console(stderr=True)

# exception type -> headline shown before the message (the message itself says what to do)
ERROR_TITLES: dict[type[BaseException], str] = {
    DatasetError: "Dataset problem",
    LabelError: "Label problem",
    WeightsError: "Weights problem",
    TrunkError: "Trunk problem",
    CacheError: "Cache problem",
    ConfigError: "Invalid options",
    ProtocolError: "Evaluation protocol problem",
    MerCacheError: "Error",
}
# OSError errno -> headline; os_error_message says the path and the fix
OS_ERROR_TITLES: dict[int | None, str] = {
    errno.ENOSPC: "Disk full", errno.EDQUOT: "Disk quota exceeded",
    errno.EROFS: "Read-only file system", errno.EACCES: "Permission denied",
    errno.EPERM: "Not permitted", errno.ENOENT: "File not found",
}


def report_error(exc: BaseException) -> int:
    """Print a friendly one-paragraph error; return the exit code."""
    if os.environ.get("MER_CACHE_TRACEBACK"):
        err_console.print_exception()
    for kind, title in ERROR_TITLES.items():
        if isinstance(exc, kind):
            err_console.print(f"[bold red]{title}:[/] {exc}", highlight=False)
            return 2
    if isinstance(exc, OSError):  # FileNotFoundError, PermissionError, h5py's open errors, ...
        title = OS_ERROR_TITLES.get(os_error_errno(exc), "File system problem")
        err_console.print(f"[bold red]{title}:[/] {os_error_message(exc)}", highlight=False)
        return 2
    if isinstance(exc, KeyboardInterrupt):
        err_console.print("[yellow]Interrupted.[/] Finished work is kept; rerun the same command to resume.")
        return 130
    return -1  # not ours: let it raise


def run_guarded(fn, *args, **kwargs):
    """Call a library function, turning mer-cache errors into messages and exit codes."""
    try:
        return fn(*args, **kwargs)
    except (MerCacheError, OSError, KeyboardInterrupt) as exc:
        code = report_error(exc)
        if code < 0:
            raise
        raise typer.Exit(code) from None


DatasetOpt = Annotated[str, typer.Option("--dataset", "-d", help="Dataset loader: smic, casme2, samm, casme3, megc2019, casme, 4dme, mmew, casme3c, casme3-ac, smic-e, folder, manifest, video (`mer-cache datasets list` describes each).")]
RootOpt = Annotated[Path, typer.Option("--root", "-r", help="Dataset root folder (or manifest CSV).")]
TrunkOpt = Annotated[str, typer.Option("--trunk", "-t", help="Trunk name (see `mer-cache weights list`), or tv:<torchvision name>.")]
WeightsOpt = Annotated[str | None, typer.Option("--weights", "-w", help="Weight file, 'random', or omitted for the trunk's default file in the weights directory.")]
LayerOpt = Annotated[str | None, typer.Option("--layer", "-l", help="Layer to tap (default: the trunk's embedding layer).")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed; the same seed gives the same result.")]
DatasetOptionsOpt = Annotated[list[str], typer.Option(
    "--dataset-option", "-o",
    help="Loader option KEY=VALUE, repeatable (e.g. modality=VIS, frames=onset-offset, "
         "cropped=true, casme2_root=PATH).")]


def parse_dataset_options(pairs: list[str]) -> dict:
    """``["frames=onset-offset", "cropped=true"]`` -> ``{"frames": ..., "cropped": True}``."""
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"--dataset-option expects KEY=VALUE, got {pair!r} (e.g. frames=onset-offset).")
        key, value = pair.split("=", 1)
        out[key.strip().replace("-", "_")] = {"true": True, "false": False}.get(value.strip().lower(), value.strip())
    return out


def print_failed(failed: dict[str, str]) -> None:
    """One line per failed clip: its id, then the reason (without the id a reason from the
    face stage already starts with)."""
    for cid, reason in failed.items():
        console.print(f"  {cid}: {reason.removeprefix(f'{cid}: ')}", highlight=False)


def is_tty() -> bool:
    return sys.stderr.isatty()


def fail(exc: BaseException) -> None:
    """Report a mer-cache error raised by the CLI itself and exit."""
    raise typer.Exit(report_error(exc))
