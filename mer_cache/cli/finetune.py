"""`mer-cache finetune` (Exp-I, one trunk per fold) and `mer-cache gradcam` (choose l_s)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from mer_cache.cli.common import (
    DatasetOpt, DatasetOptionsOpt, LayerOpt, RootOpt, SeedOpt, TrunkOpt, WeightsOpt, console,
    err_console, is_tty, parse_dataset_options, print_failed, run_guarded,
)
from mer_cache.errors import ConfigError
from mer_cache.pipelines.configs import FinetuneConfig

F = FinetuneConfig()  # every option's default

RegionsOpt = Annotated[str, typer.Option(
    "--regions", help="Moving face regions for the focus score: auto (the ground truth of a "
                      "`mer-cache synth` dataset, its synth.json, else diff), synth, diff "
                      "(onset-to-apex frame difference), or a JSON file "
                      "{clip_id: [[x0, y0, x1, y1], ...]} in frame pixels.")]


FACE_HELP = ("align (detect once per clip, warp every frame to a canonical face crop), none "
             "(whole frames), or auto: align for raw recordings of smic/casme2/samm/casme3/"
             "megc2019/casme/4dme/casme3c/casme3-ac/smic-e and `synth --layout raw`, none for cropped releases and folder/video/manifest. "
             "Needs `mer-cache faces fetch` once.")


def _load(dataset: str, root: Path, pairs: list[str]):
    from mer_cache.catalogue import load_catalogue

    return load_catalogue(dataset, root, **parse_dataset_options(pairs))


def _ranking_table(title: str, ranking: list[dict]) -> Table:
    table = Table(title=title)
    for col in ("rank", "layer", "focus", "uniform map", "clips"):
        table.add_column(col, justify="right")
    for i, row in enumerate(ranking, start=1):
        table.add_row(str(i), row["layer"], f"{row['focus']:.3f}", f"{row['mask_area']:.3f}",
                      str(row["n_clips"]))
    return table


def finetune(
    dataset: DatasetOpt,
    root: RootOpt,
    out: Annotated[Path, typer.Option("--out", help="Run folder (fold{k}.pt, metrics.json); rerun to resume.")],
    trunk: TrunkOpt = F.trunk,
    weights: WeightsOpt = F.weights,
    layer: LayerOpt = F.layer,
    from_layer: Annotated[str, typer.Option("--from-layer", help="l_s: first retrained spatial layer (e.g. layer4, module4), or auto (best Grad-CAM focus on each fold's training subjects).")] = F.from_layer,
    folds: Annotated[int, typer.Option("--folds", help="Subject folds (ignored by loso).")] = F.folds,
    protocol: Annotated[str, typer.Option("--protocol", help="subject-kfold (the paper) or loso.")] = F.protocol,
    labels: Annotated[str, typer.Option("--labels", help="Label scheme: smic4, megc3, casme2-5, emotion. megc3 maps any dataset's emotions to negative/positive/surprise; on one dataset it is a mapping, not the MEGC2019 list: for the 442-clip composite extract the megc2019 dataset.")] = F.labels,
    epochs: Annotated[int, typer.Option("--epochs", help="Epochs per fold (fixed unless --val-subjects).")] = F.epochs,
    lr: Annotated[float, typer.Option("--lr", help="Adam learning rate.")] = F.lr,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Frames per step.")] = F.batch_size,
    seed: SeedOpt = F.seed,
    val_subjects: Annotated[int, typer.Option("--val-subjects", help="Training subjects per fold held out for early stopping (0: fixed epochs).")] = F.val_subjects,
    frames_per_class: Annotated[Optional[int], typer.Option("--frames-per-class", help="Aug.-I frames per class and epoch (the paper: ~15000); default: the largest class.")] = F.frames_per_class,
    rotation: Annotated[float, typer.Option("--rotation", help="Random rotation range in degrees (+/-).")] = F.rotation_deg,
    regions: RegionsOpt = "auto",
    gpu: Annotated[Optional[int], typer.Option("--gpu", help="CUDA device index (AMP on); without it the CPU is used.")] = None,
    amp: Annotated[str, typer.Option("--amp", help="Autocast on GPU: bf16, fp16 or off.")] = F.amp,
    face: Annotated[str, typer.Option("--face", help=f"Face alignment of the training frames, as `extract --face`: {FACE_HELP} Each clip is aligned once per run; the transforms are kept in the run folder (faces.json) and `extract --finetuned-run` and `gradcam --checkpoint` reuse them.")] = F.face,
    dataset_option: DatasetOptionsOpt = [],
) -> None:
    """Fine-tune the trunk from layer l_s on, one trunk per fold, and score frames (Exp-I)."""
    from mer_cache.pipelines import resolve_device
    from mer_cache.pipelines import finetune as run_finetune

    device, note = run_guarded(resolve_device, gpu)
    if note:
        err_console.print(f"[yellow]{note}[/]")
    config = run_guarded(FinetuneConfig, trunk=trunk, weights=weights, layer=layer,
                         from_layer=from_layer, labels=labels, protocol=protocol, folds=folds,
                         seed=seed, val_subjects=val_subjects, epochs=epochs, batch_size=batch_size,
                         lr=lr, frames_per_class=frames_per_class, rotation_deg=rotation,
                         device=str(device), amp=amp, face=face)
    clips = run_guarded(_load, dataset, root, dataset_option)
    with Progress(TextColumn("[bold]fold {task.fields[fold]}[/]"), BarColumn(),
                  TextColumn("epoch {task.completed}/{task.total} loss {task.fields[loss]}"),
                  console=err_console, disable=not is_tty()) as bar:
        task = bar.add_task("finetune", total=epochs, fold="-", loss="-")

        def progress(ev) -> None:
            if ev.kind == "fold":
                bar.update(task, completed=0, total=ev.n_epochs, fold=f"{ev.fold + 1}/{ev.n_folds}")
            elif ev.kind == "epoch":
                bar.update(task, completed=ev.epoch, loss=f"{ev.loss:.3f}")

        result = run_guarded(run_finetune, clips, config=config, out=out, regions=regions,
                             progress=progress)
    for k, ranking in sorted(result.layer_rankings.items()):
        console.print(_ranking_table(f"Fold {k}: Grad-CAM focus of the base trunk on its training "
                                     f"subjects (from-layer auto, regions: {result.regions})",
                                     ranking))
    chosen = {rec["fold"]: rec.get("from_layer", result.config.from_layer) for rec in result.folds}
    console.print("l_s = " + ", ".join(f"fold {k}: {v}" for k, v in sorted(chosen.items())))
    table = Table(title=f"Exp-I frame-level scores ({result.config.protocol}, {result.out})")
    for col in ("fold", "test subjects", "frames", "accuracy", "UF1", "UAR", "epochs"):
        table.add_column(col, justify="right")
    for rec in result.folds:
        t = rec["test"]
        table.add_row(str(rec["fold"]), ", ".join(rec["test_subjects"]), str(t["n"]),
                      f"{t['accuracy']:.3f}", f"{t['uf1']:.3f}", f"{t['uar']:.3f}",
                      str(rec["epochs_run"]))
    p = result.metrics["pooled"]
    table.add_row("pooled", "", str(p["n"]), f"{p['accuracy']:.3f}", f"{p['uf1']:.3f}",
                  f"{p['uar']:.3f}", "", style="bold")
    ci = result.metrics["pooled_ci95"]
    table.add_row("95 % interval", "(over subjects)", "", "", f"[{ci['uf1'][0]:.3f}, {ci['uf1'][1]:.3f}]",
                  f"[{ci['uar'][0]:.3f}, {ci['uar'][1]:.3f}]", "", style="dim")
    console.print(table)
    if result.skipped:
        console.print(f"Kept finished folds {result.skipped} from the earlier run.")
    console.print(f"Frames: {'aligned face crops' if result.config.face == 'align' else 'whole frames'} "
                  f"(--face {result.config.face}).")
    console.print(f"{len(result.folds)} fold checkpoints in {result.out}; next: "
                  f"`mer-cache extract --finetuned-run {result.out} ...` writes one cache per fold.")
    _report_failed(result.failed, "left out of fine-tuning")


def _report_failed(failed: dict[str, str], what: str) -> None:
    """Name each clip without a usable face, with the reason; exit 1 as `extract` does."""
    if not failed:
        return
    console.print(f"[red]{len(failed)} clip(s) {what}[/] (no usable face):")
    print_failed(failed)
    raise typer.Exit(1)


def gradcam(
    dataset: DatasetOpt,
    root: RootOpt,
    out: Annotated[Path, typer.Option("--out", help="Folder for the PNG grids and focus.json.")],
    trunk: TrunkOpt = "fer-minixception",
    weights: WeightsOpt = None,
    layer: LayerOpt = None,
    checkpoint: Annotated[Optional[Path], typer.Option("--checkpoint", "-c", help="A fold{k}.pt of `mer-cache finetune`: maps before/after side by side (Fig. 4).")] = None,
    layers: Annotated[Optional[str], typer.Option("--layers", help="Comma-separated spatial layers (default: all of the trunk).")] = None,
    n_clips: Annotated[int, typer.Option("--clips", help="Clips to draw (apex frames, classes alternating).")] = 4,
    regions: RegionsOpt = "auto",
    suggest_layer: Annotated[bool, typer.Option("--suggest-layer", help="Print the layers ranked by focus and the suggested l_s.")] = False,
    seed: SeedOpt = 0,
    face: Annotated[Optional[str], typer.Option("--face", show_default=False, help=f"Frames the maps are computed and drawn on: {FACE_HELP} Default: with --checkpoint, its fine-tuning run's setting and stored transforms (another setting is refused); without, auto.")] = None,
    dataset_option: DatasetOptionsOpt = [],
) -> None:
    """Grad-CAM heat maps per layer on apex frames, with a focus score per layer."""
    from mer_cache.pipelines import run_gradcam
    from mer_cache.trunks import create_trunk

    names = [s.strip() for s in layers.split(",") if s.strip()] if layers else None
    base = run_guarded(create_trunk, trunk, layer=layer,
                       weights=Path(weights) if weights not in (None, "random") else weights)
    clips = run_guarded(_load, dataset, root, dataset_option)
    report = run_guarded(run_gradcam, clips, trunk=base, out=out, layers=names, n_clips=n_clips,
                         regions=regions, checkpoint=checkpoint, face=face, seed=seed)
    for png in report.pngs:
        console.print(f"wrote {png}")
    frames = "aligned face crops" if report.face else "whole frames"
    console.print(f"focus scores: {report.out / 'focus.json'} (regions: {report.regions}; frames: "
                  f"{frames})")
    if suggest_layer:
        console.print(_ranking_table("Base trunk: share of CAM mass on moving regions", report.ranking))
        if report.ranking_after:
            console.print(_ranking_table("Fine-tuned checkpoint", report.ranking_after))
        best = report.ranking[0]["layer"]
        console.print(f"Suggested l_s: [bold]{best}[/] (`mer-cache finetune --from-layer {best}`).")
    _report_failed(report.failed, "not drawn")


def register(app: typer.Typer) -> None:
    app.command("finetune")(finetune)
    app.command("gradcam")(gradcam)
