"""`mer-cache extract`: embed every frame of a dataset into a Zarr cache."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from mer_cache.cli.common import (
    DatasetOpt, LayerOpt, RootOpt, TrunkOpt, WeightsOpt, console, err_console, run_guarded,
)
from mer_cache.errors import ConfigError


def _parse_options(pairs: list[str]) -> dict:
    out = {}
    for p in pairs:
        if "=" not in p:
            raise ConfigError(f"--dataset-option expects KEY=VALUE, got {p!r} (e.g. frames=onset-offset).")
        k, v = p.split("=", 1)
        out[k.strip().replace("-", "_")] = {"true": True, "false": False}.get(v.lower(), v)
    return out


def extract(
    dataset: DatasetOpt,
    root: RootOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="Cache folder (.zarr); rerun to resume.")],
    trunk: TrunkOpt = "fer-minixception",
    weights: WeightsOpt = None,
    layer: LayerOpt = None,
    gpu: Annotated[Optional[int], typer.Option("--gpu", help="CUDA device index; without it (or without a GPU) the CPU is used.")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Frames per forward pass (packed across clips).")] = 64,
    workers: Annotated[int, typer.Option("--workers", help="DataLoader processes decoding frames.")] = 2,
    amp: Annotated[str, typer.Option("--amp", help="Autocast on GPU: bf16, fp16 or off.")] = "bf16",
    dtype: Annotated[str, typer.Option("--dtype", help="Stored dtype: float16 or float32.")] = "float16",
    resize_mode: Annotated[str, typer.Option("--resize-mode", help="stretch (whole frame, the paper's choice) or center-crop (VGGFace2 eval transform).")] = "stretch",
    dataset_option: Annotated[list[str], typer.Option("--dataset-option", help="Loader option KEY=VALUE, repeatable (e.g. frames=onset-offset).")] = [],
) -> None:
    """Run the trunk once per frame and write per-clip embedding sequences to a cache.

    Resumable: rerunning the same command skips finished clips and retries failed ones.
    Under `torchrun --nproc-per-node N -m mer_cache extract ...` ranks split the clips.
    """
    from mer_cache.extract import ExtractJob, ExtractOptions, run_extract_job

    def build():
        return ExtractJob(
            dataset=dataset, root=root, trunk=trunk, out=out, weights=weights, layer=layer,
            resize_mode=resize_mode, gpu=gpu, dataset_options=_parse_options(dataset_option),
            options=ExtractOptions(batch_size=batch_size, workers=workers, amp=amp, dtype=dtype),
        )

    job = run_guarded(build)
    notes: list[str] = []
    with Progress(TextColumn("[bold]extract[/]"), BarColumn(), TextColumn("{task.completed}/{task.total} frames"),
                  TextColumn("{task.fields[fps]:.0f} frames/s"), TimeRemainingColumn(),
                  console=err_console, transient=False) as bar:
        task = bar.add_task("extract", total=None, fps=0.0)
        import time

        t0 = time.perf_counter()

        def progress(done: int, total: int) -> None:
            elapsed = max(time.perf_counter() - t0, 1e-9)
            bar.update(task, completed=done, total=total, fps=done / elapsed)

        result = run_guarded(run_extract_job, job, progress=progress, notes=notes)
    for note in notes:
        err_console.print(f"[yellow]{note}[/]")
    table = Table(title=f"Extraction into {result.path} ({result.status})", show_header=False)
    rows = [("device", result.device), ("clips (this process)", result.n_clips),
            ("already done before this run", result.n_already_done), ("written now", result.n_written),
            ("failed", len(result.failed)), ("frames computed", result.frames),
            ("seconds", f"{result.seconds:.1f}"), ("frames/s", f"{result.frames_per_s:.1f}")]
    for key, value in rows:
        table.add_row(key, str(value))
    console.print(table)
    if result.world > 1:
        console.print(f"rank {result.rank} of {result.world}: wrote {result.n_written} clips")
    if result.failed:
        console.print(f"[red]{len(result.failed)} clip(s) failed[/] (rerun the same command to retry them):")
        for cid, reason in result.failed.items():
            console.print(f"  {cid}: {reason}", highlight=False)
        raise typer.Exit(1)
    console.print(f"Cache complete: {result.complete}")


def register(app: typer.Typer) -> None:
    app.command("extract")(extract)
