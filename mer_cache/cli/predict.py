"""``mer-cache predict``: class probabilities of clip folders from a train-head run's folds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from mer_cache.cli.common import WeightsOpt, console, err_console, run_guarded


def _render(preds: list, run: Path) -> None:
    classes = list(preds[0].probabilities)
    table = Table(title=f"Predictions of {run} (mean of {len(preds[0].folds)} fold heads)")
    table.add_column("clip folder")
    table.add_column("frames", justify="right")
    table.add_column("predicted")
    for c in classes:
        table.add_column(f"p({c})", justify="right")
    for p in preds:
        frames = f"{p.n_frames} (padded)" if p.padded else str(p.n_frames)
        table.add_row(p.path.name, frames, f"[bold]{p.predicted}[/]",
                      *(f"{p.probabilities[c]:.3f}" for c in classes))
    console.print(table)


def predict_cmd(
    clip_dirs: Annotated[list[Path], typer.Argument(help="Clip folders, each holding one clip's frames.")],
    run: Annotated[Path, typer.Option("--run", help="A finished `mer-cache train-head` run directory.")],
    weights: WeightsOpt = None,
    gpu: Annotated[Optional[int], typer.Option("--gpu", help="CUDA device index; without it (or without a GPU) the CPU is used.")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Frames per trunk forward pass.")] = 64,
    as_json: Annotated[bool, typer.Option("--json", help="Print the predictions as JSON instead of a table.")] = False,
) -> None:
    """Embed clip folders with the run's trunk and print the fold heads' mean probabilities.

    A clip whose frames cannot be used (a frame that does not decode, no face on a run
    trained on aligned faces) is listed with the reason and the others are predicted;
    the exit code is then 1.
    """
    from mer_cache.pipelines import predict_clips, resolve_device

    device, note = run_guarded(resolve_device, gpu)
    if note:
        err_console.print(f"[yellow]{note}[/]")
    preds = run_guarded(predict_clips, run, clip_dirs, weights=weights, device=str(device),
                        batch_size=batch_size)
    done, failed = [p for p in preds if not p.failed], [p for p in preds if p.failed]
    if as_json:  # failed clips stay in the list (with "error"), stdout stays pure JSON
        typer.echo(json.dumps([p.to_dict() for p in preds], indent=2))
    elif done:
        _render(done, run)
    if failed:
        out = err_console if as_json else console
        out.print(f"[red]{len(failed)} of {len(preds)} clip folder(s) could not be "
                  f"predicted[/]:")
        for p in failed:
            out.print(f"  {p.error}", highlight=False)  # the reason names the folder or frame
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("predict")(predict_cmd)
