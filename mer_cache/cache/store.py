"""The Zarr layout of an embedding cache. Only this module touches Zarr directly.

Layout (zarr v3 group)::

    cache.zarr/
      zarr.json            root attributes "mer_cache": layout version, fingerprint,
                           chunk_rows, total_rows, the clip table (columns: clip_id,
                           dataset, subject, label, n_frames, onset, apex, offset with -1
                           when not annotated, row_start, unit, action_units: the
                           annotation's AU cell as text, "" when none; caches written
                           before it read as ""), summary after finalize
      embeddings           (total_rows, D) float16|float32, chunks (chunk_rows, D),
                           uncompressed (embeddings barely compress), fill NaN
      status               (n,) uint8, one chunk per clip: 0 pending, 1 done, 2 failed
      errors               (n,) str, one chunk per clip: why a clip failed
      checksums            (n,) int64, one chunk per clip: CRC-32 of the clip's stored rows,
                           written with them (-1: none); copied into the clip table
                           ("crc32") at finalization so a reader needs no extra reads

Why this shape:
- One big 2-D array read in a few large chunks loads at close to raw disk speed; one
  array per clip would cost a metadata round trip per clip.
- Clips are *packed* into chunks so that no clip straddles a chunk boundary unless it is
  longer than a chunk, in which case it starts on a boundary and owns whole chunks. A
  "unit" (a chunk, or the run of chunks of one long clip) is therefore owned by exactly
  one writer: several processes never write the same chunk (Zarr is only safe then).
- The clip table lives in the root attributes (written by rank 0 only, at creation, at
  finalization, and when a rerun aligns a failed clip's face again), so opening a cache is
  one small JSON read, not one per column.
- Completion is explicit: a clip is done when its `status` chunk says so, written only
  after its rows were stored (Zarr's local store renames each chunk file into place, so a
  kill leaves either the old or the new chunk, never a torn one). A missing chunk reads as
  NaN, never as "done".
- Damage after the fact (a chunk file deleted or cut short, bytes flipped on disk) is
  caught by the per-clip CRC-32: readers refuse a clip whose rows no longer match it,
  ``cache verify`` names such clips and marks them not done, and a resuming extraction
  recomputes them. A chunk file of the wrong size reads as missing (all NaN).
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading
import time
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr

from mer_cache.errors import CacheError

NO_CHECKSUM = -1  # fill value of `checksums`: no CRC recorded (old cache, or not written)
LOST_CHECKSUM = -2  # a checksum chunk file of the wrong size: the clip cannot be trusted
# zarr's own temp files carry no owner; one this old belongs to no live writer
STALE_PARTIAL_S = 600.0
_REQUIRED_ATTRS = {"layout_version": int, "fingerprint": dict, "chunk_rows": int,
                   "total_rows": int, "dim": int, "dtype": str, "n_clips": int, "clips": dict}

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
    action_units: str = ""  # the annotation's AU cell as written (``4+7``); "" when not coded


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
    clips["action_units"] = [str(v) for v in table.get("action_units", [""] * n)]
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
    root.create_array("checksums", shape=(n,), chunks=(1,), dtype="int64",
                      fill_value=NO_CHECKSUM, compressors=None)
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


def is_cache_folder(path: Path) -> bool:
    """Whether ``path`` looks like a cache (has a root ``zarr.json``), damaged or not."""
    return (Path(path) / "zarr.json").is_file()


def open_group(path: Path, *, mode: str = "r") -> tuple[zarr.Group, dict]:
    """Open a cache group and its attributes, or raise CacheError saying why not.

    The root ``zarr.json`` is read and checked here (present, JSON, the ``mer_cache``
    attribute of the right shape, the arrays present), so a damaged cache is named as such
    instead of failing later inside Zarr.
    """
    path = Path(path)
    meta = path / "zarr.json"
    if not path.exists():
        raise CacheError(f"No cache at {path}. Create one with `mer-cache extract --out {path} ...`.")
    if not path.is_dir():
        raise CacheError(f"{path} is a file, not a cache folder. Pass the .zarr folder that "
                         "`mer-cache extract` wrote.")
    if not meta.is_file():
        raise CacheError(f"{meta} is missing, so {path} is not a readable cache (a cache folder "
                         "holds zarr.json next to embeddings/ and status/). If extract wrote this "
                         "folder, its metadata was deleted: extract again into a new --out.")
    try:
        doc = json.loads(meta.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        raise CacheError(f"{meta} is not valid JSON ({exc}), so the cache {path} cannot be read. "
                         "Restore the file from a backup, or extract again into a new --out.") from None
    attrs = doc.get("attributes", {}).get(ATTR_KEY) if isinstance(doc, dict) and isinstance(
        doc.get("attributes"), dict) else None
    if attrs is None:
        raise CacheError(f"{path} is a Zarr folder but its {meta.name} has no '{ATTR_KEY}' "
                         "attribute: it was not written by `mer-cache extract`. Pass a cache folder "
                         "written by extract.")
    if isinstance(attrs, dict) and attrs.get("kind", "embeddings") != "embeddings":
        raise CacheError(f"{path} is a {attrs['kind']} cache, not an embedding cache: heads read "
                         f"it with `mer-cache train-head --arch ststnet|offapexnet`.")
    _check_attrs(attrs, meta)
    for name in ("embeddings", "status"):
        if not (path / name / "zarr.json").is_file():
            raise CacheError(f"The cache {path} has no '{name}' array ({path / name / 'zarr.json'} "
                             "is missing). Extract again into a new --out.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            root = zarr.open_group(str(path), mode=mode)
    except OSError:
        raise  # permissions, read-only disks: the CLI names the errno and the fix
    except Exception as exc:  # zarr raises several types for a folder that is not a group
        raise CacheError(f"{path} is not a readable Zarr cache ({type(exc).__name__}: {exc}). "
                         "Pass a cache folder written by `mer-cache extract`.") from None
    return root, attrs


def _check_attrs(attrs: object, meta: Path) -> None:
    """Raise CacheError naming ``meta`` when the ``mer_cache`` attribute is malformed."""
    def bad(what: str) -> CacheError:
        return CacheError(f"The '{ATTR_KEY}' attribute in {meta} is damaged: {what}. The file was "
                          "edited or corrupted; restore it, or extract again into a new --out.")

    if not isinstance(attrs, dict):
        raise bad(f"it is a {type(attrs).__name__}, not an object")
    if attrs.get("layout_version") != LAYOUT_VERSION and isinstance(attrs.get("layout_version"), int):
        raise CacheError(f"{meta.parent} is a mer-cache cache of layout version "
                         f"{attrs['layout_version']}, this version reads {LAYOUT_VERSION}. "
                         "Re-extract into a new --out folder.")
    for key, kind in _REQUIRED_ATTRS.items():
        if not isinstance(attrs.get(key), kind) or isinstance(attrs.get(key), bool):
            raise bad(f"'{key}' is {json.dumps(attrs.get(key))[:40]}, expected a {kind.__name__}")
    n = attrs["n_clips"]
    clips = attrs["clips"]
    for col in (*STRING_FIELDS, *INT_FIELDS, "row_start", "unit"):
        if not isinstance(clips.get(col), list) or len(clips[col]) != n:
            raise bad(f"clip column '{col}' is not a list of {n} values")
    if attrs["chunk_rows"] < 1 or attrs["dim"] < 1:
        raise bad("chunk_rows and dim must be positive")


def read_table(attrs: dict) -> list[CachedClip]:
    cols = attrs["clips"]
    aus = cols.get("action_units") or [""] * len(cols["clip_id"])  # absent in older caches
    return [
        CachedClip(index=i, clip_id=cols["clip_id"][i], dataset=cols["dataset"][i],
                   subject=cols["subject"][i], label=cols["label"][i],
                   n_frames=cols["n_frames"][i], onset=cols["onset"][i], apex=cols["apex"][i],
                   offset=cols["offset"][i], row_start=cols["row_start"][i], action_units=aus[i])
        for i in range(len(cols["clip_id"]))
    ]


def read_column(attrs: dict, name: str) -> list | None:
    """An extra clip-table column (see :func:`create_store`), or None when absent."""
    return attrs["clips"].get(name)


def write_column_values(root: zarr.Group, attrs: dict, name: str,
                        values: dict[int, object]) -> dict:
    """Replace some clips' values of an extra clip-table column (rank 0, before writers start).

    Zarr replaces the root ``zarr.json`` through a renamed temp file, so a kill leaves the
    old table or the new one; it is then flushed to disk, so a crash after this returns
    keeps the new values. Status, rows and checksums live in other files, untouched.
    Returns the new attributes.
    """
    clips = dict(attrs["clips"])
    column = list(clips[name])
    for i, value in values.items():
        column[i] = value
    attrs = dict(attrs, clips=dict(clips, **{name: column}))
    root.attrs[ATTR_KEY] = attrs
    folder = getattr(root.store, "root", None)
    if folder is not None:  # a local store: flush the file, then its rename (the folder)
        for target in (Path(folder) / "zarr.json", Path(folder)):
            fd = os.open(target, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    return attrs


def read_units(attrs: dict) -> np.ndarray:
    return np.asarray(attrs["clips"]["unit"], dtype=np.int64)


def read_status(root: zarr.Group) -> np.ndarray:
    """Per-clip status; a status chunk file of the wrong size reads as PENDING (redone)."""
    return _read_vector(root["status"], damaged=PENDING)


def read_errors(root: zarr.Group, indices: list[int]) -> dict[int, str]:
    arr = root["errors"]
    out = {}
    for i in indices:
        try:
            out[i] = str(arr[i])
        except Exception:  # noqa: BLE001 - a damaged chunk of a message must not hide the rest
            out[i] = "(the recorded reason is unreadable)"
    return out


def _read_vector(arr: zarr.Array, *, damaged) -> np.ndarray:
    """A 1-D array of one-element chunks; chunk files of the wrong size read as ``damaged``.

    Zarr itself fails on such a file (a traceback); reading the files directly also saves
    Zarr's per-chunk overhead for a cache of thousands of clips.
    """
    base = _local_chunk_dir(arr)
    if base is None or arr.chunks != (1,):
        try:
            return arr[:]
        except Exception as exc:  # noqa: BLE001 - zarr raises many types for a damaged chunk
            raise CacheError(f"The array {arr.path} of the cache {getattr(arr.store, 'root', '')} "
                             f"cannot be read ({type(exc).__name__}: {exc}). Extract again into a "
                             "new --out.") from None
    dtype = np.dtype(arr.dtype)
    out = np.full(arr.shape, arr.metadata.fill_value, dtype=dtype)
    for i in range(arr.shape[0]):
        try:
            data = (base / str(i)).read_bytes()
        except FileNotFoundError:
            continue  # never written: the fill value
        if len(data) == dtype.itemsize:
            out[i] = np.frombuffer(data, dtype)[0]
        else:
            out[i] = damaged
    return out


def rows_checksum(rows: np.ndarray) -> int:
    """CRC-32 of a clip's rows as stored (C order, storage dtype); ~7 GB/s with zlib."""
    return zlib.crc32(np.ascontiguousarray(rows))


def write_rows(arrays: tuple, clip: CachedClip, rows: np.ndarray) -> None:
    """Store a clip's rows and their checksum, then mark it done (see module docstring).

    Uncompressed arrays on a local store are written chunk file by chunk file, each
    through a temp file renamed into place, as Zarr's local store does itself; this skips
    Zarr's per-call machinery, which cost ~10 ms a clip (a fifth of a fast trunk's time).
    """
    emb, status, checksums = arrays  # opened once by the writer: a lookup re-reads metadata
    rows = np.ascontiguousarray(rows, dtype=emb.dtype)
    crc = np.array([rows_checksum(rows)], np.int64)
    if not _write_uncompressed_local(emb, clip.row_start, rows):
        emb[clip.row_start:clip.row_start + clip.n_frames] = rows
    if checksums is not None and not _write_uncompressed_local(checksums, clip.index, crc):
        checksums[clip.index] = crc[0]
    if not _write_uncompressed_local(status, clip.index, np.array([DONE], np.uint8)):
        status[clip.index] = DONE


def writer_arrays(root: zarr.Group) -> tuple:
    """The arrays :func:`write_rows` takes, opened once per writer (no checksums: old cache)."""
    checksums = root["checksums"] if "checksums" in root else None
    return root["embeddings"], root["status"], checksums


def read_checksums(root: zarr.Group, attrs: dict) -> np.ndarray | None:
    """Per-clip CRC-32 (-1: none), from the clip table when finalized, else the array."""
    if attrs.get("finalized") and isinstance(attrs["clips"].get("crc32"), list):
        return np.asarray(attrs["clips"]["crc32"], dtype=np.int64)
    if "checksums" not in root:
        return None  # a cache written before checksums existed
    return _read_vector(root["checksums"], damaged=LOST_CHECKSUM)


def set_pending(root: zarr.Group, indices: list[int]) -> None:
    """Mark clips not done (their rows are damaged), so the next extraction recomputes them."""
    status = root["status"]
    for i in indices:
        status[i] = PENDING


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
    if data.size != math.prod(shape):  # cut short: as missing (its clips are recomputed)
        return np.full(shape, fill, dtype=dtype)
    return data.reshape(shape)


def write_summary(root: zarr.Group, attrs: dict, summary: dict | None,
                  checksums: np.ndarray | None = None) -> dict:
    """Record the final summary (rank 0), or clear it (``None``) before writers start.

    A reader trusts a finalized summary (and the checksums copied with it) instead of
    reading every status chunk; every extraction run clears it first, so it can never
    describe an older state.
    """
    clips = dict(attrs["clips"])
    if checksums is not None:
        clips["crc32"] = [int(v) for v in checksums]
    attrs = dict(attrs, summary=summary, clips=clips,
                 finalized=summary is not None and summary["n_done"] == attrs["n_clips"])
    root.attrs[ATTR_KEY] = attrs
    return attrs


def _partial_is_stale(p: Path, now: float) -> bool:
    """Whether a temp file belongs to no live writer.

    Ours are named ``<chunk>.<pid>.<thread>.partial`` (see :func:`_write_uncompressed_local`):
    stale when that process is gone. Zarr's carry a random name: stale when older than
    STALE_PARTIAL_S, since a live writer renames its file within milliseconds.
    """
    parts = p.name.split(".")
    if len(parts) >= 4 and parts[-3].isdigit() and parts[-2].isdigit():
        try:
            os.kill(int(parts[-3]), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False  # alive, owned by another user
        return False
    try:
        return now - p.stat().st_mtime > STALE_PARTIAL_S
    except FileNotFoundError:
        return False  # renamed into place meanwhile


def clean_partial_files(path: Path) -> int:
    """Remove temp files that killed writers left behind, never those of live writers.

    Deleting a live writer's temp file would make its rename fail, or lose its chunk.
    """
    n, now = 0, time.time()
    for p in Path(path).rglob("*.partial"):
        if _partial_is_stale(p, now):
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
                if f.readinto(memoryview(view).cast("B")) != view.nbytes or f.read(1):
                    view[...] = np.nan  # cut short or too long: as missing (see _read_chunk)
        except FileNotFoundError:
            view[...] = np.nan  # a missing chunk reads as the fill value, as in Zarr
    return out


def damaged_chunks(root: zarr.Group) -> dict[int, str]:
    """Chunk index -> what is wrong with its file ("missing", "N of M bytes"), local only."""
    arr = root["embeddings"]
    base = _local_chunk_dir(arr)
    if base is None:
        return {}
    rows, dim = arr.shape
    chunk_rows = arr.chunks[0]
    want = chunk_rows * dim * np.dtype(arr.dtype).itemsize
    out = {}
    for k in range(math.ceil(rows / chunk_rows)):
        path = base / str(k) / "0"
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            out[k] = f"chunk file {path} is missing"
            continue
        if size != want:
            out[k] = f"chunk file {path} holds {size} of {want} bytes"
    return out


def store_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def attrs_json(attrs: dict) -> str:
    return json.dumps(attrs, indent=2, sort_keys=True)
