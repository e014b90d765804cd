"""``mer-cache datasets``: check a dataset copy, list its clips."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from mer_cache.catalogue.problems import DatasetWarning
from mer_cache.cli.common import (
    DatasetOpt, DatasetOptionsOpt, RootOpt, console, err_console, parse_dataset_options, run_guarded,
)
from mer_cache.errors import ConfigError

app = typer.Typer(help="Dataset copies: check them, list their clips.", no_args_is_help=True)


@app.command("check")
def check_cmd(
    dataset: DatasetOpt,
    root: RootOpt,
    deep: Annotated[bool, typer.Option("--deep", help="Also open and decode every image (slow), and find the faces of each clip's first frames (no face / several faces; needs `mer-cache faces fetch`).")] = False,
    dataset_option: DatasetOptionsOpt = [],
) -> None:
    """Count clips per subject and label, and report every problem; exit 1 if any is fatal."""
    from mer_cache.catalogue import check_dataset

    options = run_guarded(parse_dataset_options, dataset_option)
    if deep:
        from mer_cache.pipelines import check_dataset_deep

        with Progress(TextColumn("[bold]{task.description}[/]"), BarColumn(), MofNCompleteColumn(),
                      console=err_console, transient=True) as bar:
            frames = bar.add_task("opening frames", total=None)
            faces = bar.add_task("finding faces", total=None, visible=False)
            report = run_guarded(
                check_dataset_deep, dataset, root, **options,
                progress=lambda done, total: bar.update(frames, completed=done, total=total),
                face_progress=lambda done, total: bar.update(faces, completed=done, total=total,
                                                             visible=True))
    else:
        report = run_guarded(check_dataset, dataset, root, **options)
    counts = report.counts()
    if report.clips:
        console.print(_counts_table(report, title=f"{dataset} clips per subject and label ({root})"))
    for p in report.notes:
        console.print(f"[cyan]note[/] {escape(str(p))}", soft_wrap=True, highlight=False)
    if report.fatal or report.warnings:
        console.print(f"[bold]Problems[/] ({len(report.fatal)} fatal, {len(report.warnings)} warning(s)):")
    for p in report.fatal + report.warnings:
        tag = "[bold red]FATAL[/]  " if p.severity == "fatal" else "[yellow]warning[/]"
        console.print(f"{tag} {escape(str(p))}", soft_wrap=True, highlight=False)
    summary = (f"{len(report.clips)} clips, {len(counts)} subjects; {len(report.fatal)} fatal "
               f"problem(s), {len(report.warnings)} warning(s){' (deep: every image opened)' if deep else ''}.")
    console.print(("[red]" if report.fatal else "[green]") + summary + "[/]", soft_wrap=True, highlight=False)
    if report.fatal:
        raise typer.Exit(1)


def _counts_table(report, *, title: str) -> Table:
    counts = report.counts()
    labels = report.labels
    table = Table(title=title)
    table.add_column("subject")
    for label in labels:
        table.add_column(label, justify="right")
    table.add_column("total", justify="right", style="bold")
    for subject, per_label in counts.items():
        table.add_row(subject, *(str(per_label.get(lb, 0)) for lb in labels), str(sum(per_label.values())))
    totals = [sum(c.get(lb, 0) for c in counts.values()) for lb in labels]
    table.add_row("[bold]all[/]", *(str(t) for t in totals), str(len(report.clips)), end_section=True)
    return table


@app.command("list")
def list_cmd(
    dataset: Annotated[str | None, typer.Option("--dataset", "-d", help="Dataset loader; omit (with --root) to list the supported datasets.")] = None,
    root: Annotated[Path | None, typer.Option("--root", "-r", help="Dataset root folder (or manifest CSV).")] = None,
    skip_missing: Annotated[bool, typer.Option("--skip-missing", help="Leave out clips without frames instead of failing.")] = False,
    dataset_option: DatasetOptionsOpt = [],
) -> None:
    """List the supported datasets (no --root): annotation file, frame layout, label schemes; or
    the clips of one copy (--dataset and --root): id, label, frames, onset/apex/offset, fps."""
    from mer_cache.catalogue import load_catalogue

    if root is None:
        _supported_table(dataset)
        return
    if dataset is None:
        run_guarded(_raise, ConfigError("--root needs --dataset (see `mer-cache datasets list` for the names)."))
    options = run_guarded(parse_dataset_options, dataset_option)
    on_missing = options.pop("on_missing", "skip" if skip_missing else "raise")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DatasetWarning)
        clips = run_guarded(load_catalogue, dataset, root, on_missing=on_missing, **options)
    for w in caught:
        err_console.print(f"[yellow]warning[/] {escape(str(w.message))}", soft_wrap=True, highlight=False)
    table = Table(title=f"{len(clips)} {dataset} clips ({root})")
    for col, justify in (("clip id", "left"), ("label", "left"), ("frames", "right"), ("onset", "right"),
                         ("apex", "right"), ("offset", "right"), ("fps", "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    dash = lambda v: "-" if v is None else str(v)  # noqa: E731
    for c in clips:
        table.add_row(c.clip_id, c.label, str(c.n_frames), dash(c.onset), dash(c.apex), dash(c.offset), f"{c.fps:g}")
    console.print(table)


def _raise(exc: Exception) -> None:
    raise exc


def _supported_table(only: str | None) -> None:
    """Every dataset (or one): what the loader expects and which label schemes fit it."""
    from mer_cache.catalogue.registry import get_loader, loader_options
    from mer_cache.catalogue.supported import SUPPORTED

    names = list(SUPPORTED) if only is None else [only]
    if only is not None:
        run_guarded(get_loader, only)  # an unknown name lists the known ones
    table = Table(title="Supported datasets (`datasets list -d NAME -r ROOT` lists a copy's clips)",
                  show_lines=True)
    for col in ("dataset", "annotation file", "frame layout", "label schemes", "options"):
        table.add_column(col, overflow="fold")
    for name in names:
        info = SUPPORTED[name]
        schemes = ", ".join([*info.schemes, "emotion"]) + (" · AUs" if info.aus else "")
        options = ", ".join(loader_options(name))
        table.add_row(f"[bold]{name}[/]\n{escape(info.title)}", escape(info.annotation), escape(info.frames),
                      schemes, options or "-")
    console.print(table)
