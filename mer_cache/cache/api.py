"""Public API of the embedding cache: open and read, create and write, verify, describe.

Readers call :func:`open_cache`; the extractor calls :func:`open_writer`. Neither needs
to know the Zarr layout, which lives in :mod:`mer_cache.cache.store` alone.
"""

from __future__ import annotations

import errno
import os
import shutil
import uuid
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from mer_cache.cache import store
from mer_cache.cache.fingerprint import diff_fingerprints
from mer_cache.cache.store import DONE, FAILED, CachedClip
from mer_cache.catalogue.clip import Clip
from mer_cache.errors import CacheError, os_error_message


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
                raise CacheError(incomplete_message(self.path, summary))

    def summary(self) -> CacheSummary:
        status = store.read_status(self._root)
        failed_idx = [int(i) for i in np.flatnonzero(status == FAILED)]
        reasons = store.read_errors(self._root, failed_idx)
        return CacheSummary(
            n_clips=len(self.clips), n_done=int((status == DONE).sum()),
            n_failed=len(failed_idx),
            failed={self.clips[i].clip_id: reasons[i] for i in failed_idx},
        )

    def load_all(self, dtype=np.float32, *, verify: bool = True) -> list[np.ndarray]:
        """Every clip's ``(T, D)`` embeddings, in cache order, from one read of the array.

        ``verify`` checks every clip's CRC-32 (about 7 ms per 47 MB on one core, measured by
        ``benchmarks/cache_io.py``); turn it off only for data checked moments ago.

        Raises
        ------
        CacheError
            When a done clip's rows no longer match the checksum written with them.
        """
        flat = store.read_embeddings(self._root)  # (total_rows, D), storage dtype
        bad = damaged_clips(self.clips, flat, self._checksums(), self._done()) if verify else []
        if bad:
            raise CacheError(_damaged_message(self.path, bad))
        flat = flat.astype(dtype, copy=False)
        return [flat[c.row_start:c.row_start + c.n_frames] for c in self.clips]

    def load_clip(self, index: int, dtype=np.float32) -> np.ndarray:
        c = self.clips[index]
        rows = store.read_embeddings(self._root)[c.row_start:c.row_start + c.n_frames]
        if damaged_clips([c], rows, self._checksums(), self._done(), offset=c.row_start):
            raise CacheError(_damaged_message(self.path, [c.clip_id]))
        return rows.astype(dtype, copy=False)

    def _checksums(self) -> np.ndarray | None:
        return store.read_checksums(self._root, self._attrs)

    def _done(self) -> np.ndarray:
        if self._attrs.get("finalized"):
            return np.ones(len(self.clips), bool)
        return store.read_status(self._root) == DONE

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


def damaged_clips(clips: list[CachedClip], flat: np.ndarray, checksums: np.ndarray | None,
                  done: np.ndarray, *, offset: int = 0) -> list[str]:
    """Ids of done clips whose stored rows do not match their CRC-32 (or, without one, hold NaN).

    ``flat`` holds rows ``offset..`` of the embeddings array in the storage dtype.
    """
    bad = []
    for c in clips:
        if not done[c.index]:
            continue
        rows = flat[c.row_start - offset:c.row_start - offset + c.n_frames]
        want = int(checksums[c.index]) if checksums is not None else store.NO_CHECKSUM
        if want == store.NO_CHECKSUM:
            if not np.isfinite(rows).all():  # no checksum (old cache): a missing chunk is NaN
                bad.append(c.clip_id)
        elif want == store.LOST_CHECKSUM or store.rows_checksum(rows) != want:
            bad.append(c.clip_id)
    return bad


def _damaged_message(path: Path, bad: list[str]) -> str:
    shown = ", ".join(bad[:5]) + (" ..." if len(bad) > 5 else "")
    return (f"The cache {path} is damaged: the stored embeddings of {len(bad)} clip(s) ({shown}) "
            "no longer match the checksums written with them (a chunk file was deleted, cut "
            "short or changed on disk). Run `mer-cache cache verify` on it to mark them not done, "
            "then rerun the same `mer-cache extract` command: it recomputes only those clips.")


def incomplete_message(path: Path, s: CacheSummary, *, what: str = "cache",
                       command: str = "mer-cache extract") -> str:
    """Why an unfinished cache (embedding or flow) cannot be read, and the rerun that finishes it."""
    pending = s.n_clips - s.n_done - s.n_failed
    msg = (f"The {what} {path} is incomplete: {s.n_done} of {s.n_clips} clips done, "
           f"{s.n_failed} failed, {pending} not yet extracted.")
    if s.failed:
        some = "; ".join(f"{k}: {v}" for k, v in list(s.failed.items())[:5])
        msg += f" Failed clips: {some}{' ...' if s.n_failed > 5 else ''}."
    return msg + f" Rerun the same `{command}` command to finish it (done clips are kept)."


def verify_cache(path: Path | str, *, mark_damaged: bool = True) -> list[str]:
    """Check every clip is done, and its rows intact, finite and correctly shaped; list problems.

    Clips whose rows fail the check (a missing or short chunk file, changed bytes) are
    named and, with ``mark_damaged``, marked not done, so the cache reads as incomplete and
    rerunning the same extraction recomputes them.
    """
    cache = open_cache(path, require_complete=False)
    problems: list[str] = []
    emb = cache._root["embeddings"]
    if emb.shape[1] != cache.dim:
        problems.append(f"embeddings have {emb.shape[1]} columns but the fingerprint says {cache.dim}")
    flat = store.read_embeddings(cache._root)
    status = store.read_status(cache._root)
    chunk_rows = cache._attrs["chunk_rows"]
    done = status == DONE
    for k, why in store.damaged_chunks(cache._root).items():
        held = [c.clip_id for c in cache.clips if done[c.index]
                and c.row_start < (k + 1) * chunk_rows and c.row_start + c.n_frames > k * chunk_rows]
        if held:
            problems.append(f"{why}; it held the done clips {', '.join(held)}")
    bad = damaged_clips(cache.clips, flat, cache._checksums(), done)
    if bad:
        problems.append(f"{len(bad)} clip(s) no longer match the checksums written with them: "
                        f"{', '.join(bad)}")
        if mark_damaged:
            ids = {c.clip_id: c.index for c in cache.clips}
            try:
                root, attrs = store.open_group(cache.path, mode="r+")
                store.set_pending(root, [ids[b] for b in bad])
                store.write_summary(root, attrs, None)
                problems.append(f"Marked these {len(bad)} clip(s) not done. Rerun the same "
                                "`mer-cache extract` command to recompute them (other clips are kept).")
            except OSError as exc:  # a read-only copy: report, the next extract finds them too
                problems.append("Could not mark them not done: " + os_error_message(exc) + " Rerun "
                                "the same `mer-cache extract` command on a writable copy: it "
                                "recomputes them.")
        status = store.read_status(cache._root)
    summary = cache.summary()
    if not summary.complete:
        problems.insert(0, incomplete_message(cache.path, summary))
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

    def set_column_values(self, name: str, values: dict[int, object]) -> None:
        """Replace the values of some clips (index -> JSON value) in an extra column (rank 0,
        before other writers open the cache): a failed clip's face alignment, made again."""
        self._attrs = store.write_column_values(self._root, self._attrs, name, values)

    def fail(self, index: int, reason: str) -> None:
        store.write_failure(self._root, index, reason)

    def finalize(self) -> CacheSummary:
        """Record the summary in the root attributes and consolidate metadata (rank 0)."""
        cache = open_cache(self.path, require_complete=False)
        summary = cache.summary()
        checksums = store.read_checksums(self._root, dict(self._attrs, finalized=False))
        store.write_summary(self._root, self._attrs, summary.to_dict(), checksums)
        store.consolidate(self.path)
        return summary


def table_from_clips(clips: list[Clip]) -> dict[str, list]:
    return {
        "clip_id": [c.clip_id for c in clips], "dataset": [c.dataset for c in clips],
        "subject": [c.subject for c in clips], "label": [c.label for c in clips],
        "n_frames": [c.n_frames for c in clips], "onset": [c.onset for c in clips],
        "apex": [c.apex for c in clips], "offset": [c.offset for c in clips],
        "action_units": [_au_text(c.attrs.get("action_units")) for c in clips],
    }


def _au_text(cell) -> str:
    """A loader's AU cell as text: CASME II writes a lone AU as a number (12, or 12.0 from xlsx)."""
    if cell is None or (isinstance(cell, float) and not np.isfinite(cell)):
        return ""
    if isinstance(cell, float) and cell.is_integer():
        cell = int(cell)
    return str(cell).strip()


def prepare_cache(path: Path | str, *, fingerprint: dict, clips: list[Clip],
                  chunk_bytes: int = store.DEFAULT_CHUNK_BYTES,
                  extra_columns: Callable[[], dict[str, list]] | None = None) -> str:
    """Create the cache, or check that the existing one is for the same run (rank 0).

    A new cache is built in a hidden sibling folder and renamed into place, so a failed
    creation (a full disk) leaves nothing behind, and of two processes creating the same
    cache one wins and the other resumes it. Resuming removes stale temp files and marks
    done clips whose rows are damaged as not done, so they are recomputed.

    ``extra_columns`` is called only when the cache is created: what it returns (one JSON
    value per clip and column, e.g. the face alignment) is stored in the clip table, so a
    rerun reads it back instead of computing it again (a clip's value changes later only
    through :meth:`CacheWriter.set_column_values`).

    Returns "created" or "resumed". Raises CacheError naming every identity field that
    differs when ``path`` holds a cache made with another fingerprint, and when ``path``
    is a file or a folder of other files.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise CacheError(f"--out {path} is an existing file. extract writes a cache folder "
                         "(name it e.g. cache.zarr): choose a path that does not exist yet.")
    if path.is_dir() and any(path.iterdir()):
        return _resume(path, fingerprint, clips)
    tmp = path.parent / f".{path.name}.creating-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        store.create_store(tmp, fingerprint=fingerprint, table=table_from_clips(clips),
                           dim=int(fingerprint["dim"]), dtype=fingerprint["dtype"],
                           chunk_bytes=chunk_bytes,
                           extra_columns=extra_columns() if extra_columns is not None else None)
        os.rename(tmp, path)  # replaces a missing or empty folder, never a filled one
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST) and store.is_cache_folder(path):
            return _resume(path, fingerprint, clips)  # another process created it first
        raise CacheError(os_error_message(exc, doing=f"creating the cache {path}")) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return "created"


def _resume(path: Path, fingerprint: dict, clips: list[Clip]) -> str:
    if not store.is_cache_folder(path):
        inside = any(_is_within(c.source, path) for c in clips[:50])
        raise CacheError(
            f"--out {path} is a folder that already holds other files and no cache"
            + (" (it holds the dataset's own frames)" if inside else "")
            + ". extract writes a new cache into a missing or empty folder, or resumes one it "
            "wrote: choose another --out, e.g. a new cache.zarr next to the dataset.")
    _, attrs = store.open_group(path)
    identity, provenance = diff_fingerprints(attrs["fingerprint"], fingerprint)
    if identity:
        raise CacheError(
            f"{path} already holds a cache made with a different fingerprint: "
            + "; ".join(identity)
            + ". Use another --out folder, or delete this one to start over."
        )
    if provenance:
        warnings.warn(f"Resuming {path} with other versions ({'; '.join(provenance)}).",
                      stacklevel=3)
    store.clean_partial_files(path)
    root, attrs = store.open_group(path, mode="r+")
    store.write_summary(root, attrs, None)  # readers must not trust an old summary now
    cache = open_cache(path, require_complete=False)
    done = store.read_status(root) == DONE
    bad = damaged_clips(cache.clips, store.read_embeddings(root), cache._checksums(), done)
    if bad:
        ids = {c.clip_id: c.index for c in cache.clips}
        store.set_pending(root, [ids[b] for b in bad])
        warnings.warn(f"{len(bad)} clip(s) of {path} were damaged on disk (rows no longer match "
                      f"their checksums: {', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}); "
                      "they are recomputed now.", stacklevel=3)
    return "resumed"


def _is_within(p: Path, folder: Path) -> bool:
    try:
        return Path(p).resolve().is_relative_to(folder.resolve())
    except OSError:
        return False
