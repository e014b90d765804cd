"""The leakage guard: a head may test fold k only on subjects fold k's trunk never saw.

Features from a fine-tuned trunk carry what it learned about its training subjects. If a
head tests subject S in fold k on features whose trunk trained (or early-stopped) on S, the
score is inflated by subject leakage, silently. So before a head trains on fold caches:

- every fold k uses the features of ``fold{k}.zarr``;
- fold k's test subjects must be disjoint from the training and validation subjects of the
  trunk that wrote ``fold{k}.zarr`` (else :class:`ProtocolError`, naming the subjects);
- the head's subject -> fold assignment must equal the fine-tuning run's (same hash), else
  :class:`ProtocolError` naming the subjects whose fold differs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mer_cache.errors import CacheError, ProtocolError
from mer_cache.finetune.assignment import assignment_sha256, fold_assignment
from mer_cache.finetune.fold_caches import FOLD_CACHES_KIND, FOLDS_FILE
from mer_cache.heads.folds import Fold


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


def check_fold_features(fold_meta: dict, *, fold_index: int, test_subjects, assignment_hash: str,
                        head_assignment: dict[str, int] | None = None) -> None:
    """Refuse fold ``fold_index`` if its features' trunk saw a test subject or folds differ.

    Parameters
    ----------
    fold_meta : dict
        The ``finetune`` record of the cache that provides fold ``fold_index``'s features.
    fold_index : int
        The head's fold.
    test_subjects : iterable of str
        The head's test subjects in this fold (``dataset/subject`` keys).
    assignment_hash : str
        sha256 of the head's subject -> fold map (:func:`assignment_sha256`).
    head_assignment : dict, optional
        The head's subject -> fold map, to name the subjects whose fold differs.

    Raises
    ------
    ProtocolError
        Naming the subjects, when the trunk trained on a test subject, or when the head's
        fold assignment is not the fine-tuning run's.
    """
    tests = sorted(set(map(str, test_subjects)))
    seen = set(fold_meta.get("train_subjects", [])) | set(fold_meta.get("val_subjects", []))
    leaked = [s for s in tests if s in seen]
    run = (f"protocol={fold_meta.get('protocol')}, folds={fold_meta.get('folds')}, "
           f"seed={fold_meta.get('seed')}, labels={fold_meta.get('labels')}")
    if fold_meta.get("fold") != fold_index:
        raise ProtocolError(f"Fold {fold_index} of the head would read features of fine-tuned fold "
                            f"{fold_meta.get('fold')}; each fold must use its own fold cache.")
    if leaked:
        raise ProtocolError(
            f"Fold {fold_index}: the trunk that produced these features ({fold_meta.get('checkpoint')}, "
            f"fine-tuned fold {fold_meta.get('fold')}) was trained on subject(s) {', '.join(leaked)}, "
            f"which this head tests in fold {fold_index}. Its scores would be inflated by subject "
            f"leakage, so the head is not trained. Use the fine-tuning run's folds ({run}).")
    if assignment_hash != fold_meta.get("assignment_sha256"):
        run_assignment = fold_meta.get("assignment") or {}
        run_tests = set(fold_meta.get("test_subjects", []))
        differ = sorted(set(tests) ^ run_tests)
        if head_assignment is not None:
            keys = set(head_assignment) | set(run_assignment)
            differ = sorted(s for s in keys if head_assignment.get(s) != run_assignment.get(s))
        shown = ", ".join(f"{s} (head fold {head_assignment.get(s) if head_assignment else '?'}, "
                          f"run fold {run_assignment.get(s, 'none')})" for s in differ[:12])
        raise ProtocolError(
            f"Fold {fold_index}: the head's subject -> fold assignment differs from the fine-tuning "
            f"run's, so fold caches and head folds do not match. Subjects placed differently: "
            f"{shown or 'none in this fold; other folds differ'}{' ...' if len(differ) > 12 else ''}. "
            f"Train the head with the run's settings ({run}) on the same clips.")


def check_not_fold_cache(fingerprint: dict | None, *, path: Path | str) -> None:
    """Refuse one fold's cache used as the features of every fold.

    A ``fold{k}.zarr`` was written by a trunk fine-tuned on the training subjects of fold k,
    which are the test subjects of the other folds; a head reading it for all folds leaks.

    Raises
    ------
    ProtocolError
        When ``fingerprint`` (of the cache at ``path``) has a ``finetune`` record.
    """
    record = (fingerprint or {}).get("finetune")
    if record:
        raise ProtocolError(
            f"{path} holds the features of fine-tuned fold {record.get('fold')} only; its trunk "
            f"was trained on subjects {', '.join(record.get('train_subjects', []))}, which other "
            f"folds test. Pass the folder that holds folds.json (written by `mer-cache extract "
            f"--finetuned-run`), so every fold uses its own trunk's features.")


def check_head_folds(fold_caches: FoldCaches, folds: list[Fold], groups) -> None:
    """Check every head fold against its fold cache (see :func:`check_fold_features`).

    ``folds`` and ``groups`` are what ``train-head`` made (``make_folds`` and
    ``Sequences.groups``).
    """
    groups = np.asarray(groups)
    if len(folds) != fold_caches.n_folds:
        raise ProtocolError(f"The head makes {len(folds)} folds but {fold_caches.path} holds "
                            f"{fold_caches.n_folds} fold caches; use the fine-tuning run's "
                            f"--protocol {fold_caches.meta['protocol']} --folds "
                            f"{fold_caches.meta['folds']} --seed {fold_caches.meta['seed']}.")
    head_assignment = fold_assignment(folds, groups)
    digest = assignment_sha256(head_assignment)
    for fold in folds:
        check_fold_features(fold_caches.fold_meta[fold.index], fold_index=fold.index,
                            test_subjects=groups[fold.test].tolist(), assignment_hash=digest,
                            head_assignment=head_assignment)


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
        check_head_folds(self.caches, folds, seqs.groups)

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
