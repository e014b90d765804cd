"""Train a temporal head per fold and evaluate it honestly.

One :class:`HeadConfig` (frozen, validated once) describes a run. For every fold the head is
trained on windows of the training clips for a fixed number of epochs, or with early
stopping on held-out *training* subjects (``val_subjects``); the test fold is never used to
choose anything. A test clip is predicted from all its windows (mean of logits), and scores
are computed on the predictions pooled over folds (``metrics.py``).

Speed on a CPU comes from three choices, none of which changes the model:

- all frames live in one stacked tensor, and a batch gathers its windows by index (no
  per-sample Python, no DataLoader);
- a batch projects each distinct frame once and gathers windows from the projected frames;
  gradients are identical to projecting every window, and BatchNorm statistics are taken
  over the batch's distinct frames;
- an epoch draws ``windows_per_clip`` windows per training clip (class-balanced) from the
  pool of all windows, instead of walking the whole pool (see ``windows.py``); at test time
  every window is used, and every frame is projected once.

Each fold is seeded from (seed, fold) alone, so a resumed run equals an uninterrupted one,
and deterministic algorithms are requested, so the same seed gives the same metrics.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from mer_cache.errors import ConfigError
from mer_cache.heads.data import Sequences, reference_frames
from mer_cache.heads.early_stopping import EarlyStopping
from mer_cache.heads.flow_models import FLOW_HEADS
from mer_cache.heads.folds import LEAK_MESSAGE, PROTOCOLS, Fold, make_folds
from mer_cache.heads.metrics import scores
from mer_cache.heads.models import FC, HEADS, HIDDEN, PROJECTION_DIMS, TemporalHead, create_head
from mer_cache.heads.windows import EpochSampler, check_window, class_weights, make_windows

BALANCES = ("windows", "loss", "none")
REFERENCES = ("auto", "first", "none")
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True)
class HeadConfig:
    """Everything that decides a head-training run; saved as ``config.json``.

    Defaults follow Bai & Goecke's reference code where it says something: N = 13 (best in
    Table 3), 20 epochs, batch 40, Adam with lr 2.6e-3.
    """

    arch: str = "bilstm"
    window: int = 13
    window_stride: int = 1
    epochs: int = 20
    batch_size: int = 40
    lr: float = 2.6e-3
    weight_decay: float = 0.0
    seed: int = 0
    balance: str = "windows"  # 'windows' = Aug.-II equal window counts; 'loss' = class-weighted CE
    windows_per_clip: float = 1.0  # windows drawn per training clip per epoch (windows.py)
    protocol: str = "subject-kfold"
    folds: int = 5  # ignored by loso (one fold per subject)
    labels: str = "smic4"
    val_subjects: int = 0  # training subjects held out per fold for early stopping; 0 = fixed epochs
    patience: int = 5  # epochs without a better validation UF1 before stopping
    proj_dims: tuple[int, ...] = PROJECTION_DIMS
    hidden: int = HIDDEN
    fc: int = FC
    device: str = "cpu"
    # What each clip's frames are expressed against before the head sees them. 'first':
    # subtract the clip's first frame (its neutral onset), which removes the identity that
    # dominates face embeddings and leaves the change over time that carries the class;
    # 'none': raw embeddings, as the paper's code feeds them; 'auto': 'none' for the static
    # `frame` baseline (so it stays static), 'first' for every other head.
    reference: str = "auto"
    # 'auto' = bfloat16 autocast on a CPU with native bf16 (AVX512-BF16/AMX), else float32;
    # weights, BatchNorm statistics and the loss stay float32 either way
    precision: str = "auto"

    def __post_init__(self) -> None:
        object.__setattr__(self, "proj_dims", tuple(int(d) for d in self.proj_dims))
        problems = []
        if self.arch not in HEADS:
            problems.append(f"arch '{self.arch}' is unknown (known: {', '.join(HEADS)})")
        if self.balance not in BALANCES:
            problems.append(f"balance '{self.balance}' is unknown (known: {', '.join(BALANCES)})")
        if self.protocol not in PROTOCOLS:
            problems.append(f"protocol '{self.protocol}' is unknown (known: {', '.join(PROTOCOLS)})")
        for name in ("window", "window_stride", "epochs", "batch_size", "patience", "hidden", "fc"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.arch in FLOW_HEADS and self.window != 1:
            problems.append(f"arch '{self.arch}' reads one flow map per clip: use window 1, "
                            f"not {self.window}")
        if self.arch in FLOW_HEADS and self.reference == "first":
            problems.append(f"reference 'first' would subtract a flow clip's only map from itself "
                            f"(arch '{self.arch}'): use reference auto or none")
        if self.folds < 2:
            problems.append(f"folds must be at least 2, got {self.folds}")
        if not self.lr > 0 or self.weight_decay < 0 or self.val_subjects < 0:
            problems.append("lr must be > 0, weight_decay and val_subjects >= 0 "
                            f"(got {self.lr}, {self.weight_decay}, {self.val_subjects})")
        if not self.windows_per_clip > 0:
            problems.append(f"windows_per_clip must be > 0, got {self.windows_per_clip}")
        if not self.proj_dims or min(self.proj_dims) < 1:
            problems.append(f"proj_dims must be positive widths, got {self.proj_dims}")
        if self.reference not in REFERENCES:
            problems.append(f"reference '{self.reference}' is unknown (known: {', '.join(REFERENCES)})")
        if self.precision not in PRECISIONS:
            problems.append(f"precision '{self.precision}' is unknown (known: {', '.join(PRECISIONS)})")
        if not (self.device == "cpu" or self.device.startswith("cuda")):
            problems.append(f"device '{self.device}' is not 'cpu' or 'cuda[:k]'")
        if problems:
            raise ConfigError("Invalid head-training options: " + "; ".join(problems) + ".")

    @property
    def resolved_reference(self) -> str:
        if self.reference != "auto":
            return self.reference
        # 'first' would subtract a flow clip's only map from itself
        return "none" if self.arch == "frame" or self.arch in FLOW_HEADS else "first"

    def head_kwargs(self) -> dict:
        return {"proj_dims": list(self.proj_dims), "hidden": self.hidden, "fc": self.fc}


@dataclass(frozen=True)
class ProgressEvent:
    """One step of a run, for a progress display: ``kind`` is 'fold', 'epoch', 'skip' or 'done'."""

    kind: str
    fold: int
    n_folds: int
    epoch: int = 0
    n_epochs: int = 0
    loss: float | None = None
    val_uf1: float | None = None


Progress = Callable[[ProgressEvent], None]


@dataclass
class RunResult:
    """What :func:`train_head` returns; ``metrics`` is what ``metrics.json`` holds."""

    config: HeadConfig
    metrics: dict
    predictions: list[dict]
    folds: list[dict]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    out: Path | None = None


@contextlib.contextmanager
def _deterministic():
    """Ask torch for deterministic kernels during a run, restoring the caller's setting."""
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)


def _device(config: HeadConfig) -> torch.device:
    if config.device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {config.device} was asked for, but torch sees no CUDA device "
                          f"here. Use --device cpu.")
    return torch.device(config.device)


def resolve_precision(config: HeadConfig, device: torch.device) -> str:
    """The precision a run really uses: 'auto' picks bf16 only where the CPU computes it natively."""
    if config.precision != "auto":
        return config.precision
    if device.type == "cpu" and torch.backends.mkldnn.is_available() \
            and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return "bf16"
    return "fp32"


def _autocast(device: torch.device, precision: str):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def fold_seed(seed: int, fold: int) -> int:
    """Seed of one fold, from (seed, fold) only, so folds can be rerun one at a time."""
    return int(np.random.SeedSequence([seed, fold]).generate_state(1)[0])


@torch.no_grad()
def predict_clips(head: TemporalHead, bank: torch.Tensor, lengths: np.ndarray, clips: np.ndarray,
                  *, window: int, stride: int, precision: str = "fp32", batch: int = 512) -> np.ndarray:
    """Logits of each clip: the mean of its windows' logits, shape (len(clips), C).

    In eval mode BatchNorm uses running statistics, so a frame's projection does not depend
    on its window: every distinct frame is projected once.
    """
    head.eval()
    win = make_windows(lengths, clips, window=window, stride=stride)
    uniq, inv = torch.unique(torch.from_numpy(win.frames).to(bank.device), return_inverse=True)
    with _autocast(bank.device, precision):
        z = torch.cat([head.project(bank[uniq[i:i + 4096]]) for i in range(0, len(uniq), 4096)])  # (U, P)
        logits = torch.cat([head.decode(z[inv[i:i + batch]]) for i in range(0, len(win), batch)])  # (W, C)
    logits = logits.float()
    local = np.zeros(int(clips.max()) + 1, dtype=np.int64)
    local[clips] = np.arange(len(clips))
    where = torch.from_numpy(local[win.clip]).to(bank.device)  # (W,) row of each window's clip
    sums = torch.zeros(len(clips), logits.shape[1], device=bank.device).index_add_(0, where, logits)
    counts = torch.bincount(where, minlength=len(clips)).clamp(min=1).unsqueeze(1)
    return (sums / counts).cpu().numpy()  # (n, C)


def predict_sequences(head: TemporalHead, embeddings: list[np.ndarray], *, window: int, stride: int = 1,
                      precision: str = "fp32", device: str = "cpu",
                      reference: str = "none") -> np.ndarray:
    """Logits (n, C) of new clips given as (T_i, D) arrays: the mean over each clip's windows.

    Use the ``window``, ``window_stride``, ``precision`` and resolved ``reference`` stored
    with the head's checkpoint.
    """
    lengths = np.array([len(e) for e in embeddings], dtype=np.int64)
    embeddings = reference_frames(embeddings, reference)
    bank = torch.from_numpy(np.concatenate(embeddings).astype(np.float32, copy=False)).to(device)
    return predict_clips(head.to(device), bank, lengths, np.arange(len(embeddings)), window=window,
                         stride=stride, precision=precision)


def _train_fold(bank: torch.Tensor, seqs: Sequences, fold: Fold, config: HeadConfig, *,
                precision: str, n_folds: int, progress: Progress | None) -> tuple[TemporalHead, dict]:
    """Train one head on a fold's training clips; returns the head and the fold's record."""
    seed = fold_seed(config.seed, fold.index)
    torch.manual_seed(seed)
    n_classes, lengths, device = len(seqs.classes), seqs.lengths, bank.device
    head = create_head(config.arch, in_dim=seqs.dim, n_classes=n_classes, proj_dims=config.proj_dims,
                       hidden=config.hidden, fc=config.fc).to(device)
    win = make_windows(lengths, fold.train, window=config.window, stride=config.window_stride)
    win_y = seqs.y[win.clip]
    per_epoch = max(1, round(config.windows_per_clip * len(fold.train)))
    sampler = EpochSampler(win_y, n_classes, per_epoch=per_epoch, balance=config.balance, seed=seed)
    weight = (torch.from_numpy(class_weights(win_y, n_classes)).to(device)
              if config.balance == "loss" else None)
    frames = torch.from_numpy(win.frames).to(device)  # (W, N) rows into the bank
    targets = torch.from_numpy(win_y).to(device)  # (W,)
    # fused Adam: one kernel per parameter tensor instead of a dozen elementwise ops
    opt = torch.optim.Adam(head.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=True)
    losses, val_uf1s = [], []
    stopper = EarlyStopping(patience=config.patience)
    for epoch in range(1, config.epochs + 1):
        head.train()
        ids = torch.from_numpy(sampler.next_epoch()).to(device)
        total, n_seen = 0.0, 0
        for start in range(0, len(ids), config.batch_size):
            w = ids[start:start + config.batch_size]  # (B,)
            uniq, inv = torch.unique(frames[w], return_inverse=True)  # (U,), (B, N)
            if len(uniq) < 2:  # BatchNorm cannot take statistics of a single frame
                continue
            with _autocast(device, precision):
                z = head.project(bank[uniq])  # (U, P)
                logits = head.decode(z[inv])  # (B, N, P) -> (B, C)
            loss = F.cross_entropy(logits.float(), targets[w], weight=weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(w)
            n_seen += len(w)
        losses.append(round(total / max(n_seen, 1), 6))
        val_uf1 = None
        if len(fold.val):
            logits = predict_clips(head, bank, lengths, fold.val, window=config.window,
                                   stride=config.window_stride, precision=precision)
            val_uf1 = scores(seqs.y[fold.val], logits.argmax(1), n_classes=n_classes)["uf1"]
            val_uf1s.append(val_uf1)
        stop = val_uf1 is not None and stopper.update(epoch, val_uf1, head)
        if progress:
            progress(ProgressEvent("epoch", fold.index, n_folds, epoch, config.epochs,
                                   losses[-1], val_uf1))
        if stop:
            break
    stopper.restore(head)  # early stopping: keep the epoch the validation subjects chose
    record = {
        "fold": fold.index, "seed": seed, "precision": precision,
        "n_train_clips": int(len(fold.train)), "n_train_windows": int(len(win)),
        "windows_per_epoch": int(len(ids)),
        "n_padded_train_clips": win.n_padded,
        "epochs_run": len(losses), "best_epoch": stopper.best_epoch if len(fold.val) else len(losses),
        "loss_history": losses, "val_uf1_history": val_uf1s,
    }
    return head, record


def _check_features(seqs: Sequences, config: HeadConfig) -> None:
    """Flow heads train on flow caches only, sequence heads on embedding caches only."""
    is_flow = (seqs.fingerprint or {}).get("features") == "flow"
    if is_flow and config.arch not in FLOW_HEADS:
        raise ConfigError(f"These clips come from a flow cache (one map per clip); arch "
                          f"'{config.arch}' needs an embedding cache. Use --arch "
                          f"{' or '.join(FLOW_HEADS)}, or --cache an embedding cache.")
    if config.arch in FLOW_HEADS and not is_flow:
        raise ConfigError(f"arch '{config.arch}' reads optical-flow maps; these clips come from "
                          f"an embedding cache. Make a flow cache with `mer-cache extract "
                          f"--features flow` and pass it as --cache.")


def train_head(seqs: Sequences, config: HeadConfig, *, out: Path | None = None,
               progress: Progress | None = None, fold_features=None) -> RunResult:
    """Train and evaluate a head under a protocol; write the run directory if ``out`` is given.

    Parameters
    ----------
    seqs : Sequences
        Labelled clips in memory (see :func:`mer_cache.heads.data.load_sequences`).
    config : HeadConfig
    out : Path, optional
        Run directory. Completed folds found there (same configuration) are kept, not rerun.
    progress : callable, optional
        Receives a :class:`ProgressEvent` per fold and epoch.
    fold_features : FoldFeatures, optional
        Per-fold features of a fold-cache folder (``mer_cache.finetune.load_fold_features``):
        fold k trains and tests on the features of fold k's fine-tuned trunk. The folds are
        checked against the fine-tuning run's first (the leakage guard). ``seqs`` must hold
        the same clips (normally ``fold_features.sequences[0]``).

    Raises
    ------
    ConfigError
        If the labels differ from the sequences' scheme, the window exceeds every clip, or
        ``out`` holds a run with another configuration.
    ProtocolError
        If the folds cannot be made (see :func:`mer_cache.heads.folds.make_folds`), or, with
        ``fold_features``, if a fold's test subjects were seen by the trunk that produced its
        features or the fold assignment differs from the fine-tuning run's.
    """
    from mer_cache.heads.runs import RunDir  # runs imports this module's records

    if config.labels != seqs.scheme:
        raise ConfigError(f"The run asks for labels '{config.labels}' but the sequences were "
                          f"labelled with '{seqs.scheme}'. Load them with the same scheme.")
    _check_features(seqs, config)
    check_window(seqs.lengths, window=config.window)
    device = _device(config)
    precision = resolve_precision(config, device)
    notes = list(seqs.notes)
    if config.precision == "auto":
        notes.append(f"precision auto -> {precision}")
    reference = config.resolved_reference
    notes.append(f"reference {config.reference} -> {reference}" + (
        " (each clip's first frame is subtracted from its frames)" if reference == "first" else
        " (raw features, as cached)"))
    folds = make_folds(seqs.y, seqs.groups, protocol=config.protocol, folds=config.folds,
                       seed=config.seed, classes=seqs.classes, val_subjects=config.val_subjects)
    if fold_features is not None:
        # Exp-I: fold k's trunk never saw fold k's test subjects; refuse before any training
        fold_features.check(folds, seqs)
        notes.append(f"fold k uses the features of fold k's fine-tuned trunk (fine-tuning run "
                     f"{fold_features.caches.meta.get('run')}, fold caches "
                     f"{fold_features.caches.path})")
    if config.protocol == "clip-kfold":
        notes.append("WARNING: " + LEAK_MESSAGE)
    n_short = int(np.sum(seqs.lengths < config.window))
    if n_short:
        notes.append(f"{n_short} of {len(seqs)} clips are shorter than the {config.window}-frame "
                     f"window and were padded by repeating their edge frames")
    run = RunDir(out, config=config, seqs=seqs, notes=notes,
                 fold_features=None if fold_features is None else fold_features.identity())
    bank = (torch.from_numpy(np.concatenate(reference_frames(seqs.embeddings, reference)))
            .to(device)  # (sum T, D)
            if fold_features is None else None)
    records = []
    with _deterministic():
        for fold in folds:
            test_ids = [seqs.clip_ids[i] for i in fold.test]
            done = run.completed_fold(fold.index, test_ids)
            if done is not None:
                records.append(done)
                if progress:
                    progress(ProgressEvent("skip", fold.index, len(folds)))
                continue
            if progress:
                progress(ProgressEvent("fold", fold.index, len(folds), 0, config.epochs))
            t0 = time.perf_counter()
            fbank = bank if fold_features is None else torch.from_numpy(np.concatenate(
                reference_frames(fold_features.embeddings(fold.index), reference))).to(device)
            head, record = _train_fold(fbank, seqs, fold, config, precision=precision,
                                       n_folds=len(folds), progress=progress)
            logits = predict_clips(head, fbank, seqs.lengths, fold.test, window=config.window,
                                   stride=config.window_stride, precision=precision)
            if fold_features is not None:
                fm = fold_features.caches.fold_meta[fold.index]
                record["features"] = {"cache": fold_features.caches.cache_path(fold.index).name,
                                      "checkpoint": fm.get("checkpoint"),
                                      "checkpoint_sha256": fm.get("checkpoint_sha256")}
            groups = seqs.groups
            record.update({
                "test_clips": fold.test.tolist(), "test_clip_ids": test_ids,
                "train_subjects": sorted(set(groups[fold.train].tolist())),
                "val_subjects": sorted(set(groups[fold.val].tolist())),
                "test_subjects": sorted(set(groups[fold.test].tolist())),
                "logits": [[float(v) for v in row] for row in logits],
                "seconds": round(time.perf_counter() - t0, 3),
            })
            run.save_fold(record, head)
            records.append(record)
            if progress:
                progress(ProgressEvent("done", fold.index, len(folds)))
    return run.finish(records)
