"""``mer-cache train-head`` and ``mer-cache sweep``: temporal heads on a cached embedding set."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mer_cache.cli.common import SeedOpt, console, err_console, run_guarded
from mer_cache.errors import ConfigError
from mer_cache.heads.data import load_sequences
from mer_cache.heads.flow_models import FLOW_HEADS
from mer_cache.heads.folds import LEAK_MESSAGE, SubjectLeakWarning
from mer_cache.heads.sweep import run_sweep
from mer_cache.heads.training import HeadConfig, ProgressEvent, RunResult, train_head

CacheOpt = Annotated[Path, typer.Option("--cache", "-c", help="Embedding cache (made by `mer-cache extract`), or a folder of fold caches (`extract --finetuned-run`): fold k then uses fold k's features, with the fine-tuning run's protocol, folds and seed.")]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Run directory; rerunning the same command resumes it.")]
FoldsOpt = Annotated[int, typer.Option("--folds", help="Fold count (ignored by loso).")]
ProtocolOpt = Annotated[str, typer.Option("--protocol", help="subject-kfold (paper as written), loso (MEGC), clip-kfold (paper's code; subjects leak).")]
LabelsOpt = Annotated[str, typer.Option("--labels", help="Label scheme: smic4, megc3, casme2-5, emotion.")]
EpochsOpt = Annotated[int, typer.Option("--epochs", help="Training epochs (the maximum with --val-subjects).")]
BalanceOpt = Annotated[str, typer.Option("--balance", help="windows: equal window counts per class (Aug.-II); loss: class-weighted loss; none.")]
ValOpt = Annotated[int, typer.Option("--val-subjects", help="Training subjects held out per fold for early stopping (0: fixed epochs).")]
PatienceOpt = Annotated[int, typer.Option("--patience", help="Early stopping: epochs without a better validation UF1.")]
PerClipOpt = Annotated[float, typer.Option("--windows-per-clip", help="Training windows drawn per training clip per epoch.")]
WeightDecayOpt = Annotated[float, typer.Option("--weight-decay", help="Adam weight decay.")]
PrecisionOpt = Annotated[str, typer.Option("--precision", help="auto (bf16 on CPUs with native bf16, else fp32), fp32 or bf16.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="Torch device: cpu, cuda, cuda:1, ...")]
ReferenceOpt = Annotated[str, typer.Option("--reference", help="first: subtract each clip's first (neutral onset) frame, removing identity; none: raw embeddings (the paper's code); auto: none for the static `frame` head, first otherwise.")]


class _ProgressBar:
    """Turns the library's progress events into one rich bar over all folds' epochs."""

    def __init__(self, bar: Progress, epochs: int) -> None:
        self.bar, self.epochs, self.task = bar, epochs, None

    def __call__(self, ev: ProgressEvent) -> None:
        if self.task is None:
            self.task = self.bar.add_task("training", total=ev.n_folds * self.epochs)
        desc = f"fold {ev.fold + 1}/{ev.n_folds}"
        if ev.kind == "skip":
            self.bar.update(self.task, advance=self.epochs, description=f"{desc} (done before)")
        elif ev.kind == "epoch":
            extra = f" val UF1 {ev.val_uf1:.3f}" if ev.val_uf1 is not None else ""
            self.bar.update(self.task, advance=1,
                            description=f"{desc} epoch {ev.epoch} loss {ev.loss:.3f}{extra}")
        elif ev.kind == "done":  # early stopping: count the epochs that did not run
            done = next(t.completed for t in self.bar.tasks if t.id == self.task)
            self.bar.update(self.task, completed=max(done, (ev.fold + 1) * self.epochs))

    def reset(self) -> None:
        if self.task is not None:
            self.bar.remove_task(self.task)
        self.task = None


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                    TimeElapsedColumn(), console=err_console, transient=True)


def _render(res: RunResult) -> None:
    m = res.metrics
    table = Table(title=f"{m['arch']} / {m['protocol']} ({len(m['folds'])} folds)")
    for col in ("fold", "clips", "test subjects", "accuracy", "UF1", "UAR"):
        table.add_column(col, justify="right")
    for f, d in zip(m["folds"], m["fold_details"]):
        table.add_row(str(f["fold"]), str(f["n"]), str(len(d["test_subjects"])),
                      f"{f['accuracy']:.3f}", f"{f['uf1']:.3f}", f"{f['uar']:.3f}")
    mean = m["mean_of_folds"]
    table.add_row("mean of folds", "", "", f"{mean['accuracy']:.3f}", f"{mean['uf1']:.3f}",
                  f"{mean['uar']:.3f}", style="dim")
    p = m["pooled"]
    table.add_row("[bold]pooled[/]", str(p["n"]), "", f"{p['accuracy']:.3f}", f"[bold]{p['uf1']:.3f}[/]",
                  f"[bold]{p['uar']:.3f}[/]")
    for name, s in m.get("per_dataset", {}).items():
        table.add_row(f"pooled {name}", str(s["n"]), "", f"{s['accuracy']:.3f}", f"{s['uf1']:.3f}",
                      f"{s['uar']:.3f}")
    console.print(table)
    for note in res.notes:
        style = "yellow" if note.startswith("WARNING") else "dim"
        console.print(f"[{style}]note:[/] {note}", highlight=False)
    if res.out is not None:
        console.print(f"Run written to {res.out} ({res.seconds:.1f} s of training).", highlight=False)


def _warn_leak(protocol: str) -> None:
    if protocol == "clip-kfold":
        err_console.print(f"[bold yellow]Warning:[/] {LEAK_MESSAGE}", highlight=False)


def _load_inputs(cache: Path, labels: str):
    """The head's sequences, and the per-fold features when ``cache`` is a fold-cache folder.

    One ``fold{k}.zarr`` on its own is refused: its trunk trained on other folds' test subjects.
    """
    from mer_cache.cache import cache_kind
    from mer_cache.finetune.guard import check_not_fold_cache, is_fold_cache_dir, load_fold_features

    if cache_kind(cache) == "flow":  # one flow map per clip, for --arch ststnet|offapexnet
        from mer_cache.heads.flow_data import load_flow_sequences

        return run_guarded(load_flow_sequences, cache, labels=labels), None
    if is_fold_cache_dir(cache):
        features = run_guarded(load_fold_features, cache, labels=labels)
        return features.sequences[0], features
    seqs = run_guarded(load_sequences, cache, labels=labels)
    run_guarded(check_not_fold_cache, seqs.fingerprint, path=cache)
    return seqs, None


def train_head_cmd(
    cache: CacheOpt,
    out: OutOpt,
    arch: Annotated[str, typer.Option("--arch", help="Head: lstm (Exp-II), bilstm (Exp-III), gru, mean, frame; on a flow cache ststnet or offapexnet.")] = "bilstm",
    folds: FoldsOpt = 5,
    protocol: ProtocolOpt = "subject-kfold",
    labels: LabelsOpt = "smic4",
    window: Annotated[Optional[int], typer.Option("--window", help="Window length N in frames (default 13, the paper's; 1 for the flow heads).")] = None,
    window_stride: Annotated[int, typer.Option("--window-stride", help="Frames between window starts.")] = 1,
    epochs: EpochsOpt = 20,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Windows per batch (paper: 40/20).")] = 40,
    lr: Annotated[float, typer.Option("--lr", help="Adam learning rate (paper: 2.6e-3).")] = 2.6e-3,
    seed: SeedOpt = 0,
    weight_decay: WeightDecayOpt = 0.0,
    balance: BalanceOpt = "windows",
    windows_per_clip: PerClipOpt = 1.0,
    val_subjects: ValOpt = 0,
    patience: PatienceOpt = 5,
    precision: PrecisionOpt = "auto",
    device: DeviceOpt = "cpu",
    reference: ReferenceOpt = "auto",
) -> None:
    """Train a temporal head on a cache under an evaluation protocol; write the run directory."""
    if window is None:
        window = 1 if arch in FLOW_HEADS else 13
    config = run_guarded(HeadConfig, arch=arch, window=window, window_stride=window_stride,
                         epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                         seed=seed, balance=balance, windows_per_clip=windows_per_clip,
                         protocol=protocol, folds=folds, labels=labels, val_subjects=val_subjects,
                         patience=patience, precision=precision, device=device,
                         reference=reference)
    _warn_leak(protocol)
    seqs, features = _load_inputs(cache, labels)
    with warnings.catch_warnings(), _progress() as bar:
        warnings.simplefilter("ignore", SubjectLeakWarning)  # shown above, and in the notes
        res = run_guarded(train_head, seqs, config, out=out, progress=_ProgressBar(bar, epochs),
                          fold_features=features)
    _render(res)


def _split(text: str, kind: type, option: str) -> list:
    try:
        values = [kind(v.strip()) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{option} '{text}' is not a comma-separated list of {kind.__name__} "
                          f"values (e.g. {option} 11,13,15).") from None
    if not values:
        raise ConfigError(f"{option} is empty; give at least one value.")
    return values


def sweep_cmd(
    cache: CacheOpt,
    out: OutOpt,
    arch: Annotated[str, typer.Option("--arch", help="Comma list of heads, e.g. lstm,bilstm.")] = "bilstm",
    window: Annotated[str, typer.Option("--window", help="Comma list of window lengths, e.g. 11,13,15,17.")] = "13",
    window_stride: Annotated[str, typer.Option("--window-stride", help="Comma list of strides.")] = "1",
    lr: Annotated[str, typer.Option("--lr", help="Comma list of learning rates.")] = "0.0026",
    batch_size: Annotated[str, typer.Option("--batch-size", help="Comma list of batch sizes.")] = "40",
    folds: FoldsOpt = 5,
    protocol: ProtocolOpt = "subject-kfold",
    labels: LabelsOpt = "smic4",
    epochs: EpochsOpt = 20,
    seed: SeedOpt = 0,
    balance: BalanceOpt = "windows",
    windows_per_clip: PerClipOpt = 1.0,
    val_subjects: ValOpt = 0,
    patience: PatienceOpt = 5,
    precision: PrecisionOpt = "auto",
    device: DeviceOpt = "cpu",
    reference: ReferenceOpt = "auto",
) -> None:
    """Run a grid of heads over one in-memory copy of the cache; print a ranked table."""
    lists = {"arch": (arch, str, "--arch"), "window": (window, int, "--window"),
             "window_stride": (window_stride, int, "--window-stride"), "lr": (lr, float, "--lr"),
             "batch_size": (batch_size, int, "--batch-size")}
    values = {k: run_guarded(_split, text, kind, opt) for k, (text, kind, opt) in lists.items()}
    grid = {k: v for k, v in values.items() if len(v) > 1}
    base = run_guarded(HeadConfig, **{k: v[0] for k, v in values.items()}, epochs=epochs, seed=seed,
                       balance=balance, windows_per_clip=windows_per_clip, protocol=protocol,
                       folds=folds, labels=labels, val_subjects=val_subjects, patience=patience,
                       precision=precision, device=device, reference=reference)
    _warn_leak(protocol)
    seqs, features = _load_inputs(cache, labels)
    with warnings.catch_warnings(), _progress() as bar:
        warnings.simplefilter("ignore", SubjectLeakWarning)
        progress = _ProgressBar(bar, epochs)

        def on_run(name: str, i: int, total: int) -> None:
            progress.reset()
            err_console.print(f"[{i + 1}/{total}] {name}", highlight=False)

        res = run_guarded(run_sweep, seqs, grid, base=base, out=out, progress=progress, on_run=on_run,
                          fold_features=features)
    table = Table(title=f"sweep ({len(res.rows)} runs, {protocol}, ranked by pooled UF1)")
    for col in ("rank", "run", "UF1", "UAR", "accuracy", "seconds"):
        table.add_column(col, justify="right" if col != "run" else "left")
    for r in res.rows:
        table.add_row(str(r["rank"]), r["name"], f"{r['uf1']:.3f}", f"{r['uar']:.3f}",
                      f"{r['accuracy']:.3f}", f"{r['seconds']:.1f}")
    console.print(table)
    if res.csv_path is not None:
        console.print(f"Wrote {res.csv_path}.", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("train-head")(train_head_cmd)
    app.command("sweep")(sweep_cmd)
