"""The Zarr layout of an embedding cache. Only this module touches Zarr directly.

Layout (zarr v3 group)::

    cache.zarr/
      zarr.json            root attributes "mer_cache": layout version, fingerprint,
                           chunk_rows, total_rows, the clip table (columns: clip_id,
                           dataset, subject, label, n_frames, onset, apex, offset with -1
                           when not annotated, row_start, unit), summary after finalize
      embeddings           (total_rows, D) float16|float32, chunks (chunk_rows, D),
                           uncompressed (embeddings barely compress), fill NaN
      status               (n,) uint8, one chunk per clip: 0 pending, 1 done, 2 failed
      errors               (n,) str, one chunk per clip: why a clip failed

Why this shape:
- One big 2-D array read in a few large chunks loads at close to raw disk speed; one
  array per clip would cost a metadata round trip per clip.
- Clips are *packed* into chunks so that no clip straddles a chunk boundary unless it is
  longer than a chunk, in which case it starts on a boundary and owns whole chunks. A
  "unit" (a chunk, or the run of chunks of one long clip) is therefore owned by exactly
  one writer: several processes never write the same chunk (Zarr is only safe then).
- The clip table lives in the root attributes (written by rank 0 only, at creation and
  at finalization), so opening a cache is one small JSON read, not one per column.
- Completion is explicit: a clip is done when its `status` chunk says so, written only
  after its rows were stored (Zarr's local store renames each chunk file into place, so a
  kill leaves either the old or the new chunk, never a torn one). A missing chunk reads as
  NaN, never as "done".
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr

from mer_cache.errors import CacheError

LAYOUT_VERSION = 1
ATTR_KEY = "mer_cache"
PENDING, DONE, FAILED = 0, 1, 2
DEFAULT_CHUNK_BYTES = 4 * 2**20  # >= ~1 MB chunks read well (REFERENCE 7)
MIN_UNITS = 16  # enough units to spread a small cache over several writers
STRING_FIELDS = ("clip_id", "dataset", "subject", "label")
INT_FIELDS = ("n_frames", "onset", "apex", "offset")


@dataclass(frozen=True)
class CachedClip:
    """One row of the clip table."""

    index: int
    clip_id: str
    dataset: str
    subject: str
    label: str
    n_frames: int
    onset: int
    apex: int
    offset: int
    row_start: int


def choose_chunk_rows(n_frames: list[int], dim: int, itemsize: int,
                      chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> int:
    """Rows per chunk: ~``chunk_bytes`` per chunk, but at least MIN_UNITS units in all."""
    total = max(1, sum(n_frames))
    rows = max(1, chunk_bytes // (dim * itemsize))
    rows = min(rows, max(64, math.ceil(total / MIN_UNITS)))
    return int(max(rows, 1))


def pack_rows(n_frames: list[int], chunk_rows: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Place clips in rows so no clip crosses a chunk boundary it could avoid.

    Returns ``(row_start, unit, total_rows)``: the first row of every clip, the unit
    (write-ownership group) of every clip, and the array length (whole chunks).
    """
    row_start = np.zeros(len(n_frames), dtype=np.int64)
    unit = np.zeros(len(n_frames), dtype=np.int64)
    row, u = 0, -1
    chunk_of_unit_start = -1
    for i, t in enumerate(n_frames):
        used = row % chunk_rows
        if t > chunk_rows or used == 0 or used + t > chunk_rows:
            row = math.ceil(row / chunk_rows) * chunk_rows  # next chunk boundary
        chunk = row // chunk_rows
        if chunk != chunk_of_unit_start or t > chunk_rows:
            u += 1
            chunk_of_unit_start = chunk
        row_start[i] = row
        unit[i] = u
        row += t
        if t > chunk_rows:  # a long clip owns its chunks; the next clip starts fresh
            row = math.ceil(row / chunk_rows) * chunk_rows
            chunk_of_unit_start = -1
    total_rows = max(chunk_rows, math.ceil(row / chunk_rows) * chunk_rows)
    return row_start, unit, int(total_rows)


def create_store(path: Path, *, fingerprint: dict, table: dict[str, list],
                 dim: int, dtype: str, chunk_bytes: int = DEFAULT_CHUNK_BYTES,
                 extra_columns: dict[str, list] | None = None) -> None:
    """Create an empty cache with its clip table (rank 0 only, before any writer).

    ``extra_columns`` are stored in the clip table as they are (JSON values, one per
    clip): how a stage before the trunk treated each clip, e.g. its face alignment.
    """
    n_frames = [int(t) for t in table["n_frames"]]
    itemsize = np.dtype(dtype).itemsize
    chunk_rows = choose_chunk_rows(n_frames, dim, itemsize, chunk_bytes)
    row_start, unit, total_rows = pack_rows(n_frames, chunk_rows)
    root = zarr.open_group(str(path), mode="w")
    root.create_array("embeddings", shape=(total_rows, dim), chunks=(chunk_rows, dim),
                      dtype=dtype, compressors=None, fill_value=np.nan)
    n = len(n_frames)
    clips = {name: [str(v) for v in table[name]] for name in STRING_FIELDS}
    for name in INT_FIELDS:
        clips[name] = [-1 if v is None else int(v) for v in table[name]]
    clips["row_start"] = row_start.tolist()
    clips["unit"] = unit.tolist()
    for name, values in (extra_columns or {}).items():
        if name in clips or len(values) != len(n_frames):
            raise CacheError(f"Clip-table column {name!r} clashes or has {len(values)} "
                             f"values for {len(n_frames)} clips.")
        clips[name] = list(values)
    root.create_array("status", shape=(n,), chunks=(1,), dtype="uint8", fill_value=PENDING,
                      compressors=None)
    root.create_array("errors", shape=(n,), chunks=(1,), dtype=str, fill_value="")
    root.attrs[ATTR_KEY] = {
        "layout_version": LAYOUT_VERSION,
        "fingerprint": fingerprint,
        "chunk_rows": chunk_rows,
        "total_rows": total_rows,
        "dim": dim,
        "dtype": dtype,
        "n_clips": n,
        "clips": clips,
        "finalized": False,
        "summary": None,
    }


def open_group(path: Path, *, mode: str = "r") -> tuple[zarr.Group, dict]:
    """Open a cache group and its attributes, or raise CacheError saying why not."""
    path = Path(path)
    if not path.exists():
        raise CacheError(f"No cache at {path}. Create one with `mer-cache extract --out {path} ...`.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            root = zarr.open_group(str(path), mode=mode)
        attrs = dict(root.attrs).get(ATTR_KEY)
    except Exception as exc:  # zarr raises several types for a folder that is not a group
        raise CacheError(f"{path} is not a readable Zarr cache ({exc}). "
                         "Point --cache at a folder written by `mer-cache extract`.") from None
    if not attrs or attrs.get("layout_version") != LAYOUT_VERSION:
        raise CacheError(f"{path} is a Zarr group but not a mer-cache cache of layout "
                         f"version {LAYOUT_VERSION}. Re-extract into a new --out folder.")
    return root, attrs


def read_table(attrs: dict) -> list[CachedClip]:
    cols = attrs["clips"]
    return [
        CachedClip(index=i, clip_id=cols["clip_id"][i], dataset=cols["dataset"][i],
                   subject=cols["subject"][i], label=cols["label"][i],
                   n_frames=cols["n_frames"][i], onset=cols["onset"][i], apex=cols["apex"][i],
                   offset=cols["offset"][i], row_start=cols["row_start"][i])
        for i in range(len(cols["clip_id"]))
    ]


def read_column(attrs: dict, name: str) -> list | None:
    """An extra clip-table column (see :func:`create_store`), or None when absent."""
    return attrs["clips"].get(name)


def read_units(attrs: dict) -> np.ndarray:
    return np.asarray(attrs["clips"]["unit"], dtype=np.int64)


def read_status(root: zarr.Group) -> np.ndarray:
    return root["status"][:]


def read_errors(root: zarr.Group, indices: list[int]) -> dict[int, str]:
    arr = root["errors"]
    return {i: str(arr[i]) for i in indices}


def write_rows(arrays: tuple[zarr.Array, zarr.Array], clip: CachedClip, rows: np.ndarray) -> None:
    """Store a clip's rows, then mark it done (in that order: see module docstring).

    Uncompressed arrays on a local store are written chunk file by chunk file, each
    through a temp file renamed into place, as Zarr's local store does itself; this skips
    Zarr's per-call machinery, which cost ~10 ms a clip (a fifth of a fast trunk's time).
    """
    emb, status = arrays  # opened once by the writer: a group lookup re-reads metadata
    if not (_write_uncompressed_local(emb, clip.row_start, rows)
            and _write_uncompressed_local(status, clip.index, np.array([DONE], np.uint8))):
        emb[clip.row_start:clip.row_start + clip.n_frames] = rows
        status[clip.index] = DONE


def writer_arrays(root: zarr.Group) -> tuple[zarr.Array, zarr.Array]:
    """The arrays :func:`write_rows` takes, opened once per writer."""
    return root["embeddings"], root["status"]


def write_failure(root: zarr.Group, index: int, reason: str) -> None:
    root["errors"][index] = reason
    root["status"][index] = FAILED


def _local_chunk_dir(arr: zarr.Array) -> Path | None:
    """Folder of an array's chunk files, when it is uncompressed, native-endian and local."""
    meta = arr.metadata
    codecs = getattr(meta, "codecs", ())
    root_dir = getattr(arr.store, "root", None)
    if (root_dir is None or len(codecs) != 1 or type(codecs[0]).__name__ != "BytesCodec"
            or getattr(getattr(codecs[0], "endian", None), "value", sys.byteorder) != sys.byteorder
            or getattr(meta.chunk_key_encoding, "separator", None) != "/"):
        return None
    return Path(root_dir) / arr.path / "c"


def _write_uncompressed_local(arr: zarr.Array, start: int, values: np.ndarray) -> bool:
    """Write ``values`` at rows ``start..`` straight into chunk files; False if not possible."""
    base = _local_chunk_dir(arr)
    if base is None:
        return False
    chunk_rows = arr.chunks[0]
    tail = tuple(arr.shape[1:])
    dtype = np.dtype(arr.dtype)
    values = np.ascontiguousarray(values, dtype=dtype)
    stop = start + len(values)
    for k in range(start // chunk_rows, math.ceil(stop / chunk_rows)):
        lo, hi = k * chunk_rows, min((k + 1) * chunk_rows, arr.shape[0])
        path = base.joinpath(str(k), *["0"] * len(tail))  # zarr v3 default keys: c/<k>/0
        chunk = _read_chunk(path, (hi - lo, *tail), dtype, arr.metadata.fill_value)
        a, b = max(start, lo), min(stop, hi)
        chunk[a - lo:b - lo] = values[a - start:b - start]
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.partial")
        tmp.write_bytes(chunk.tobytes())
        os.replace(tmp, path)  # atomic: a kill leaves the old chunk or the new one
    return True


def _read_chunk(path: Path, shape: tuple, dtype: np.dtype, fill) -> np.ndarray:
    try:
        data = np.fromfile(path, dtype=dtype)
    except FileNotFoundError:
        return np.full(shape, fill, dtype=dtype)
    return data.reshape(shape)


def write_summary(root: zarr.Group, attrs: dict, summary: dict | None) -> dict:
    """Record the final summary (rank 0), or clear it (``None``) before writers start.

    A reader trusts a finalized summary instead of reading every status chunk; every
    extraction run clears it first, so it can never describe an older state.
    """
    attrs = dict(attrs, summary=summary,
                 finalized=summary is not None and summary["n_done"] == attrs["n_clips"])
    root.attrs[ATTR_KEY] = attrs
    return attrs


def clean_partial_files(path: Path) -> int:
    """Remove temp files a killed writer left behind (Zarr writes ``*.partial`` then renames)."""
    n = 0
    for p in Path(path).rglob("*.partial"):
        p.unlink(missing_ok=True)
        n += 1
    return n


def consolidate(path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        zarr.consolidate_metadata(str(path))


def read_embeddings(root: zarr.Group, dtype=None) -> np.ndarray:
    """The whole ``(total_rows, D)`` array in one pass.

    For an uncompressed array on a local store, chunk files are read straight into the
    output buffer (``readinto``): no per-chunk decode and no extra copy, which is what
    lets a load run near raw disk speed. Anything else goes through Zarr.
    """
    arr = root["embeddings"]
    out = _read_uncompressed_local(arr)
    if out is None:
        out = arr[:]
    return out if dtype is None else out.astype(dtype, copy=False)


def _read_uncompressed_local(arr: zarr.Array) -> np.ndarray | None:
    base = _local_chunk_dir(arr)
    if base is None:
        return None
    rows, dim = arr.shape
    chunk_rows = arr.chunks[0]
    out = np.empty((rows, dim), dtype=np.dtype(arr.dtype))
    for k in range(math.ceil(rows / chunk_rows)):
        view = out[k * chunk_rows:(k + 1) * chunk_rows]
        path = base / str(k) / "0"
        try:
            with open(path, "rb") as f:
                if f.readinto(memoryview(view).cast("B")) != view.nbytes:
                    return None  # unexpected size: let Zarr handle it
        except FileNotFoundError:
            view[...] = np.nan  # a missing chunk reads as the fill value, as in Zarr
    return out


def store_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def attrs_json(attrs: dict) -> str:
    return json.dumps(attrs, indent=2, sort_keys=True)
