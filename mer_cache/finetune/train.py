"""Fine-tune one trunk per fold on that fold's training subjects (the paper's Exp-I).

For every fold: a fresh copy of the base trunk, spatial layers before l_s frozen, l_s onward
and the fc1 -> fc2 -> fc3 classifier trained on the training subjects' frames with Aug.-I
(class-balanced copies, flip, rotation); then every frame of the test subjects is classified.
Nothing is chosen on the test fold: training runs a fixed number of epochs, or stops early on
validation subjects taken from the training part (``val_subjects``). Scores are frame-level
accuracy, UF1 and UAR per fold and pooled over folds (the paper's Exp-I row, 30.2 %).

A run folder is resumable: finished folds (record + matching checkpoint) are kept; a rerun
with other settings is refused, naming what differs.
"""

from __future__ import annotations

import json
import time
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from mer_cache.cache.fingerprint import catalogue_sha256
from mer_cache.catalogue.clip import Clip
from mer_cache.errors import ConfigError
from mer_cache.finetune.assignment import ClipFolds, clip_folds
from mer_cache.finetune.augment import FlipRotate, balanced_epoch, class_multipliers
from mer_cache.finetune.config import FinetuneConfig
from mer_cache.finetune.frame_bank import FrameBank, load_frame_bank
from mer_cache.finetune.model import FinetuneModel
from mer_cache.finetune.saved import (
    FOLD_META_KIND, checkpoint_path, record_path, save_fold, write_json,
)
from mer_cache.heads.early_stopping import EarlyStopping
from mer_cache.heads.folds import Fold
from mer_cache.heads.training import ProgressEvent
from mer_cache.heads.metrics import scores, summarize
from mer_cache.trunks import create_trunk
from mer_cache.trunks.base import Trunk
from mer_cache.trunks.weights.hashing import sha256_file

RUN_FILE = "run.json"


# Fine-tuning reports the same fold/epoch events as head training.
FinetuneEvent = ProgressEvent
Progress = Callable[[FinetuneEvent], None]


@dataclass
class FinetuneResult:
    """What :func:`finetune` returns; ``metrics`` is what ``metrics.json`` holds."""

    out: Path
    config: FinetuneConfig  # with ``from_layer`` resolved
    metrics: dict
    folds: list[dict]
    skipped: list[int] = field(default_factory=list)
    layer_ranking: list[dict] | None = None  # when from_layer was 'auto'
    seconds: float = 0.0


def _fold_seed(seed: int, k: int) -> int:
    # each fold seeded from (seed, fold) alone, so a resumed run equals an uninterrupted one
    return int(np.random.SeedSequence([seed, k]).generate_state(1)[0])


def _autocast(device: torch.device, amp: str):
    if device.type != "cuda" or amp == "off":
        return nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


def _base_trunk(config: FinetuneConfig) -> Trunk:
    weights = config.weights
    return create_trunk(config.trunk, layer=config.layer, resize_mode=config.resize_mode,  # type: ignore[arg-type]
                        weights=Path(weights) if weights not in (None, "random") else weights)


def _predict(model: FinetuneModel, bank: FrameBank, rows: np.ndarray, *, device: torch.device,
             amp: str, batch_size: int) -> np.ndarray:
    model.eval()
    out = []
    with torch.inference_mode(), _autocast(device, amp):
        for i in range(0, len(rows), batch_size):
            x = bank.frames[rows[i:i + batch_size]].to(device)  # (B, C, H, W) uint8
            out.append(model(x).float().argmax(1).cpu().numpy())
    return np.concatenate(out) if out else np.empty(0, np.int64)


def _train_fold(bank: FrameBank, cf: ClipFolds, fold: Fold, frame_y: np.ndarray,
                config: FinetuneConfig, *, n_folds: int, progress: Progress | None):
    seed = _fold_seed(config.seed, fold.index)
    torch.manual_seed(seed)
    device = torch.device(config.device)
    model = FinetuneModel(_base_trunk(config), from_layer=config.from_layer,
                          n_classes=len(cf.classes), fc_dims=config.fc_dims,
                          dropout=config.dropout).to(device)
    if device.type == "cuda":
        model.trunk.net.to(memory_format=torch.channels_last)  # faster convs with AMP on a GPU
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and config.amp == "fp16")
    augment = FlipRotate(flip=config.flip, rotation_deg=config.rotation_deg,
                         generator=torch.Generator().manual_seed(seed))
    rng = np.random.default_rng(seed)
    train_rows = bank.rows_of(cf.keep[fold.train])
    val_rows = bank.rows_of(cf.keep[fold.val])
    losses, val_uf1s = [], []
    stopper = EarlyStopping(patience=config.patience)
    for epoch in range(1, config.epochs + 1):
        model.train()
        order = train_rows[balanced_epoch(frame_y[train_rows], len(cf.classes),
                                          target=config.frames_per_class, rng=rng)]
        total, n = 0.0, 0
        for i in range(0, len(order), config.batch_size):
            rows = order[i:i + config.batch_size]
            if len(rows) < 2:
                continue  # BatchNorm in the classifier needs two samples
            x = bank.frames[rows].to(device, non_blocking=True)  # (B, C, H, W) uint8
            y = torch.from_numpy(frame_y[rows]).to(device)
            with _autocast(device, config.amp):
                loss = F.cross_entropy(model(x, augment=augment).float(), y)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            total, n = total + loss.item() * len(rows), n + len(rows)
        losses.append(round(total / max(n, 1), 6))
        val_uf1 = None
        if len(val_rows):
            pred = _predict(model, bank, val_rows, device=device, amp=config.amp,
                            batch_size=config.eval_batch_size)
            val_uf1 = scores(frame_y[val_rows], pred, n_classes=len(cf.classes))["uf1"]
            val_uf1s.append(val_uf1)
        stop = val_uf1 is not None and stopper.update(epoch, val_uf1, model)
        if progress:
            progress(FinetuneEvent("epoch", fold.index, n_folds, epoch, config.epochs,
                                   losses[-1], val_uf1))
        if stop:
            break
    stopper.restore(model)  # the epoch chosen on validation subjects, never on test
    record = {"fold": fold.index, "epochs_run": len(losses),
              "best_epoch": stopper.best_epoch if len(val_rows) else len(losses),
              "loss_history": losses, "val_uf1_history": val_uf1s,
              "n_train_frames": int(len(train_rows)), "n_val_frames": int(len(val_rows)),
              "class_multipliers": {cf.classes[c]: round(m, 4) for c, m in class_multipliers(
                  frame_y[train_rows], len(cf.classes), target=config.frames_per_class).items()}}
    return model, record


def _subjects(cf: ClipFolds, positions: np.ndarray) -> list[str]:
    return sorted(set(cf.groups[positions].tolist()))


def _check_run(out: Path, run: dict) -> None:
    path = out / RUN_FILE
    if not path.is_file():
        return
    old = json.loads(path.read_text())
    diffs = []
    for section in ("config", "data", "assignment_sha256", "base_weights_sha256"):
        a, b = old.get(section), run.get(section)
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += [f"{section}.{k}: run folder has {a.get(k)!r}, this run has {b.get(k)!r}"
                      for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        elif a != b:
            diffs.append(f"{section}: run folder has {str(a)[:16]}..., this run has {str(b)[:16]}...")
    if diffs:
        raise ConfigError(f"{out} holds a fine-tuning run with other settings: {'; '.join(diffs)}. "
                          "Rerun with the same options to resume it, or choose another --out.")


def _done_record(out: Path, k: int) -> dict | None:
    rec, ckpt = record_path(out, k), checkpoint_path(out, k)
    if not (rec.is_file() and ckpt.is_file()):
        return None
    record = json.loads(rec.read_text())
    # really open the output before skipping: a checkpoint rewritten since does not count
    return record if record.get("checkpoint_sha256") == sha256_file(ckpt) else None


def finetune(clips: list[Clip], *, config: FinetuneConfig, out: Path | str,
             regions=None, progress: Progress | None = None) -> FinetuneResult:
    """Fine-tune and evaluate one trunk per fold; write ``fold{k}.pt`` and ``metrics.json``.

    Parameters
    ----------
    clips : list of Clip
        The catalogue (frame folders). Clips the label scheme drops are left out.
    config : FinetuneConfig
    out : Path
        Run folder; finished folds found there (same settings) are kept.
    regions : RegionSource, optional
        Moving-face regions for ``from_layer='auto'`` (see :mod:`mer_cache.gradcam.focus`);
        default: onset-to-apex frame differences.
    progress : callable, optional
        Receives a :class:`FinetuneEvent` per fold and epoch.

    Raises
    ------
    ConfigError
        If ``out`` holds a run with other settings.
    ProtocolError, LabelError, TrunkError
        If the folds cannot be made, the labels fit no clip, or l_s is not a spatial layer.
    """
    t_start = time.perf_counter()
    out = Path(out)
    cf = clip_folds(clips, labels=config.labels, protocol=config.protocol, folds=config.folds,
                    seed=config.seed, val_subjects=config.val_subjects)
    kept = [clips[i] for i in cf.keep]
    base = _base_trunk(config)
    run = {"config": config.identity(), "assignment_sha256": cf.assignment_sha256,
           "base_weights_sha256": base.weights_sha256,
           "data": {"catalogue_sha256": catalogue_sha256(kept), "n_clips": len(kept),
                    "classes": list(cf.classes)}}
    _check_run(out, run)
    ranking, resolved = None, config
    old_run = json.loads((out / RUN_FILE).read_text()) if (out / RUN_FILE).is_file() else {}
    if config.from_layer == "auto":
        if old_run.get("from_layer"):
            ranking, layer = old_run.get("layer_ranking"), old_run["from_layer"]
        else:
            from mer_cache.gradcam.suggest import suggest_layer  # Grad-CAM focus picks l_s

            ranking = suggest_layer(kept, trunk=base, regions=regions, seed=config.seed)
            layer = ranking[0]["layer"]
        resolved = replace(config, from_layer=layer)
    else:
        from mer_cache.finetune.model import split_layers

        split_layers(base, config.from_layer)  # unknown layer: fail before decoding frames
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / RUN_FILE, {**run, "from_layer": resolved.from_layer, "layer_ranking": ranking,
                                "assignment": cf.assignment, "runtime": config.to_dict()})
    bank = load_frame_bank(kept, base.preprocessing, workers=config.workers)
    frame_y = cf.y[bank.clip_of_frame]  # (N,) class of every frame
    records, skipped = [], []
    n_folds = len(cf.folds)
    for fold in cf.folds:
        done = _done_record(out, fold.index)
        if done is not None:
            records.append(done)
            skipped.append(fold.index)
            if progress:
                progress(FinetuneEvent("skip", fold.index, n_folds))
            continue
        if progress:
            progress(FinetuneEvent("fold", fold.index, n_folds, 0, resolved.epochs))
        t0 = time.perf_counter()
        model, record = _train_fold(bank, cf, fold, frame_y, resolved, n_folds=n_folds,
                                    progress=progress)
        test_rows = bank.rows_of(cf.keep[fold.test])
        pred = _predict(model, bank, test_rows, device=torch.device(resolved.device),
                        amp=resolved.amp, batch_size=resolved.eval_batch_size)
        meta = {"kind": FOLD_META_KIND, "fold": fold.index, "n_folds": n_folds,
                "protocol": resolved.protocol, "folds": resolved.folds, "seed": resolved.seed,
                "labels": resolved.labels, "classes": list(cf.classes),
                "trunk": base.name, "layer": base.layer, "from_layer": resolved.from_layer,
                "frozen_layers": model.frozen_layers, "trainable_layers": model.trainable_layers,
                "base_weights_sha256": base.weights_sha256,
                "base_weights_format": base.weights_format,
                "train_subjects": _subjects(cf, fold.train), "val_subjects": _subjects(cf, fold.val),
                "test_subjects": _subjects(cf, fold.test),
                "assignment": cf.assignment, "assignment_sha256": cf.assignment_sha256,
                "catalogue_sha256": run["data"]["catalogue_sha256"], "config": resolved.identity()}
        digest = save_fold(model, out, fold.index, meta=meta, classes=cf.classes,
                           fc_dims=resolved.fc_dims, dropout=resolved.dropout)
        record.update({k: meta[k] for k in ("train_subjects", "val_subjects", "test_subjects")})
        record.update({"checkpoint": checkpoint_path(out, fold.index).name,
                       "checkpoint_sha256": digest,
                       "test": scores(frame_y[test_rows], pred, n_classes=len(cf.classes)),
                       "y_true": frame_y[test_rows].tolist(), "y_pred": pred.tolist(),
                       "seconds": round(time.perf_counter() - t0, 3)})
        write_json(record_path(out, fold.index), record)
        records.append(record)
        if progress:
            progress(FinetuneEvent("done", fold.index, n_folds))
    frame_dataset = np.array([c.dataset for c in kept])[bank.clip_of_frame]  # (N,)
    datasets = [frame_dataset[bank.rows_of(cf.keep[cf.folds[r["fold"]].test])] for r in records]
    metrics = _pooled(records, datasets, cf.classes)
    write_json(out / "metrics.json", metrics)
    return FinetuneResult(out=out, config=resolved, metrics=metrics, folds=records,
                          skipped=skipped, layer_ranking=ranking,
                          seconds=time.perf_counter() - t_start)


def _pooled(records: list[dict], datasets: list[np.ndarray], classes: tuple[str, ...]) -> dict:
    """Frame-level scores pooled over folds (MEGC style), per fold, and confusion matrices."""
    y_true = np.concatenate([np.asarray(r["y_true"], np.int64) for r in records])
    y_pred = np.concatenate([np.asarray(r["y_pred"], np.int64) for r in records])
    fold = np.concatenate([np.full(len(r["y_true"]), r["fold"]) for r in records])
    metrics = summarize(y_true, y_pred, fold, np.concatenate(datasets), classes=classes)
    metrics["level"] = "frame"
    return metrics
