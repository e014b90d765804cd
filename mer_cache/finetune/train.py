"""Fine-tune one trunk on one fold's training subjects (the mechanism of the paper's Exp-I).

A fresh copy of the base trunk, spatial layers before l_s frozen, l_s onward and the
fc1 -> fc2 -> fc3 classifier trained on the training subjects' frames with Aug.-I
(class-balanced copies, flip, rotation). Epochs run through the shared loop
(:func:`mer_cache.protocol.epochs.fit_epochs`): a fixed count, or early stopping on the
fold's validation subjects (training subjects set aside), never on its test subjects.
The run folder, resume rules and the choice of l_s are the job API's
(:mod:`mer_cache.pipelines.finetune_run`).
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mer_cache.finetune.augment import FlipRotate, balanced_epoch, class_multipliers
from mer_cache.finetune.config import FinetuneConfig
from mer_cache.finetune.frame_bank import FrameBank
from mer_cache.finetune.model import FinetuneModel
from mer_cache.protocol.assignment import ClipFolds
from mer_cache.protocol.epochs import Progress, ProgressEvent, fit_epochs, validation_scorer
from mer_cache.protocol.folds import Fold
from mer_cache.trunks import create_trunk
from mer_cache.trunks.base import Trunk


def fold_seed(seed: int, k: int) -> int:
    # each fold seeded from (seed, fold) alone, so a resumed run equals an uninterrupted one
    return int(np.random.SeedSequence([seed, k]).generate_state(1)[0])


def _autocast(device: torch.device, amp: str):
    if device.type != "cuda" or amp == "off":
        return nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


def base_trunk(config: FinetuneConfig) -> Trunk:
    weights = config.weights
    return create_trunk(config.trunk, layer=config.layer, resize_mode=config.resize_mode,  # type: ignore[arg-type]
                        weights=Path(weights) if weights not in (None, "random") else weights)


def predict_frames(model: FinetuneModel, bank: FrameBank, rows: np.ndarray, *, device: torch.device,
             amp: str, batch_size: int) -> np.ndarray:
    model.eval()
    out = []
    with torch.inference_mode(), _autocast(device, amp):
        for i in range(0, len(rows), batch_size):
            x = bank.frames[rows[i:i + batch_size]].to(device)  # (B, C, H, W) uint8
            out.append(model(x).float().argmax(1).cpu().numpy())
    return np.concatenate(out) if out else np.empty(0, np.int64)


def train_fold(bank: FrameBank, cf: ClipFolds, fold: Fold, frame_y: np.ndarray,
                config: FinetuneConfig, *, n_folds: int, progress: Progress | None):
    seed = fold_seed(config.seed, fold.index)
    torch.manual_seed(seed)
    device = torch.device(config.device)
    model = FinetuneModel(base_trunk(config), from_layer=config.from_layer,
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
    train_rows = bank.rows_of(fold.train)  # positions into the kept clips, as the bank counts
    val_rows = bank.rows_of(fold.val)

    def train_epoch(epoch: int) -> float:
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
        return total / max(n, 1)

    # frame-level validation: every frame of the validation clips, scored as frames
    val_frame_fold = Fold(index=fold.index, train=fold.train, test=np.empty(0, np.int64),
                          val=np.arange(len(val_rows)))

    def predict_val(positions: np.ndarray) -> np.ndarray:
        return predict_frames(model, bank, val_rows[positions], device=device, amp=config.amp,
                              batch_size=config.eval_batch_size)

    def on_epoch(epoch: int, loss: float, val_uf1: float | None) -> None:
        if progress:
            progress(ProgressEvent("epoch", fold.index, n_folds, epoch, config.epochs, loss, val_uf1))

    history = fit_epochs(model, epochs=config.epochs, patience=config.patience, train_epoch=train_epoch,
                         validate=validation_scorer(val_frame_fold, frame_y[val_rows],
                                                    n_classes=len(cf.classes), predict=predict_val),
                         on_epoch=on_epoch)
    record = {"fold": fold.index, "epochs_run": history.epochs_run,
              "best_epoch": history.best_epoch,
              "loss_history": history.losses, "val_uf1_history": history.val_uf1,
              "n_train_frames": int(len(train_rows)), "n_val_frames": int(len(val_rows)),
              "class_multipliers": {cf.classes[c]: round(m, 4) for c, m in class_multipliers(
                  frame_y[train_rows], len(cf.classes), target=config.frames_per_class).items()}}
    return model, record
