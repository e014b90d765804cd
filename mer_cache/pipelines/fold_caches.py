"""Fold-aware caches: one cache per fold, each written by that fold's fine-tuned trunk.

A head trained on fine-tuned features is only subject-independent if fold k's features come
from the trunk that never saw fold k's test subjects. So ``extract --finetuned-run`` writes
``out_dir/fold{k}.zarr`` with ``fold{k}.pt`` for every fold, records in each cache's
fingerprint (``finetune``) the checkpoint's hash, its training/validation/test subjects and
the run's fold assignment, and writes ``out_dir/folds.json`` listing the folds. The guard
(:mod:`mer_cache.pipelines.fold_features`, :mod:`mer_cache.protocol.leakage`) reads them back before a head trains.

Each trunk embeds the frames it was trained on: the run's face stage (its checkpoints'
``face``), warping with the transforms the run stored in ``faces.json`` (clips the run did
not align are aligned the same way), whatever ``options.face`` says.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from mer_cache.catalogue.clip import Clip
from mer_cache.errors import CacheError, ConfigError
from mer_cache.extract import ExtractOptions, ExtractResult, extract_clips
from mer_cache.extract import distributed as dist
from mer_cache.faces.stage import StoredFaceStage
from mer_cache.finetune.saved import (
    checkpoint_path, fold_checkpoint_meta, run_face_stage, write_json,
)
from mer_cache.trunks import create_trunk
from mer_cache.trunks.checkpoints import training_record

FOLDS_FILE = "folds.json"
FOLD_CACHES_KIND = "mer-cache-fold-caches"

# (fold, frames done, frames total) of the fold being extracted
Progress = Callable[[int, int, int], None]


@dataclass
class FoldCachesResult:
    """What :func:`extract_finetuned` wrote: one extraction result per fold."""

    out_dir: Path
    results: list[ExtractResult] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return all(r.complete for r in self.results)

    @property
    def failed(self) -> dict[str, str]:
        return {f"fold{k}: {cid}": why for k, r in enumerate(self.results)
                for cid, why in r.failed.items()}


def _run_folds(run_dir: Path) -> tuple[dict, list[tuple[Path, dict]]]:
    run_file = run_dir / "run.json"
    if not run_file.is_file():
        raise ConfigError(f"{run_dir} is not a fine-tuning run folder (no run.json). Pass the "
                          "--out folder of `mer-cache finetune`.")
    run = json.loads(run_file.read_text())
    metas = []
    k = 0
    while checkpoint_path(run_dir, k).is_file():
        metas.append((checkpoint_path(run_dir, k), fold_checkpoint_meta(checkpoint_path(run_dir, k))))
        k += 1
    n_folds = metas[0][1]["n_folds"] if metas else 0
    missing = [i for i in range(n_folds) if not (run_dir / f"fold{i}.json").is_file()]
    if not metas or len(metas) != n_folds or missing:
        raise ConfigError(f"The fine-tuning run in {run_dir} is not finished (folds without a "
                          f"checkpoint or record: {missing or 'all'}). Rerun the same "
                          "`mer-cache finetune` command to finish it, then extract.")
    return run, metas


def _check_same_run(out_dir: Path, entries: list[dict]) -> None:
    index = out_dir / FOLDS_FILE
    if not index.is_file():
        return
    old = [e["finetune"]["checkpoint_sha256"] for e in json.loads(index.read_text())["fold_caches"]]
    if old != [e["finetune"]["checkpoint_sha256"] for e in entries]:
        raise CacheError(f"{out_dir} already holds the fold caches of another fine-tuning run "
                         "(other checkpoints). Use another --out folder, or delete this one.")


def extract_finetuned(run_dir: Path | str, *, clips: list[Clip], out_dir: Path | str,
                      options: ExtractOptions = ExtractOptions(),
                      progress: Progress | None = None) -> FoldCachesResult:
    """Write ``out_dir/fold{k}.zarr`` with each fold's fine-tuned trunk, and ``folds.json``.

    Every cache holds all ``clips`` (the head trains on fold k's training clips and tests on
    its test clips, both embedded by the fold-k trunk). Resumable per cache, like ``extract``.

    Parameters
    ----------
    run_dir : Path
        The ``--out`` folder of a finished ``mer-cache finetune`` run.
    clips : list of Clip
        The catalogue to embed (normally the one the run fine-tuned on).
    out_dir : Path
        Folder for the fold caches.
    options : ExtractOptions
        Its ``face`` is not used: the run's face stage is (``face_stabilise`` is refused).
    progress : callable, optional
        ``progress(fold, frames_done, frames_total)``.

    Raises
    ------
    ConfigError
        If ``run_dir`` is not a finished fine-tuning run.
    CacheError
        If a ``fold{k}.zarr`` already holds a cache made with another trunk or run.
    """
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    if options.face_stabilise:
        raise ConfigError(
            f"face_stabilise cannot be combined with the fine-tuning run {run_dir}: the run's "
            "face stage and stored transforms decide the frames its trunks were trained on. "
            "Drop face_stabilise (--face-stabilise), or extract without the run.")
    run, metas = _run_folds(run_dir)
    resize_mode = run.get("config", {}).get("resize_mode", "stretch")
    entries = []
    for checkpoint, meta in metas:
        entries.append({"fold": meta["fold"], "cache": f"fold{meta['fold']}.zarr",
                        "finetune": training_record(checkpoint)})
    _check_same_run(out_dir, entries)
    out_dir.mkdir(parents=True, exist_ok=True)
    first = metas[0][1]
    if dist.context().rank == 0:  # under torchrun every rank extracts, one writes the index
        write_json(out_dir / FOLDS_FILE, {
            "kind": FOLD_CACHES_KIND, "run": str(run_dir.resolve()), "n_folds": len(metas),
            "protocol": first["protocol"], "folds": first["folds"], "seed": first["seed"],
            "labels": first["labels"], "assignment": first["assignment"],
            "assignment_sha256": first["assignment_sha256"], "fold_caches": entries})
    result = FoldCachesResult(out_dir)
    options = replace(options, face="none")  # the run decides, through face_stage
    stages: dict[str, StoredFaceStage | None] = {}  # one per face setting: detect a clip once
    for (checkpoint, meta), entry in zip(metas, entries):
        key = json.dumps(meta.get("face"), sort_keys=True)
        if key not in stages:
            stages[key] = run_face_stage(run_dir, meta, clips)
        trunk = create_trunk(meta["trunk"], weights=checkpoint, layer=meta["layer"],
                             resize_mode=resize_mode)
        k = meta["fold"]
        fold_progress = (lambda done, total, k=k: progress(k, done, total)) if progress else None
        result.results.append(extract_clips(clips, trunk, out_dir / entry["cache"], options=options,
                                            finetune=entry["finetune"],
                                            face_stage=stages[key],
                                            progress=fold_progress))
    return result
