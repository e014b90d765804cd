"""``mer-cache faces``: fetch the face detector's weights, preview the alignment."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mer_cache.cli.common import (
    DatasetOpt, DatasetOptionsOpt, RootOpt, console, parse_dataset_options, run_guarded,
)

app = typer.Typer(help="Face detection and alignment before the trunk (extract --face align).",
                  no_args_is_help=True)


@app.command("fetch")
def fetch_cmd(
    dest: Annotated[Path | None, typer.Option("--dest", help="Weights directory (default: MER_CACHE_WEIGHTS or data/weights).")] = None,
    wheel: Annotated[Path | None, typer.Option("--wheel", help="Use this downloaded facenet_pytorch-2.6.0 wheel instead of running pip (offline).")] = None,
) -> None:
    """Download MTCNN's weights from the facenet-pytorch wheel on PyPI (sha256-verified)."""
    from mer_cache.pipelines import fetch_mtcnn

    folder = run_guarded(fetch_mtcnn, dest=dest, wheel=wheel)
    console.print(f"[green]Stored[/] pnet.pt, rnet.pt, onet.pt in {folder} (sha256 verified).",
                  highlight=False)


@app.command("preview")
def preview_cmd(
    dataset: DatasetOpt,
    root: RootOpt,
    out: Annotated[Path, typer.Option("--out", help="PNG contact sheet to write.")],
    clips: Annotated[int, typer.Option("--clips", "-n", help="Clips to show, spread over the dataset.")] = 8,
    dataset_option: DatasetOptionsOpt = [],
) -> None:
    """Draw each clip's first frame with the detected box and landmarks next to its aligned crop."""
    import numpy as np

    from mer_cache.catalogue import load_catalogue
    from mer_cache.pipelines import write_preview

    if clips < 1:
        run_guarded(_bad_clips, clips)
    catalogue = run_guarded(load_catalogue, dataset, root,
                            **run_guarded(parse_dataset_options, dataset_option))
    picked = [catalogue[i] for i in
              sorted(set(np.linspace(0, len(catalogue) - 1, min(clips, len(catalogue))).astype(int)))]
    rows = run_guarded(write_preview, picked, out)
    table = Table(title=f"Face alignment of {len(rows)} clips -> {out}")
    for col in ("clip", "faces in ref. frames", "max faces", "crop px", "result"):
        table.add_column(col)
    for r in rows:
        a = r.alignment
        table.add_row(r.clip_id, f"{a.found_in}/{a.n_ref}", str(a.max_faces), str(a.crop_px),
                      "[green]ok[/]" if a.error is None else f"[red]{a.error}[/]")
    console.print(table)
    if any(r.alignment.error for r in rows):
        raise typer.Exit(1)


def _bad_clips(n: int) -> None:
    from mer_cache.errors import ConfigError

    raise ConfigError(f"--clips must be at least 1, got {n}.")

