"""Labelled sequences in memory: what the heads train on, and the bridge from a cache.

A :class:`Sequences` record holds one ``(T, D)`` float32 array per clip with its clip id,
subject, dataset, raw label and task class. Heads never see the Zarr layout: the cache
module loads the arrays once (:func:`load_sequences`) and everything after works in memory,
so a sweep reads the cache a single time.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mer_cache.errors import ConfigError, LabelError
from mer_cache.protocol.labels import label_clips


@dataclass(frozen=True, eq=False)
class Sequences:
    """Clips as embedding sequences with task labels.

    Attributes
    ----------
    embeddings : list of ndarray, each (T_i, D) float32
    clip_ids, subjects, datasets, labels : tuple of str
        ``labels`` are the raw dataset labels.
    y : ndarray of int64, shape (n,)
        Task class index into ``classes``.
    classes : tuple of str
    scheme : str
        Name of the label scheme that made ``y``.
    fingerprint : dict or None
        The cache fingerprint, saved with every run.
    notes : tuple of str
        What loading dropped or changed, for the run report.
    dropped : dict
        ``"dataset/label" -> clips`` the label scheme left out (not in the arrays).
    action_units : tuple of str
        Each clip's AU annotation cell as written (``4+7``, "" when not coded), the raw
        labels of the AU-detection task (:mod:`mer_cache.heads.au`); empty when unknown.
    """

    embeddings: list[np.ndarray]
    clip_ids: tuple[str, ...]
    subjects: tuple[str, ...]
    datasets: tuple[str, ...]
    labels: tuple[str, ...]
    y: np.ndarray
    classes: tuple[str, ...]
    scheme: str
    fingerprint: dict | None = None
    notes: tuple[str, ...] = field(default=())
    dropped: dict[str, int] = field(default_factory=dict)
    action_units: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        n = len(self.embeddings)
        if self.action_units and len(self.action_units) != n:
            raise ConfigError(f"Sequences: action_units has {len(self.action_units)} entries for "
                              f"{n} embeddings; give one AU cell per clip (or none).")
        for name in ("clip_ids", "subjects", "datasets", "labels", "y"):
            if len(getattr(self, name)) != n:
                raise ConfigError(f"Sequences: {name} has {len(getattr(self, name))} entries "
                                  f"for {n} embeddings; every clip needs one of each.")
        if n == 0:
            raise LabelError("No clips to train on: the sequence list is empty.")
        dims = {e.shape[1] for e in self.embeddings if e.ndim == 2}
        if len(dims) != 1 or any(e.ndim != 2 or len(e) == 0 for e in self.embeddings):
            raise ConfigError(f"Sequences must be non-empty (T, D) arrays with one D; got D in "
                              f"{sorted(dims)}.")

    def __len__(self) -> int:
        return len(self.embeddings)

    @property
    def dim(self) -> int:
        return int(self.embeddings[0].shape[1])

    @property
    def lengths(self) -> np.ndarray:
        return np.array([len(e) for e in self.embeddings], dtype=np.int64)

    @property
    def groups(self) -> np.ndarray:
        """Subject keys for folds: ``dataset/subject``, since subject ids repeat across datasets."""
        return np.array([f"{d}/{s}" for d, s in zip(self.datasets, self.subjects)])

    def identity(self) -> dict:
        """What a run must see again to resume: the clips, classes and their hash."""
        h = hashlib.sha256()
        for c, lab, t in zip(self.clip_ids, self.y.tolist(), self.lengths.tolist()):
            h.update(f"{c}\t{lab}\t{t}\n".encode())
        return {"n_clips": len(self), "dim": self.dim, "classes": list(self.classes),
                "scheme": self.scheme, "clips_sha256": h.hexdigest()}


def sequences_from_arrays(embeddings, *, clip_ids, subjects, datasets, labels, scheme: str,
                          fingerprint: dict | None = None, action_units=None) -> Sequences:
    """Apply a label scheme to in-memory clips; clips the scheme drops are left out.

    ``action_units`` (optional) gives each clip's AU annotation cell, kept for the kept clips.

    Every left-out clip is counted per dataset and label in ``Sequences.dropped``, in a note
    and in an :class:`~mer_cache.catalogue.labels.UnmappedLabelWarning`. Classes of the scheme
    that no clip has are left out too (with a note), so folds and metrics only see classes
    that exist.

    Raises
    ------
    LabelError
        If the scheme is unknown or fits none of the raw labels.
    """
    raw = [str(x) for x in labels]
    lab = label_clips(datasets, raw, scheme=scheme)
    keep = lab.keep.tolist()
    return Sequences(
        embeddings=[np.ascontiguousarray(embeddings[i], dtype=np.float32) for i in keep],
        clip_ids=tuple(str(clip_ids[i]) for i in keep),
        subjects=tuple(str(subjects[i]) for i in keep),
        datasets=tuple(str(datasets[i]) for i in keep),
        labels=tuple(raw[i] for i in keep), y=lab.y, classes=lab.classes, scheme=scheme,
        fingerprint=fingerprint, notes=lab.notes, dropped=lab.dropped,
        action_units=() if action_units is None else tuple(str(action_units[i]) for i in keep),
    )


def sequences_from_cache(cache, *, labels: str) -> Sequences:
    """Load every clip of an opened cache into memory and apply a label scheme.

    Parameters
    ----------
    cache
        An opened cache (``mer_cache.cache.open_cache``): ``clips``, ``fingerprint``, ``load_all``.
    labels : str
        Label scheme name (``smic4``, ``megc3``, ``casme2-5``, ``emotion``).
    """
    clips = list(cache.clips)
    embeddings = cache.load_all(dtype=np.float32)
    bad = [c.clip_id for c, e in zip(clips, embeddings) if not np.isfinite(e).all()]
    if bad:
        from mer_cache.errors import CacheError

        raise CacheError(
            f"The cache {getattr(cache, 'path', '')} fails verification: {len(bad)} clip(s) hold "
            f"NaN/inf embeddings ({', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}). Run "
            "`mer-cache cache verify` on it, then re-extract into a new --out folder.")
    return sequences_from_arrays(
        embeddings,
        clip_ids=[c.clip_id for c in clips], subjects=[c.subject for c in clips],
        datasets=[c.dataset for c in clips], labels=[c.label for c in clips],
        scheme=labels, fingerprint=dict(cache.fingerprint),
        action_units=[getattr(c, "action_units", "") for c in clips],  # "" from a cache-like without AUs
    )


def load_sequences(path: Path | str, *, labels: str) -> Sequences:
    """Open a verified cache and load it as labelled sequences.

    Raises
    ------
    CacheError
        If the cache is missing, incomplete or fails verification (from ``open_cache``).
    LabelError
        If the label scheme does not fit the cache's labels.
    """
    from mer_cache.cache import open_cache  # the cache module alone knows the Zarr layout

    return sequences_from_cache(open_cache(path), labels=labels)


def reference_frames(embeddings: list[np.ndarray], reference: str) -> list[np.ndarray]:
    """Express every clip's frames against a reference (see ``HeadConfig.reference``).

    ``first`` subtracts the clip's first frame: micro-expression clips start on a neutral
    onset frame, so what remains is the change over time, without the subject's identity.
    Only the clip's own frames are used, so nothing leaks across clips or folds.
    """
    if reference == "none":
        return embeddings
    if reference == "first":
        return [e - e[:1] for e in embeddings]
    raise ConfigError(f"Unknown reference '{reference}' (known: first, none).")
