"""Public API of the embedding cache: open and read, create and write, verify, describe.

Readers call :func:`open_cache`; the extractor calls :func:`open_writer`. Neither needs
to know the Zarr layout, which lives in :mod:`mer_cache.cache.store` alone.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from mer_cache.cache import store
from mer_cache.cache.fingerprint import diff_fingerprints
from mer_cache.cache.store import DONE, FAILED, CachedClip
from mer_cache.catalogue.clip import Clip
from mer_cache.errors import CacheError


@dataclass(frozen=True)
class CacheSummary:
    n_clips: int
    n_done: int
    n_failed: int
    failed: dict[str, str]  # clip_id -> reason

    @property
    def complete(self) -> bool:
        return self.n_done == self.n_clips

    def to_dict(self) -> dict:
        return {"n_clips": self.n_clips, "n_done": self.n_done, "n_failed": self.n_failed,
                "failed": self.failed}


class EmbeddingCache:
    """A cache opened for reading.

    Attributes
    ----------
    path : Path
    fingerprint : dict
        Trunk, layer, dim, weights sha256, preprocessing, dtype, catalogue hash, versions.
    clips : list of CachedClip
        The clip table, in cache order.
    dim : int
    """

    def __init__(self, path: Path, *, require_complete: bool = True) -> None:
        self.path = Path(path)
        self._root, self._attrs = store.open_group(self.path)
        self.fingerprint: dict = self._attrs["fingerprint"]
        self.dim: int = int(self._attrs["dim"])
        self.dtype: str = self._attrs["dtype"]
        self.clips: list[CachedClip] = store.read_table(self._attrs)
        if require_complete and not self._attrs.get("finalized"):
            summary = self.summary()
            if not summary.complete:
                raise CacheError(_incomplete_message(self.path, summary))

    def summary(self) -> CacheSummary:
        status = store.read_status(self._root)
        failed_idx = [int(i) for i in np.flatnonzero(status == FAILED)]
        reasons = store.read_errors(self._root, failed_idx)
        return CacheSummary(
            n_clips=len(self.clips), n_done=int((status == DONE).sum()),
            n_failed=len(failed_idx),
            failed={self.clips[i].clip_id: reasons[i] for i in failed_idx},
        )

    def load_all(self, dtype=np.float32) -> list[np.ndarray]:
        """Every clip's ``(T, D)`` embeddings, in cache order, from one read of the array."""
        flat = store.read_embeddings(self._root, dtype)  # (total_rows, D)
        return [flat[c.row_start:c.row_start + c.n_frames] for c in self.clips]

    def load_clip(self, index: int, dtype=np.float32) -> np.ndarray:
        c = self.clips[index]
        rows = self._root["embeddings"][c.row_start:c.row_start + c.n_frames]
        return rows.astype(dtype, copy=False)

    def column(self, name: str) -> list | None:
        """An extra clip-table column, e.g. ``face``: each clip's alignment (matrix, crop
        size, landmarks), so a cache says how its crops were made. None when absent."""
        return store.read_column(self._attrs, name)

    def info(self) -> dict:
        """What `mer-cache cache info` prints."""
        n_frames = sum(c.n_frames for c in self.clips)
        per_class = Counter(f"{c.dataset}:{c.label}" for c in self.clips)
        return {
            "path": str(self.path),
            "fingerprint": self.fingerprint,
            "clips": len(self.clips),
            "subjects": len({(c.dataset, c.subject) for c in self.clips}),
            "frames": n_frames,
            "dim": self.dim,
            "dtype": self.dtype,
            "bytes_on_disk": store.store_bytes(self.path),
            "chunk_rows": self._attrs["chunk_rows"],
            "clips_per_class": dict(sorted(per_class.items())),
            "status": self.summary().to_dict(),
        }


def open_cache(path: Path | str, *, require_complete: bool = True) -> EmbeddingCache:
    """Open a cache for reading.

    Raises
    ------
    CacheError
        When the folder is not a cache, or (with ``require_complete``) when any clip is
        not done; the message lists failed clips and says to rerun the extraction.
    """
    return EmbeddingCache(Path(path), require_complete=require_complete)


def _incomplete_message(path: Path, s: CacheSummary) -> str:
    pending = s.n_clips - s.n_done - s.n_failed
    msg = (f"The cache {path} is incomplete: {s.n_done} of {s.n_clips} clips done, "
           f"{s.n_failed} failed, {pending} not yet extracted.")
    if s.failed:
        some = "; ".join(f"{k}: {v}" for k, v in list(s.failed.items())[:5])
        msg += f" Failed clips: {some}{' ...' if s.n_failed > 5 else ''}."
    return msg + " Rerun the same `mer-cache extract` command to finish it (done clips are kept)."


def verify_cache(path: Path | str) -> list[str]:
    """Check every clip is done and its rows finite and correctly shaped; list problems."""
    cache = open_cache(path, require_complete=False)
    problems: list[str] = []
    summary = cache.summary()
    if not summary.complete:
        problems.append(_incomplete_message(cache.path, summary))
    emb = cache._root["embeddings"]
    if emb.shape[1] != cache.dim:
        problems.append(f"embeddings have {emb.shape[1]} columns but the fingerprint says {cache.dim}")
    flat = store.read_embeddings(cache._root)
    status = store.read_status(cache._root)
    for c in cache.clips:
        if status[c.index] != DONE:
            continue
        if c.row_start + c.n_frames > flat.shape[0]:
            problems.append(f"{c.clip_id}: rows {c.row_start}..{c.row_start + c.n_frames} "
                            f"lie outside the array of {flat.shape[0]} rows")
            continue
        rows = flat[c.row_start:c.row_start + c.n_frames]
        bad = ~np.isfinite(rows).all(axis=1)
        if bad.any():
            problems.append(f"{c.clip_id}: {int(bad.sum())} of {c.n_frames} frames hold NaN/inf "
                            "(never written, or the trunk overflowed: try --dtype float32)")
    return problems


class CacheWriter:
    """Writes clips into a cache; one per process, owning the units given to its rank."""

    def __init__(self, path: Path, *, rank: int = 0, world: int = 1) -> None:
        self.path = Path(path)
        self._root, self._attrs = store.open_group(self.path, mode="r+")
        self.clips = store.read_table(self._attrs)
        self._units = store.read_units(self._attrs)
        self._arrays = store.writer_arrays(self._root)
        self.rank, self.world = rank, world

    def owns(self, index: int) -> bool:
        """Deterministic split: unit u belongs to rank u % world (no padding, no overlap)."""
        return int(self._units[index]) % self.world == self.rank

    def pending(self) -> list[int]:
        """Clips of this rank that are not done (failed clips are retried)."""
        status = store.read_status(self._root)
        return [c.index for c in self.clips if status[c.index] != DONE and self.owns(c.index)]

    def write(self, index: int, rows: np.ndarray) -> None:
        clip = self.clips[index]
        if rows.shape != (clip.n_frames, self._attrs["dim"]):
            raise CacheError(f"{clip.clip_id}: got embeddings of shape {rows.shape}, expected "
                             f"({clip.n_frames}, {self._attrs['dim']}).")
        store.write_rows(self._arrays, clip, rows.astype(self._attrs["dtype"], copy=False))

    def column(self, name: str) -> list | None:
        """An extra clip-table column stored at creation (``prepare_cache(extra_columns=)``)."""
        return store.read_column(self._attrs, name)

    def fail(self, index: int, reason: str) -> None:
        store.write_failure(self._root, index, reason)

    def finalize(self) -> CacheSummary:
        """Record the summary in the root attributes and consolidate metadata (rank 0)."""
        cache = open_cache(self.path, require_complete=False)
        summary = cache.summary()
        store.write_summary(self._root, self._attrs, summary.to_dict())
        store.consolidate(self.path)
        return summary


def table_from_clips(clips: list[Clip]) -> dict[str, list]:
    return {
        "clip_id": [c.clip_id for c in clips], "dataset": [c.dataset for c in clips],
        "subject": [c.subject for c in clips], "label": [c.label for c in clips],
        "n_frames": [c.n_frames for c in clips], "onset": [c.onset for c in clips],
        "apex": [c.apex for c in clips], "offset": [c.offset for c in clips],
    }


def prepare_cache(path: Path | str, *, fingerprint: dict, clips: list[Clip],
                  chunk_bytes: int = store.DEFAULT_CHUNK_BYTES,
                  extra_columns: Callable[[], dict[str, list]] | None = None) -> str:
    """Create the cache, or check that the existing one is for the same run (rank 0).

    ``extra_columns`` is called only when the cache is created: what it returns (one JSON
    value per clip and column, e.g. the face alignment) is stored in the clip table, so a
    rerun reads it back instead of computing it again.

    Returns "created" or "resumed". Raises CacheError naming every identity field that
    differs when ``path`` holds a cache made with another fingerprint.
    """
    path = Path(path)
    if path.exists() and any(path.iterdir()):
        _, attrs = store.open_group(path)
        identity, provenance = diff_fingerprints(attrs["fingerprint"], fingerprint)
        if identity:
            raise CacheError(
                f"{path} already holds a cache made with a different fingerprint: "
                + "; ".join(identity)
                + ". Use another --out folder, or delete this one to start over."
            )
        if provenance:
            import warnings

            warnings.warn(f"Resuming {path} with other versions ({'; '.join(provenance)}).",
                          stacklevel=2)
        store.clean_partial_files(path)
        root, attrs = store.open_group(path, mode="r+")
        store.write_summary(root, attrs, None)  # readers must not trust an old summary now
        return "resumed"
    store.create_store(path, fingerprint=fingerprint, table=table_from_clips(clips),
                       dim=int(fingerprint["dim"]), dtype=fingerprint["dtype"],
                       chunk_bytes=chunk_bytes,
                       extra_columns=extra_columns() if extra_columns is not None else None)
    return "created"
