"""Export a cache to one HDF5 file that MATLAB, h5py and R open without Zarr.

Layout of the file (MATLAB's ``h5read`` shows every array with its dimensions
reversed, so ``embeddings`` reads there as D x total_rows)::

    /embeddings          (total_rows, D) float32  (MATLAB has no half float)
    /clips/row_start     (n,) int64   0-based; MATLAB columns row_start+1 : row_start+n_frames
    /clips/n_frames      (n,) int32
    /clips/onset|apex|offset (n,) int32, 0-based frame index, -1 when not annotated
    /clips/clip_id|dataset|subject|label (n,) variable-length UTF-8 strings
    attribute "fingerprint" on /  JSON text
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np

from mer_cache.cache.api import open_cache
from mer_cache.errors import CacheError


def export_h5(cache_path: Path | str, out: Path | str, *, dtype: str = "float32") -> Path:
    """Write the whole (complete) cache to ``out`` as HDF5; returns ``out``.

    The file is written under a temp name and renamed into place; on any failure (a full
    or read-only disk) the temp file is removed, so nothing half-written is left.

    Raises
    ------
    CacheError
        When the cache is incomplete or damaged, or ``out`` is an existing folder.
    """
    out = Path(out)
    if out.is_dir():
        raise CacheError(f"The export target {out} is an existing folder. Pass the .h5 file to "
                         f"write, e.g. {out / 'embeddings.h5'}.")
    cache = open_cache(cache_path)
    seqs = cache.load_all(dtype=np.dtype(dtype))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.partial")
    try:
        _write_h5(tmp, cache, seqs, dtype)
        tmp.replace(out)  # a half-written export never looks finished
    finally:
        tmp.unlink(missing_ok=True)
    return out


def _write_h5(tmp: Path, cache, seqs: list[np.ndarray], dtype: str) -> None:
    row_start = np.cumsum([0] + [len(s) for s in seqs[:-1]]).astype(np.int64)
    with h5py.File(tmp, "w") as f:
        f.attrs["fingerprint"] = json.dumps(cache.fingerprint, sort_keys=True)
        f.attrs["format"] = "mer-cache embeddings v1"
        emb = np.concatenate(seqs, axis=0) if seqs else np.zeros((0, cache.dim), dtype)
        f.create_dataset("embeddings", data=emb, chunks=True if len(emb) else None)
        g = f.create_group("clips")
        g.create_dataset("row_start", data=row_start)
        for name in ("n_frames", "onset", "apex", "offset"):
            g.create_dataset(name, data=np.array([getattr(c, name) for c in cache.clips], np.int32))
        text = h5py.string_dtype("utf-8")
        for name in ("clip_id", "dataset", "subject", "label"):
            g.create_dataset(name, data=[getattr(c, name) for c in cache.clips], dtype=text)
