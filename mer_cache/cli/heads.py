"""``mer-cache train-head`` and ``mer-cache sweep``: temporal heads on a cached embedding set.

Defaults come from :class:`mer_cache.heads.config.HeadConfig` (torch-free); the job API is
imported inside each command so ``--help`` answers at once.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mer_cache.cli.common import SeedOpt, console, err_console, fail, run_guarded
from mer_cache.errors import ConfigError
from mer_cache.pipelines.configs import (
    AU_DEFAULTS, FLOW_HEADS, HEADS, PRESETS, HeadConfig, preset_fields,
)

D = HeadConfig()  # every option's default

CacheOpt = Annotated[Path, typer.Option("--cache", "-c", help="Embedding cache (made by `mer-cache extract`), or a folder of fold caches (`extract --finetuned-run`): fold k then uses fold k's features, with the fine-tuning run's protocol, folds and seed.")]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Run directory; rerunning the same command resumes it.")]
FoldsOpt = Annotated[int, typer.Option("--folds", help="Fold count (ignored by loso).")]
ProtocolOpt = Annotated[str, typer.Option("--protocol", help="subject-kfold (paper as written), loso (MEGC), lodo (leave one dataset out: train on the other datasets of a multi-dataset cache, test on one; per-dataset scores), clip-kfold (paper's code; subjects leak).")]
LabelsOpt = Annotated[str, typer.Option("--labels", help="Label scheme: smic4, megc3, casme2-5, emotion. megc3 maps any dataset's emotions to negative/positive/surprise; on one dataset it is a mapping, not the MEGC2019 list: for the 442-clip composite extract the megc2019 dataset.")]
EpochsOpt = Annotated[int, typer.Option("--epochs", help="Training epochs (the maximum with --val-subjects).")]
BalanceOpt = Annotated[str, typer.Option("--balance", help="windows: equal window counts per class (Aug.-II); loss: class-weighted loss; none.")]
ValOpt = Annotated[int, typer.Option("--val-subjects", help="Training subjects held out per fold for early stopping (0: fixed epochs).")]
PatienceOpt = Annotated[int, typer.Option("--patience", help="Early stopping: epochs without a better validation UF1.")]
PerClipOpt = Annotated[float, typer.Option("--windows-per-clip", help="Training windows drawn per training clip per epoch (with --epoch-windows sample).")]
EpochWindowsOpt = Annotated[str, typer.Option("--epoch-windows", help="all: every window each epoch, classes oversampled to the largest (the paper's Aug.-II; the default); sample: draw --windows-per-clip windows per clip each epoch (about 1/15 of the work on SMIC-length clips; scored lower on the demo data).")]
WeightDecayOpt = Annotated[float, typer.Option("--weight-decay", help="Adam weight decay.")]
PrecisionOpt = Annotated[str, typer.Option("--precision", help="auto (bf16 on CPUs with native bf16, else fp32), fp32 or bf16.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="Torch device: cpu, cuda, cuda:1, ...")]
ReferenceOpt = Annotated[str, typer.Option("--reference", help="first: subtract each clip's first (neutral onset) frame, removing identity; none: raw embeddings (the paper's code); auto: none for the static `frame` head, first otherwise.")]
TaskOpt = Annotated[str, typer.Option("--task", help="emotion: one class per clip (UF1, UAR); au: action-unit detection, one sigmoid output per AU, scored by per-AU F1 and their mean (needs a cache of a dataset whose annotation codes AUs; --labels then only chooses the clips, default emotion = every clip; --balance defaults to loss = per-AU positive weights).")]
AUsOpt = Annotated[str | None, typer.Option("--aus", help="With --task au: the AUs to detect, e.g. 1,2,4,12, or a set name (casme2, samm, cross, ...). Default: every AU coded in at least --au-min-clips clips.")]
AUMinOpt = Annotated[int, typer.Option("--au-min-clips", help="With --task au and no --aus: keep the AUs coded in at least this many clips.")]
PresetOpt = Annotated[str, typer.Option("--preset", help=f"Named settings ({', '.join(PRESETS)}). paper = Bai & Goecke's Exp-II/III training: --reference none --epoch-windows all --balance windows --window 13 --epochs 20 --batch-size 40 --lr 2.6e-3. Options given on the command line win over the preset.")]


class _ProgressBar:
    """Turns the library's progress events into one rich bar over all folds' epochs."""

    def __init__(self, bar: Progress, epochs: int) -> None:
        self.bar, self.epochs, self.task = bar, epochs, None

    def __call__(self, ev) -> None:
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


def _ci(metrics: dict, key: str) -> str:
    lo, hi = metrics["pooled_ci95"][key]
    return f"[{lo:.3f}, {hi:.3f}]"


def _render(res) -> None:
    m = res.metrics
    table = Table(title=f"{m['arch']} / {m['protocol']} ({len(m['folds'])} folds)")
    for col in ("fold", "clips", "test subjects", "accuracy", "UF1", "UAR"):
        table.add_column(col, justify="right", no_wrap=col == "fold")
    for f, d in zip(m["folds"], m["fold_details"]):
        table.add_row(str(f["fold"]), str(f["n"]), str(len(d["test_subjects"])),
                      f"{f['accuracy']:.3f}", f"{f['uf1']:.3f}", f"{f['uar']:.3f}")
    mean = m["mean_of_folds"]
    table.add_row("mean of folds", "", "", f"{mean['accuracy']:.3f}", f"{mean['uf1']:.3f}",
                  f"{mean['uar']:.3f}", style="dim")
    p = m["pooled"]
    table.add_row("[bold]pooled[/]", str(p["n"]), "", f"{p['accuracy']:.3f}", f"[bold]{p['uf1']:.3f}[/]",
                  f"[bold]{p['uar']:.3f}[/]")
    table.add_row("95 % interval", "", "(subjects)", "", _ci(m, "uf1"), _ci(m, "uar"), style="dim")
    for name, s in m.get("per_dataset", {}).items():
        table.add_row(f"pooled {name}", str(s["n"]), "", f"{s['accuracy']:.3f}", f"{s['uf1']:.3f}",
                      f"{s['uar']:.3f}")
    console.print(table)
    for note in res.notes:
        style = "yellow" if note.startswith("WARNING") else "dim"
        console.print(f"[{style}]note:[/] {note}", highlight=False)
    if res.out is not None:
        console.print(f"Run written to {res.out} ({res.seconds:.1f} s of training).", highlight=False)


def _render_au(res) -> None:
    """The AU run's table: one row per AU (pooled F1, per dataset), the mean F1, per-fold means."""
    m = res.metrics
    p, datasets = m["pooled"], list(m.get("per_dataset", {}))
    table = Table(title=f"{m['arch']} / {m['protocol']} AU detection ({len(m['folds'])} folds)")
    for col in ("AU", "clips with AU", "F1 pooled", *(f"F1 {d}" for d in datasets)):
        table.add_column(col, justify="right")
    for au in m["aus"]:
        table.add_row(au, str(p["support"][au]), f"{p['f1'][au]:.3f}",
                      *(f"{m['per_dataset'][d]['f1'][au]:.3f}" for d in datasets))
    lo, hi = m["pooled_ci95"]["mean_f1"]
    table.add_row("[bold]mean F1[/]", f"{p['n']} clips", f"[bold]{p['mean_f1']:.3f}[/]",
                  *(f"{m['per_dataset'][d]['mean_f1']:.3f}" for d in datasets))
    table.add_row("95 % interval", "(subjects)", f"[{lo:.3f}, {hi:.3f}]", *[""] * len(datasets), style="dim")
    console.print(table)
    folds = ", ".join(f"{f['fold']}: {f['mean_f1']:.3f}" for f in m["folds"])
    console.print(f"mean F1 per fold (for reading): {folds}; mean of folds "
                  f"{m['mean_of_folds']['mean_f1']:.3f}", highlight=False)
    for note in res.notes:
        console.print(f"[dim]note:[/] {note}", highlight=False)
    if res.out is not None:
        console.print(f"Run written to {res.out} ({res.seconds:.1f} s of training).", highlight=False)


def _warn_leak(protocol: str) -> None:
    if protocol == "clip-kfold":
        from mer_cache.pipelines import LEAK_MESSAGE

        err_console.print(f"[bold yellow]Warning:[/] {LEAK_MESSAGE}", highlight=False)


def _config(ctx: typer.Context, preset: str, values: dict) -> HeadConfig:
    """Options -> HeadConfig: the preset's fields, then every option given on the command line."""
    fields = run_guarded(preset_fields, preset)

    def on_command_line(name: str) -> bool:  # click's ParameterSource, by name (typer vendors click)
        source = ctx.get_parameter_source(name)
        return source is not None and source.name == "COMMANDLINE"

    given = {k: v for k, v in values.items() if k not in fields or on_command_line(k)}
    if given.get("arch") in FLOW_HEADS and "window" in fields and not on_command_line("window"):
        fail(ConfigError(f"--preset {preset} sets a {fields['window']}-frame window, but "
                         f"--arch {given['arch']} reads one flow map per clip. Leave out "
                         f"--preset (the flow heads have their own defaults)."))

    if values.get("task") == "au":  # the AU task's own defaults, for options left unsaid
        given.update({k: v for k, v in AU_DEFAULTS.items() if k not in fields and not on_command_line(k)})
    return run_guarded(HeadConfig, **{**fields, **given})


def _seeds(text: str | None) -> list[int] | None:
    return None if text is None else run_guarded(_split, text, int, "--seeds")


def _load_inputs(cache: Path, labels: str):
    """The job API's inputs; labels the scheme leaves out are printed with their counts."""
    from mer_cache.catalogue.labels import UnmappedLabelWarning
    from mer_cache.pipelines import load_inputs

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnmappedLabelWarning)
        seqs, features = run_guarded(load_inputs, cache, labels=labels)
    for w in caught:  # others go back to the warnings machinery untouched
        if w.category is not UnmappedLabelWarning:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    for message in dict.fromkeys(str(w.message) for w in caught if w.category is UnmappedLabelWarning):
        err_console.print(f"[bold yellow]Warning:[/] {message}", highlight=False, soft_wrap=True)
    return seqs, features


def train_head_cmd(
    ctx: typer.Context,
    cache: CacheOpt,
    out: OutOpt,
    arch: Annotated[str, typer.Option("--arch", help=f"Head: {', '.join(HEADS)} (lstm = Exp-II, bilstm = Exp-III with --preset paper; ststnet and offapexnet read a flow cache).")] = D.arch,
    preset: PresetOpt = "default",
    folds: FoldsOpt = D.folds,
    protocol: ProtocolOpt = D.protocol,
    labels: LabelsOpt = D.labels,
    window: Annotated[Optional[int], typer.Option("--window", help="Window length N in frames (default: 13, the paper's; 1 for the flow heads).", show_default=False)] = None,
    window_stride: Annotated[int, typer.Option("--window-stride", help="Frames between window starts.")] = D.window_stride,
    epochs: EpochsOpt = D.epochs,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Windows per batch (paper: 40/20).")] = D.batch_size,
    lr: Annotated[float, typer.Option("--lr", help="Adam learning rate (paper: 2.6e-3).")] = D.lr,
    seed: SeedOpt = D.seed,
    seeds: Annotated[str | None, typer.Option("--seeds", help="Comma list of seeds (e.g. 0,1,2): one run per seed in OUT/seed<s>, and their mean and spread in OUT/seeds.json.")] = None,
    weight_decay: WeightDecayOpt = D.weight_decay,
    balance: BalanceOpt = D.balance,
    windows_per_clip: PerClipOpt = D.windows_per_clip,
    epoch_windows: EpochWindowsOpt = D.epoch_windows,
    val_subjects: ValOpt = D.val_subjects,
    patience: PatienceOpt = D.patience,
    precision: PrecisionOpt = D.precision,
    device: DeviceOpt = D.device,
    reference: ReferenceOpt = D.reference,
    task: TaskOpt = D.task,
    aus: AUsOpt = None,
    au_min_clips: AUMinOpt = D.au_min_clips,
) -> None:
    """Train a temporal head on a cache under an evaluation protocol; write the run directory."""
    values = dict(task=task, aus=() if aus is None else tuple(run_guarded(_split, aus, str, "--aus")),
                  au_min_clips=au_min_clips, arch=arch, window=window, window_stride=window_stride, epochs=epochs,
                  batch_size=batch_size, lr=lr, weight_decay=weight_decay, seed=seed, balance=balance,
                  windows_per_clip=windows_per_clip, epoch_windows=epoch_windows, protocol=protocol,
                  folds=folds, labels=labels, val_subjects=val_subjects, patience=patience,
                  precision=precision, device=device, reference=reference)
    config = _config(ctx, preset, values)
    seed_list = _seeds(seeds)
    _warn_leak(config.protocol)
    from mer_cache.pipelines import SubjectLeakWarning, train_head, train_head_seeds

    seqs, features = _load_inputs(cache, config.labels)
    with warnings.catch_warnings(), _progress() as bar:
        warnings.simplefilter("ignore", SubjectLeakWarning)  # shown above, and in the notes
        progress = _ProgressBar(bar, config.epochs)
        if seed_list is None:
            res = run_guarded(train_head, seqs, config, out=out, progress=progress,
                              fold_features=features, source=str(cache))
        else:
            def on_seed(s: int, i: int, total: int) -> None:
                progress.reset()
                err_console.print(f"[{i + 1}/{total}] seed {s}", highlight=False)

            many = run_guarded(train_head_seeds, seqs, config, seed_list, out=out, progress=progress,
                               on_seed=on_seed, fold_features=features, source=str(cache))
    if seed_list is None:
        _render_au(res) if config.task == "au" else _render(res)
        return
    _render_seeds(many)


def _render_seeds(many) -> None:
    s = many.summary
    table = Table(title=f"{s['arch']} / {s['protocol']} over seeds {', '.join(map(str, s['seeds']))}")
    for col in ("seed", "UF1", "UF1 95 % (subjects)", "UAR", "accuracy"):
        table.add_column(col, justify="right")
    for row in s["per_seed"]:
        lo, hi = row["uf1_ci95"]
        table.add_row(str(row["seed"]), f"{row['uf1']:.3f}", f"[{lo:.3f}, {hi:.3f}]",
                      f"{row['uar']:.3f}", f"{row['accuracy']:.3f}")
    table.add_row("[bold]mean ± sd[/]", f"[bold]{s['uf1']['mean']:.3f} ± {s['uf1']['std']:.3f}[/]", "",
                  f"{s['uar']['mean']:.3f} ± {s['uar']['std']:.3f}",
                  f"{s['accuracy']['mean']:.3f} ± {s['accuracy']['std']:.3f}")
    console.print(table)
    if many.out is not None:
        console.print(f"Runs and seeds.json written to {many.out}.", highlight=False)


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
    ctx: typer.Context,
    cache: CacheOpt,
    out: OutOpt,
    arch: Annotated[str, typer.Option("--arch", help="Comma list of heads, e.g. lstm,bilstm.")] = D.arch,
    window: Annotated[Optional[str], typer.Option("--window", help="Comma list of window lengths, e.g. 11,13,15,17 (default: 13; 1 for the flow heads).", show_default=False)] = None,
    window_stride: Annotated[str, typer.Option("--window-stride", help="Comma list of strides.")] = str(D.window_stride),
    lr: Annotated[str, typer.Option("--lr", help="Comma list of learning rates.")] = str(D.lr),
    batch_size: Annotated[str, typer.Option("--batch-size", help="Comma list of batch sizes.")] = str(D.batch_size),
    reference: Annotated[str, typer.Option("--reference", help="Comma list of references (first, none, auto).")] = D.reference,
    preset: PresetOpt = "default",
    inner_folds: Annotated[int, typer.Option("--inner-folds", help="Subject folds of the selection inside each outer fold's training subjects.")] = 3,
    folds: FoldsOpt = D.folds,
    protocol: ProtocolOpt = D.protocol,
    labels: LabelsOpt = D.labels,
    epochs: EpochsOpt = D.epochs,
    seed: SeedOpt = D.seed,
    balance: BalanceOpt = D.balance,
    windows_per_clip: PerClipOpt = D.windows_per_clip,
    epoch_windows: EpochWindowsOpt = D.epoch_windows,
    val_subjects: ValOpt = D.val_subjects,
    patience: PatienceOpt = D.patience,
    precision: PrecisionOpt = D.precision,
    device: DeviceOpt = D.device,
) -> None:
    """Evaluate a grid of heads with nested selection: each outer fold chooses on its training
    subjects only; the headline is the outer test score of what was chosen."""
    lists = {"arch": (arch, str, "--arch"), "window": (window, int, "--window"),
             "window_stride": (window_stride, int, "--window-stride"), "lr": (lr, float, "--lr"),
             "batch_size": (batch_size, int, "--batch-size"), "reference": (reference, str, "--reference")}
    values = {k: run_guarded(_split, text, kind, opt) for k, (text, kind, opt) in lists.items()
              if text is not None}  # None: the library's default for each grid point
    grid = {k: v for k, v in values.items() if len(v) > 1}
    base = _config(ctx, preset, {**{k: v[0] for k, v in values.items()}, "epochs": epochs, "seed": seed,
                                 "balance": balance, "windows_per_clip": windows_per_clip,
                                 "epoch_windows": epoch_windows, "protocol": protocol, "folds": folds,
                                 "labels": labels, "val_subjects": val_subjects, "patience": patience,
                                 "precision": precision, "device": device})
    _warn_leak(base.protocol)
    from mer_cache.pipelines import SubjectLeakWarning, run_sweep

    seqs, features = _load_inputs(cache, base.labels)
    with warnings.catch_warnings(), _progress() as bar:
        warnings.simplefilter("ignore", SubjectLeakWarning)
        progress = _ProgressBar(bar, base.epochs)

        def on_run(name: str, i: int, total: int) -> None:
            progress.reset()
            err_console.print(f"[{i + 1}/{total}] {name}", highlight=False)

        res = run_guarded(run_sweep, seqs, grid, base=base, out=out, inner_folds=inner_folds,
                          progress=progress, on_run=on_run, fold_features=features, source=str(cache))
    _render_sweep(res, base.protocol)


def _render_sweep(res, protocol: str) -> None:
    grid = Table(title="Per-configuration TEST scores: for reading, not for choosing "
                       "(picking the best row would select on the test folds)")
    for col in ("configuration", "test UF1", "UF1 95 % (subjects)", "test UAR", "chosen by folds",
                "seconds"):
        grid.add_column(col, justify="right" if col != "configuration" else "left")
    for r in res.rows:
        lo, hi = r["test_uf1_ci95"]
        grid.add_row(r["name"], f"{r['test_uf1']:.3f}", f"[{lo:.3f}, {hi:.3f}]", f"{r['test_uar']:.3f}",
                     str(r["times_chosen"]), f"{r['seconds']:.1f}")
    console.print(grid)
    m = res.metrics
    picks = ", ".join(f"fold {c['fold']}: {c['chosen']}" for c in res.choices)
    console.print(f"Chosen on each outer fold's training subjects: {picks}", highlight=False)
    p = m["pooled"]
    console.print(f"[bold]Sweep score (nested selection, {protocol}): UF1 {p['uf1']:.3f} "
                  f"{_ci(m, 'uf1')}, UAR {p['uar']:.3f} {_ci(m, 'uar')}[/] (95 % intervals over "
                  f"subjects)", highlight=False)
    if res.out is not None:
        console.print(f"Wrote {res.out / 'metrics.json'}, {res.out / 'grid.csv'}, "
                      f"{res.out / 'selection.json'}.", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("train-head")(train_head_cmd)
    app.command("sweep")(sweep_cmd)
