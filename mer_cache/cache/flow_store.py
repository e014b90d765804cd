"""The Zarr layout of a flow cache: one (C, H, W) map per clip. Only this module (and
``store.py`` for embedding caches) touches Zarr directly.

Layout (zarr v3 group)::

    flow.zarr/
      zarr.json      root attributes "mer_cache": kind "flow", layout version, fingerprint
                     (flow method and every parameter), shape (C, H, W), dtype, the clip
                     table (clip_id, dataset, subject, label, n_frames and the *annotated*
                     onset, apex, offset, -1 when absent), summary after finalize
      flow           (n, C, H, W) float16|float32, one chunk per clip, fill NaN
      onset_used     (n,) int32, one chunk per clip: the frame the flow starts from
      apex_used      (n,) int32, one chunk per clip: the frame the flow ends on
      apex_source    (n,) uint8, one chunk per clip: 1 annotated, 2 estimated
      status         (n,) uint8, one chunk per clip: 0 pending, 1 done, 2 failed
      errors         (n,) str, one chunk per clip: why a clip failed

Why this shape: the same rules as the embedding cache (``store.py``). A clip's map is a few
kB (3 x 28 x 28 float32 = 9.4 kB), so one chunk per clip costs one small file per clip and
makes every chunk owned by one writer. The frames a clip's flow was computed from are only
known once it is extracted (an estimated apex), so they live in per-clip arrays written
with the map, not in the root attributes, which rank 0 alone writes. Completion is explicit:
``status`` is written last, after the map and the frames used.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import zarr

from mer_cache.cache.store import (
    ATTR_KEY, DONE, FAILED, INT_FIELDS, PENDING, STRING_FIELDS, clean_partial_files, consolidate,
    store_bytes,
)
from mer_cache.errors import CacheError

KIND = "flow"
FLOW_LAYOUT_VERSION = 1
APEX_SOURCES = {0: "unknown", 1: "annotated", 2: "estimated"}
ANNOTATED, ESTIMATED = 1, 2

__all__ = ["ANNOTATED", "APEX_SOURCES", "DONE", "ESTIMATED", "FAILED", "KIND", "PENDING",
           "clean_partial_files", "consolidate", "store_bytes"]


def create_flow_store(path: Path, *, fingerprint: dict, table: dict[str, list],
                      shape: tuple[int, int, int], dtype: str) -> None:
    """Create an empty flow cache with its clip table (before any writer)."""
    n = len(table["clip_id"])
    root = zarr.open_group(str(path), mode="w")
    root.create_array("flow", shape=(n, *shape), chunks=(1, *shape), dtype=dtype,
                      compressors=None, fill_value=np.nan)
    for name in ("onset_used", "apex_used"):
        root.create_array(name, shape=(n,), chunks=(1,), dtype="int32", fill_value=-1,
                          compressors=None)
    root.create_array("apex_source", shape=(n,), chunks=(1,), dtype="uint8", fill_value=0,
                      compressors=None)
    root.create_array("status", shape=(n,), chunks=(1,), dtype="uint8", fill_value=PENDING,
                      compressors=None)
    root.create_array("errors", shape=(n,), chunks=(1,), dtype=str, fill_value="")
    clips = {name: [str(v) for v in table[name]] for name in STRING_FIELDS}
    for name in INT_FIELDS:
        clips[name] = [-1 if v is None else int(v) for v in table[name]]
    root.attrs[ATTR_KEY] = {
        "kind": KIND, "layout_version": FLOW_LAYOUT_VERSION, "fingerprint": fingerprint,
        "shape": list(shape), "dtype": dtype, "n_clips": n, "clips": clips,
        "finalized": False, "summary": None,
    }


def read_kind(path: Path) -> str | None:
    """``"flow"`` for a flow cache, ``"embeddings"`` for an embedding cache, None otherwise."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            attrs = dict(zarr.open_group(str(path), mode="r").attrs).get(ATTR_KEY)
    except Exception:  # not a Zarr group at all
        return None
    if not isinstance(attrs, dict) or not attrs:
        return None  # damaged attributes: the embedding cache's reader names the problem
    return attrs.get("kind", "embeddings")


def open_flow_group(path: Path, *, mode: str = "r") -> tuple[zarr.Group, dict]:
    """Open a flow cache group and its attributes, or raise CacheError saying why not."""
    path = Path(path)
    if not path.exists():
        raise CacheError(f"No flow cache at {path}. Create one with "
                         f"`mer-cache extract --features flow --out {path} ...`.")
    kind = read_kind(path)
    if kind != KIND:
        what = ("an embedding cache" if kind == "embeddings" else "not a mer-cache cache")
        raise CacheError(f"{path} is {what}, not a flow cache. Make one with "
                         f"`mer-cache extract --features flow --out NEW.zarr ...`.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        root = zarr.open_group(str(path), mode=mode)
    attrs = dict(root.attrs)[ATTR_KEY]
    if attrs.get("layout_version") != FLOW_LAYOUT_VERSION:
        raise CacheError(f"{path} is a flow cache of layout version {attrs.get('layout_version')}"
                         f", this mer-cache reads version {FLOW_LAYOUT_VERSION}. Re-extract it "
                         "into a new --out folder.")
    return root, attrs


def write_clip(root: zarr.Group, index: int, maps: np.ndarray, *, onset: int, apex: int,
               source: int) -> None:
    """Store a clip's map and the frames it came from, then mark it done (in that order)."""
    root["flow"][index] = maps
    root["onset_used"][index] = onset
    root["apex_used"][index] = apex
    root["apex_source"][index] = source
    root["status"][index] = DONE


def write_failure(root: zarr.Group, index: int, reason: str) -> None:
    root["errors"][index] = reason
    root["status"][index] = FAILED


def read_column(root: zarr.Group, name: str) -> np.ndarray:
    return root[name][:]


def read_errors(root: zarr.Group, indices: list[int]) -> dict[int, str]:
    arr = root["errors"]
    return {i: str(arr[i]) for i in indices}


def read_maps(root: zarr.Group) -> np.ndarray:
    """Every clip's map, ``(n, C, H, W)``, in one read."""
    return root["flow"][:]


def write_summary(root: zarr.Group, attrs: dict, summary: dict | None) -> dict:
    """Record the final summary, or clear it (``None``) before a run writes again."""
    attrs = dict(attrs, summary=summary,
                 finalized=summary is not None and summary["n_done"] == attrs["n_clips"])
    root.attrs[ATTR_KEY] = attrs
    return attrs
