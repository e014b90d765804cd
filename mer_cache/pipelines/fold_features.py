"""Reading a fold-cache folder (``extract --finetuned-run``): one cache per fold, checked.

Fold k of a head reads ``fold{k}.zarr``, written by the trunk fine-tuned on fold k's training
subjects. This module owns the folder's format (``folds.json`` + ``fold{k}.zarr``); the checks
themselves (no test subject seen by the trunk, same folds) are
:func:`mer_cache.protocol.leakage.check_features`, which every head run goes through.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mer_cache.errors import CacheError
from mer_cache.pipelines.fold_caches import FOLD_CACHES_KIND, FOLDS_FILE
from mer_cache.protocol.folds import Fold
from mer_cache.protocol.leakage import check_features


def is_fold_cache_dir(path: Path | str) -> bool:
    """True when ``path`` is a folder written by ``extract --finetuned-run``."""
    return (Path(path) / FOLDS_FILE).is_file()


@dataclass(frozen=True)
class FoldCaches:
    """An opened fold-cache folder: ``folds.json`` and each fold cache's ``finetune`` record."""

    path: Path
    meta: dict
    fold_meta: tuple[dict, ...]  # fingerprint["finetune"] of fold{k}.zarr, by k

    @property
    def n_folds(self) -> int:
        return len(self.fold_meta)

    def cache_path(self, k: int) -> Path:
        return self.path / f"fold{k}.zarr"


def open_fold_caches(path: Path | str) -> FoldCaches:
    """Open ``folds.json`` and every ``fold{k}.zarr`` (complete, verified) of a folder.

    Raises
    ------
    CacheError
        When the folder is not a fold-cache folder, a fold cache is missing or incomplete,
        or a cache's fingerprint disagrees with ``folds.json``.
    """
    from mer_cache.cache import open_cache  # the cache module alone knows the Zarr layout

    path = Path(path)
    if not is_fold_cache_dir(path):
        raise CacheError(f"{path} has no {FOLDS_FILE}; it is not a folder of per-fold caches. "
                         "Write one with `mer-cache extract --finetuned-run RUN --out DIR`.")
    meta = json.loads((path / FOLDS_FILE).read_text())
    if meta.get("kind") != FOLD_CACHES_KIND:
        raise CacheError(f"{path / FOLDS_FILE} is not a fold-cache index (kind "
                         f"{meta.get('kind')!r}).")
    records = []
    for k, entry in enumerate(meta["fold_caches"]):
        fp = open_cache(path / entry["cache"]).fingerprint
        record = fp.get("finetune") or {}
        if record.get("fold") != k or record.get("checkpoint_sha256") != entry["finetune"][
                "checkpoint_sha256"] or record.get("assignment_sha256") != meta["assignment_sha256"]:
            raise CacheError(f"{path / entry['cache']} was not written by fold {k}'s checkpoint of "
                             f"the run listed in {path / FOLDS_FILE}. Rerun `mer-cache extract "
                             "--finetuned-run` into a new folder.")
        records.append(record)
    return FoldCaches(path, meta, tuple(records))


@dataclass(frozen=True)
class FoldFeatures:
    """Per-fold labelled sequences of a fold-cache folder (same clips, fold k's features)."""

    caches: FoldCaches
    sequences: tuple  # Sequences of fold k, by k

    def check(self, folds: list[Fold], seqs) -> None:
        """Refuse leakage / assignment mismatch for the head's ``folds`` over ``seqs``."""
        for k, s in enumerate(self.sequences):
            if s.clip_ids != seqs.clip_ids:
                raise CacheError(f"{self.caches.cache_path(k)} holds other clips than the head's "
                                 "sequences; load every fold from the same fold-cache folder.")
        check_features(list(self.caches.fold_meta), folds, seqs.groups, per_fold=True,
                       source=str(self.caches.path))

    def identity(self) -> dict:
        """What a head run must see again to resume: the run's folds and each fold's checkpoint."""
        meta = self.caches.meta
        return {"protocol": meta["protocol"], "folds": meta["folds"], "seed": meta["seed"],
                "labels": meta["labels"], "assignment_sha256": meta["assignment_sha256"],
                "checkpoints_sha256": [r["checkpoint_sha256"] for r in self.caches.fold_meta]}

    def embeddings(self, k: int) -> list[np.ndarray]:
        """Fold k's ``(T, D)`` arrays, in the order of the head's sequences."""
        return self.sequences[k].embeddings


def load_fold_features(path: Path | str, *, labels: str) -> FoldFeatures:
    """Open a fold-cache folder and load every fold's cache as labelled sequences.

    Raises
    ------
    CacheError
        See :func:`open_fold_caches`; also when the fold caches hold different clips.
    """
    from mer_cache.cache import open_cache
    from mer_cache.heads.data import sequences_from_cache

    caches = open_fold_caches(path)
    seqs = tuple(sequences_from_cache(open_cache(caches.cache_path(k)), labels=labels)
                 for k in range(caches.n_folds))
    for k, s in enumerate(seqs[1:], start=1):
        if s.clip_ids != seqs[0].clip_ids:
            raise CacheError(f"{caches.cache_path(k)} holds other clips than "
                             f"{caches.cache_path(0)}; rerun the extraction into a new folder.")
    return FoldFeatures(caches, seqs)
