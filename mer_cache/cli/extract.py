"""`mer-cache extract`: embed every frame of a dataset into a Zarr cache.

With ``--finetuned-run`` it writes one cache per fold instead, each with that fold's
fine-tuned trunk (the paper's Exp-I; see :mod:`mer_cache.finetune.fold_caches`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from mer_cache.cli.common import (
    DatasetOpt, DatasetOptionsOpt, LayerOpt, RootOpt, WeightsOpt, console, err_console, fail,
    parse_dataset_options, print_failed, run_guarded,
)
from mer_cache.errors import ConfigError

if TYPE_CHECKING:
    from mer_cache.pipelines import ExtractOptions

DEFAULT_TRUNK = "fer-minixception"
DEFAULT_RESIZE_MODE = "stretch"  # the paper feeds whole frames, no face crop
# None marks "not given", so --finetuned-run can refuse an explicit --trunk / --resize-mode
ExtractTrunkOpt = Annotated[Optional[str], typer.Option(
    "--trunk", "-t", show_default=False,
    help=f"Trunk name (see `mer-cache weights list`), or tv:<torchvision name> (default: "
         f"{DEFAULT_TRUNK}; not with --finetuned-run).")]
ResizeModeOpt = Annotated[Optional[str], typer.Option(
    "--resize-mode", show_default=False,
    help=f"stretch (whole frame, the paper's choice) or center-crop (VGGFace2 eval transform) "
         f"(default: {DEFAULT_RESIZE_MODE}; with --finetuned-run, the run's).")]
FinetunedRunOpt = Annotated[Optional[Path], typer.Option(
    "--finetuned-run",
    help="Folder of a finished `mer-cache finetune` run: writes --out/fold{k}.zarr with each "
         "fold's trunk and --out/folds.json (train-head takes that folder). The run decides "
         "trunk, weights, layer, resize mode and face stage.")]




def extract(
    ctx: typer.Context,
    dataset: DatasetOpt,
    root: RootOpt,
    out: Annotated[Path, typer.Option("--out", help="Cache folder (.zarr), or with --finetuned-run the folder of fold caches; rerun to resume.")],
    trunk: ExtractTrunkOpt = None,
    weights: WeightsOpt = None,
    layer: LayerOpt = None,
    gpu: Annotated[Optional[int], typer.Option("--gpu", help="CUDA device index; without it (or without a GPU) the CPU is used.")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Frames per forward pass (packed across clips).")] = 64,
    workers: Annotated[Optional[int], typer.Option("--workers", help="DataLoader processes decoding frames (default: 0 on the CPU, where they would compete with the trunk for cores; min(8, cores) on a GPU).")] = None,
    amp: Annotated[str, typer.Option("--amp", help="Autocast on GPU: bf16, fp16 or off.")] = "bf16",
    dtype: Annotated[str, typer.Option("--dtype", help="Stored dtype: float16 or float32.")] = "float16",
    resize_mode: ResizeModeOpt = None,
    dataset_option: DatasetOptionsOpt = [],
    finetuned_run: FinetunedRunOpt = None,
    features: Annotated[str, typer.Option("--features", help="embeddings (a trunk per frame) or flow (TV-L1 onset->apex u, v, strain at 28x28, for --arch ststnet/offapexnet).")] = "embeddings",
    face: Annotated[Optional[str], typer.Option("--face", show_default=False, help="Face alignment before the trunk (and before the flow with --features flow): align (detect once per clip, warp every frame to a canonical face crop), none (whole frames), or auto (the default): align for raw recordings of smic/casme2/samm/casme3/megc2019/casme/4dme/casme3c/casme3-ac/smic-e and `synth --layout raw`, none for cropped releases and folder/video/manifest. Needs `mer-cache faces fetch` once. Not with --finetuned-run (the run's own face stage and transforms are used).")] = None,
    face_stabilise: Annotated[bool, typer.Option("--face-stabilise", help="With aligned faces: shift every frame onto its clip's first frame by phase correlation (translation only), against head sway within a clip. Off by default; README 'Faces in raw frames' gives what it measured. Not with --features flow.")] = False,
) -> None:
    """Run the trunk once per frame and write per-clip embedding sequences to a cache.

    Resumable: rerunning the same command skips finished clips and retries failed ones.
    Under `torchrun --nproc-per-node N -m mer_cache extract ...` ranks split the clips.
    With --finetuned-run, one cache per fold of the fine-tuning run (Exp-I).
    """
    if features not in ("embeddings", "flow"):
        fail(ConfigError(f"--features must be embeddings or flow, got {features!r}."))
    if features == "flow":  # all of it lives in cli/flow.py and mer_cache.flow
        from mer_cache.cli.flow import extract_flow

        if face_stabilise:
            fail(ConfigError("--face-stabilise is for embeddings: the flow is measured between "
                             "two frames and TV-L1 follows the head sway itself. Drop it."))
        # options with a default are refused only when typed (the flow job has none of them)
        typed = {f"--{name.replace('_', '-')}": True for name in
                 ("gpu", "batch_size", "workers", "amp", "dtype")
                 if getattr(ctx.get_parameter_source(name), "name", "DEFAULT") != "DEFAULT"}
        extract_flow(dataset=dataset, root=root, out=out, dataset_option=dataset_option,
                     ignored={"--trunk": trunk, "--weights": weights, "--layer": layer,
                              "--resize-mode": resize_mode, "--finetuned-run": finetuned_run,
                              **typed},
                     face=face or "auto")
        return
    from mer_cache.pipelines import ExtractJob, ExtractOptions, run_extract_job

    if finetuned_run is not None:
        given = [name for name, value in (("--trunk", trunk), ("--weights", weights),
                                          ("--layer", layer), ("--resize-mode", resize_mode),
                                          ("--face", face),
                                          ("--face-stabilise", face_stabilise or None))
                 if value is not None]
        if given:
            fail(ConfigError(
                f"{', '.join(given)} cannot be combined with --finetuned-run {finetuned_run}: the "
                f"fine-tuning run decides the trunk, its weights (one checkpoint per fold), the "
                f"layer, the resize mode and the face stage. Drop {', '.join(given)}, or extract "
                f"without --finetuned-run."))
        options = run_guarded(ExtractOptions, batch_size=batch_size, workers=workers, amp=amp,
                              dtype=dtype)
        _extract_finetuned(finetuned_run, dataset=dataset, root=root, out=out, gpu=gpu,
                           dataset_options=run_guarded(parse_dataset_options, dataset_option),
                           options=options)
        return

    def build():
        return ExtractJob(
            dataset=dataset, root=root, trunk=trunk or DEFAULT_TRUNK, out=out, weights=weights,
            layer=layer, resize_mode=resize_mode or DEFAULT_RESIZE_MODE, gpu=gpu,
            dataset_options=parse_dataset_options(dataset_option),
            options=ExtractOptions(batch_size=batch_size, workers=workers, amp=amp, dtype=dtype,
                                   face=face or "auto", face_stabilise=face_stabilise),
        )

    job = run_guarded(build)
    notes: list[str] = []
    bar = Progress(TextColumn("[bold]extract[/]"), BarColumn(), TextColumn("{task.completed}/{task.total} frames"),
                   TextColumn("{task.fields[fps]:.0f} frames/s"), TimeRemainingColumn(),
                   console=err_console, transient=False)
    task = bar.add_task("extract", total=None, fps=0.0)
    t0 = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if not bar.live.is_started:  # started on the first batch, so set-up errors print cleanly
            bar.start()
        elapsed = max(time.perf_counter() - t0, 1e-9)
        bar.update(task, completed=done, total=total, fps=done / elapsed)

    try:
        result = run_guarded(run_extract_job, job, progress=progress, notes=notes)
    finally:
        bar.stop()
    for note in notes:
        err_console.print(f"[yellow]{note}[/]")
    table = Table(title=f"Extraction into {result.path} ({result.status})", show_header=False)
    rows = [("device", result.device), ("face stage", result.face),
            ("clips (this process)", result.n_clips),
            ("already done before this run", result.n_already_done), ("written now", result.n_written),
            ("failed", len(result.failed)), ("frames computed", result.frames),
            ("seconds", f"{result.seconds:.1f}"), ("frames/s", f"{result.frames_per_s:.1f}")]
    for key, value in rows:
        table.add_row(key, str(value))
    console.print(table)
    if result.world > 1:
        console.print(f"rank {result.rank} of {result.world}: wrote {result.n_written} clips")
    if result.several_faces:
        shown = ", ".join(result.several_faces[:10]) + (" ..." if len(result.several_faces) > 10 else "")
        err_console.print(
            f"[yellow]{len(result.several_faces)} clip(s) show several faces; the largest, most "
            f"central one was aligned in each: {shown}. `mer-cache faces preview` shows which.[/]",
            highlight=False)
    if result.failed:
        console.print(f"[red]{len(result.failed)} clip(s) failed[/] (rerun the same command to retry them):")
        print_failed(result.failed)
        raise typer.Exit(1)
    console.print(f"Cache complete: {result.complete}")


def _extract_finetuned(run_dir: Path, *, dataset: str, root: Path, out: Path, gpu: int | None,
                       dataset_options: dict, options: ExtractOptions) -> None:
    """Write one cache per fold of a fine-tuning run; print one table row per fold."""
    from mer_cache.pipelines import run_extract_finetuned_job

    notes: list[str] = []
    with Progress(TextColumn("[bold]extract fold {task.fields[fold]}[/]"), BarColumn(),
                  TextColumn("{task.completed}/{task.total} frames"), TimeRemainingColumn(),
                  console=err_console, transient=False) as bar:
        task = bar.add_task("extract", total=None, fold="-")
        state = {"fold": None}

        def progress(k: int, done: int, total: int) -> None:
            if state["fold"] != k:
                state["fold"] = k
                bar.reset(task)
            bar.update(task, completed=done, total=total, fold=str(k))

        result = run_guarded(run_extract_finetuned_job, run_dir, dataset=dataset, root=root,
                             out=out, gpu=gpu, dataset_options=dataset_options, options=options,
                             progress=progress, notes=notes)
    for note in notes:
        err_console.print(f"[yellow]{note}[/]")
    table = Table(title=f"Fold caches of {run_dir} in {result.out_dir}")
    for col in ("fold", "cache", "clips written", "already done", "failed", "frames/s", "complete"):
        table.add_column(col, justify="right")
    for k, r in enumerate(result.results):
        table.add_row(str(k), r.path.name, str(r.n_written), str(r.n_already_done),
                      str(len(r.failed)), f"{r.frames_per_s:.1f}", str(r.complete))
    console.print(table)
    if result.failed:
        console.print(f"[red]{len(result.failed)} clip(s) failed[/] (rerun the same command to "
                      "retry them):")
        print_failed(result.failed)
        raise typer.Exit(1)
    console.print(f"Fold caches complete: {result.complete}. Train heads on them with "
                  f"`mer-cache train-head --cache {result.out_dir} ...` and the run's protocol, "
                  "folds and seed.", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("extract")(extract)
