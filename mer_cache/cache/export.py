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
from pathlib import Path

import h5py
import numpy as np

from mer_cache.cache.api import open_cache


def export_h5(cache_path: Path | str, out: Path | str, *, dtype: str = "float32") -> Path:
    """Write the whole (complete) cache to ``out`` as HDF5; returns ``out``."""
    cache = open_cache(cache_path)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    seqs = cache.load_all(dtype=np.dtype(dtype))
    row_start = np.cumsum([0] + [len(s) for s in seqs[:-1]]).astype(np.int64)
    tmp = out.with_suffix(out.suffix + ".partial")
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
    tmp.replace(out)  # a half-written export never looks finished
    return out
