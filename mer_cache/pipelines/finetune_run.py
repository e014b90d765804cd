"""The Exp-I job: one trunk fine-tuned per fold, in a resumable run folder.

For every fold of the run's protocol, a trunk is fine-tuned on that fold's training subjects
(:func:`mer_cache.finetune.train.train_fold`), saved as ``fold{k}.pt`` with the subjects it
saw, and every frame of the fold's test subjects is classified. With ``from_layer='auto'``
each fold chooses l_s by Grad-CAM focus on its own training subjects
(:func:`mer_cache.protocol.selection.selection_positions`), never on test subjects. Scores are
frame-level accuracy, UF1 and UAR pooled over folds (the paper's Exp-I row, 30.2 %).

With ``face="align"`` (or ``auto`` on a raw layout) each clip is aligned once per run, before
any fold trains (:mod:`mer_cache.faces`: one transform per clip from its first frames), and
every frame the trunk sees, in training, testing and the Grad-CAM choice of l_s, is its clip's
aligned crop. The transforms are kept in ``faces.json``, so a resumed run warps identically; a
clip with no usable face is left out, with its reason, and the others train.

This module owns the run folder (``run.json``, ``faces.json``, ``fold{k}.pt``,
``fold{k}.head.pt``, ``fold{k}.json``, ``metrics.json``): finished folds (record + matching
checkpoint) are kept; a rerun with other settings is refused, naming what differs.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from mer_cache.cache.fingerprint import catalogue_sha256
from mer_cache.catalogue.clip import Clip
from mer_cache.errors import ConfigError, DatasetError
from mer_cache.faces import ClipAlignment, FaceStage
from mer_cache.faces.defaults import resolve_face_mode
from mer_cache.faces.stage import StoredFaceStage
from mer_cache.finetune.config import FinetuneConfig
from mer_cache.finetune.frame_bank import load_frame_bank
from mer_cache.finetune.model import split_layers
from mer_cache.finetune.saved import (
    FOLD_META_KIND, checkpoint_path, record_path, save_face_alignments, save_fold,
    stored_face_alignments, write_json,
)
from mer_cache.finetune.train import base_trunk, predict_frames, train_fold
from mer_cache.gradcam.focus import RegionSource, regions_for_clips
from mer_cache.gradcam.suggest import suggest_layer
from mer_cache.protocol.assignment import ClipFolds, clip_folds
from mer_cache.protocol.epochs import Progress, ProgressEvent
from mer_cache.protocol.metrics import scores, summarize
from mer_cache.protocol.selection import selection_positions
from mer_cache.trunks.weights.hashing import sha256_file

RUN_FILE = "run.json"

# Fine-tuning reports the same fold/epoch events as head training.
FinetuneEvent = ProgressEvent


@dataclass
class FinetuneResult:
    """What :func:`finetune` returns; ``metrics`` is what ``metrics.json`` holds."""

    out: Path
    config: FinetuneConfig
    metrics: dict
    folds: list[dict]
    skipped: list[int] = field(default_factory=list)
    # with from_layer 'auto': fold -> Grad-CAM ranking on that fold's training subjects
    layer_rankings: dict[int, list[dict]] = field(default_factory=dict)
    seconds: float = 0.0
    # clip id -> why it was left out (no usable face in its first frames; face="align" only)
    failed: dict[str, str] = field(default_factory=dict)
    # with from_layer 'auto': the kind of moving regions l_s was chosen against (synth, boxes, diff)
    regions: str | None = None


def _subjects(cf: ClipFolds, positions: np.ndarray) -> list[str]:
    return sorted(set(cf.groups[positions].tolist()))


def _check_run(out: Path, run: dict) -> None:
    path = out / RUN_FILE
    if not path.is_file():
        return
    old = json.loads(path.read_text())
    # run folders written before fine-tuning had a face stage trained on whole frames
    old.setdefault("face", None)
    old.get("config", {}).setdefault("face", "none")
    # run folders written before the regions were recorded cannot tell: they are not refused
    old.setdefault("regions", run.get("regions"))
    diffs = _regions_diff(old.get("regions"), run.get("regions"))
    for section in ("config", "data", "assignment_sha256", "base_weights_sha256", "face"):
        a, b = old.get(section), run.get(section)
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += [f"{section}.{k}: run folder has {a.get(k)!r}, this run has {b.get(k)!r}"
                      for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        elif a != b:
            diffs.append(f"{section}: run folder has {str(a)[:16]}..., this run has {str(b)[:16]}...")
    if diffs:
        raise ConfigError(f"{out} holds a fine-tuning run with other settings: {'; '.join(diffs)}. "
                          "Rerun with the same options to resume it, or choose another --out.")


def _regions_diff(old: dict | None, new: dict | None) -> list[str]:
    """Why a run folder's moving regions (from_layer 'auto') differ from this run's, if they do."""
    if old == new or old is None or new is None:  # None: l_s fixed, the regions are not used
        return []
    kind = old["kind"]
    this = f"other {kind} boxes" if kind == new["kind"] else f"{new['kind']} regions"
    hint = "the same boxes file" if kind == "boxes" else kind
    return [f"regions: its folds choose l_s by Grad-CAM focus on {kind} regions and this run "
            f"on {this}, so one run's folds would be chosen against different regions (pass "
            f"--regions {hint} to resume it)"]


def _done_record(out: Path, k: int) -> dict | None:
    rec, ckpt = record_path(out, k), checkpoint_path(out, k)
    if not (rec.is_file() and ckpt.is_file()):
        return None
    record = json.loads(rec.read_text())
    # really open the output before skipping: a checkpoint rewritten since does not count
    return record if record.get("checkpoint_sha256") == sha256_file(ckpt) else None


def _align(out: Path, clips: list[Clip], stage: FaceStage) -> list[ClipAlignment]:
    """One alignment per clip: the run folder's (a resumed run), detection for the rest."""
    identity = stage.identity()
    known = stored_face_alignments(out, clips, identity)
    complete = len(known) == len(clips)
    column = StoredFaceStage(stage.config, known, weights=stage.weights).table_column(clips)
    if not complete:
        save_face_alignments(out, clips, column, identity)
    return stage.alignments(column)


def finetune(clips: list[Clip], *, config: FinetuneConfig, out: Path | str,
             regions: RegionSource | str = "auto", progress: Progress | None = None
             ) -> FinetuneResult:
    """Fine-tune and evaluate one trunk per fold; write ``fold{k}.pt`` and ``metrics.json``.

    Parameters
    ----------
    clips : list of Clip
        The catalogue (frame folders). Clips the label scheme drops are left out.
    config : FinetuneConfig
    out : Path
        Run folder; finished folds found there (same settings) are kept.
    regions : RegionSource or {"auto", "synth", "diff"} or str
        Moving-face regions for ``from_layer='auto'``, resolved from the clips
        (:func:`mer_cache.gradcam.focus.regions_for_clips`): ``auto`` takes the ground truth
        (``synth.json``) of clips from ``mer-cache synth``, else onset-to-apex frame
        differences. Every fold chooses its own l_s on its training subjects (recorded in its
        checkpoint and record); the regions are part of the run's identity (``run.json``),
        so a resume against other regions is refused.
    progress : callable, optional
        Receives a :class:`FinetuneEvent` per fold and epoch.

    Returns
    -------
    FinetuneResult
        Its ``config`` has ``face`` resolved (``align`` or ``none``); ``failed`` names the
        clips left out for want of a usable face, with the reason.

    Raises
    ------
    ConfigError
        If ``out`` holds a run with other settings (moving regions included).
    DatasetError
        If no clip, or no training clip of some fold, has a usable face (``face="align"``).
    ProtocolError, LabelError, TrunkError
        If the folds cannot be made, the labels fit no clip, or l_s is not a spatial layer.
    """
    t_start = time.perf_counter()
    out = Path(out)
    cf = clip_folds(clips, labels=config.labels, protocol=config.protocol, folds=config.folds,
                    seed=config.seed, val_subjects=config.val_subjects)
    kept = [clips[i] for i in cf.keep]
    config = replace(config, face=resolve_face_mode(config.face, kept))
    stage = FaceStage() if config.face == "align" else None
    # resolved once from every kept clip, so all folds score against the same regions
    source = regions_for_clips(regions, kept) if config.from_layer == "auto" else None
    face = stage.identity() if stage is not None else None
    base = base_trunk(config)
    run = {"config": config.identity(), "assignment_sha256": cf.assignment_sha256,
           "base_weights_sha256": base.weights_sha256, "face": face,
           "regions": source.identity() if source is not None else None,
           "data": {"catalogue_sha256": catalogue_sha256(kept), "n_clips": len(kept),
                    "classes": list(cf.classes)}}
    _check_run(out, run)
    if config.from_layer != "auto":
        split_layers(base, config.from_layer)  # unknown layer: fail before decoding frames
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / RUN_FILE, {**run, "from_layer": config.from_layer,
                                "assignment": cf.assignment, "runtime": config.to_dict()})
    alignments = _align(out, kept, stage) if stage is not None else None
    failed = {c.clip_id: a.error for c, a in zip(kept, alignments or []) if a.error}
    bank = load_frame_bank(kept, base.preprocessing, workers=config.workers, alignments=alignments)
    _check_faces(cf, bank.clip_of_frame, failed)
    # Grad-CAM's choice of l_s scores the same aligned crops, with the same transforms
    cam_face = None if stage is None else StoredFaceStage(stage.config, {
        c.clip_id: a.to_json() for c, a in zip(kept, alignments)}, weights=stage.weights)
    frame_y = cf.y[bank.clip_of_frame]  # (N,) class of every frame
    records, skipped, rankings = [], [], {}
    n_folds = len(cf.folds)
    for fold in cf.folds:
        done = _done_record(out, fold.index)
        if done is not None:
            records.append(done)
            skipped.append(fold.index)
            if done.get("layer_ranking"):
                rankings[fold.index] = done["layer_ranking"]
            if progress:
                progress(FinetuneEvent("skip", fold.index, n_folds))
            continue
        if progress:
            progress(FinetuneEvent("fold", fold.index, n_folds, 0, config.epochs))
        t0 = time.perf_counter()
        resolved, ranking = config, None
        if config.from_layer == "auto":
            # l_s by Grad-CAM focus on this fold's training subjects only, never its test ones
            train_clips = [kept[i] for i in selection_positions(fold) if kept[i].clip_id not in failed]
            ranking = suggest_layer(train_clips, trunk=base, regions=source, seed=config.seed,
                                    face=cam_face)
            resolved = replace(config, from_layer=ranking[0]["layer"])
            rankings[fold.index] = ranking
        model, record = train_fold(bank, cf, fold, frame_y, resolved, n_folds=n_folds,
                                   progress=progress)
        test_rows = bank.rows_of(fold.test)
        pred = predict_frames(model, bank, test_rows, device=torch.device(resolved.device),
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
                "catalogue_sha256": run["data"]["catalogue_sha256"], "config": resolved.identity(),
                "face": face}
        digest = save_fold(model, out, fold.index, meta=meta, classes=cf.classes,
                           fc_dims=resolved.fc_dims, dropout=resolved.dropout)
        record.update({k: meta[k] for k in ("train_subjects", "val_subjects", "test_subjects")})
        record.update({"from_layer": resolved.from_layer, "layer_ranking": ranking,
                       "checkpoint": checkpoint_path(out, fold.index).name,
                       "checkpoint_sha256": digest,
                       "test": scores(frame_y[test_rows], pred, n_classes=len(cf.classes)),
                       "y_true": frame_y[test_rows].tolist(), "y_pred": pred.tolist(),
                       "seconds": round(time.perf_counter() - t0, 3)})
        write_json(record_path(out, fold.index), record)
        records.append(record)
        if progress:
            progress(FinetuneEvent("done", fold.index, n_folds))
    frame_dataset = np.array([c.dataset for c in kept])[bank.clip_of_frame]  # (N,)
    datasets = [frame_dataset[bank.rows_of(cf.folds[r["fold"]].test)] for r in records]
    frame_group = np.array([f"{c.dataset}/{c.subject}" for c in kept])[bank.clip_of_frame]  # (N,)
    groups = [frame_group[bank.rows_of(cf.folds[r["fold"]].test)] for r in records]
    metrics = _pooled(records, datasets, groups, cf.classes, seed=config.seed)
    write_json(out / "metrics.json", metrics)
    return FinetuneResult(out=out, config=config, metrics=metrics, folds=records,
                          skipped=skipped, layer_rankings=rankings,
                          seconds=time.perf_counter() - t_start, failed=failed,
                          regions=source.kind if source is not None else None)


def _check_faces(cf: ClipFolds, clip_of_frame: np.ndarray, failed: dict[str, str]) -> None:
    """Every fold must keep training frames once clips without a face are left out."""
    if not failed:
        return
    some = "; ".join(list(failed.values())[:3])
    present = set(clip_of_frame.tolist())
    if not present:
        raise DatasetError(f"No clip has a usable face, so there is nothing to fine-tune on: "
                           f"{some}. Check the frames, or fine-tune with --face none.")
    for fold in cf.folds:
        if not present & set(fold.train.tolist()):
            raise DatasetError(f"Fold {fold.index} has no training clip with a usable face "
                               f"({len(failed)} clips have none, e.g. {some}). Check the frames, "
                               "or fine-tune with --face none.")


def _pooled(records: list[dict], datasets: list[np.ndarray], groups: list[np.ndarray],
            classes: tuple[str, ...], *, seed: int) -> dict:
    """Frame-level scores pooled over folds (MEGC style), per fold, and confusion matrices."""
    y_true = np.concatenate([np.asarray(r["y_true"], np.int64) for r in records])
    y_pred = np.concatenate([np.asarray(r["y_pred"], np.int64) for r in records])
    fold = np.concatenate([np.full(len(r["y_true"]), r["fold"]) for r in records])
    metrics = summarize(y_true, y_pred, fold, np.concatenate(datasets), classes=classes,
                        subjects=np.concatenate(groups), seed=seed)
    metrics["level"] = "frame"
    return metrics
