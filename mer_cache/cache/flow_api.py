"""Public API of the flow cache: create or resume, write clip by clip, open and read.

The flow package computes maps; this module alone decides how they are stored (layout in
:mod:`mer_cache.cache.flow_store`). Same design as the embedding cache: a fingerprint that
refuses a resume with other parameters, explicit per-clip completion, failed clips retried.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mer_cache.cache import flow_store as fs
from mer_cache.cache.api import CacheSummary, incomplete_message, table_from_clips
from mer_cache.cache.fingerprint import catalogue_sha256, diff_fingerprints
from mer_cache.cache.store import CachedClip, read_table
from mer_cache.catalogue.clip import Clip
from mer_cache.errors import CacheError

# what makes two runs write different maps; versions are provenance only
FLOW_IDENTITY_FIELDS = ("features", "method", "tvl1", "frame_size", "out_size", "interpolation",
                        "channels", "strain", "apex_rule", "onset_rule", "dtype",
                        "catalogue_sha256", "n_clips", "face")
FLOW_PROVENANCE_FIELDS = ("package_version", "opencv_version", "zarr_version")


@dataclass(frozen=True)
class FramesUsed:
    """The frames a clip's flow was computed from."""

    onset: int
    apex: int
    apex_source: str  # "annotated" or "estimated" ("unknown" while not extracted)


def build_flow_fingerprint(identity: dict, *, clips: list[Clip], opencv_version: str) -> dict:
    """The fingerprint stored in a flow cache: the flow config's identity plus the clips."""
    import zarr

    from mer_cache import __version__

    fp = dict(identity, catalogue_sha256=catalogue_sha256(clips), n_clips=len(clips),
              package_version=__version__, opencv_version=opencv_version,
              zarr_version=zarr.__version__)
    return json.loads(json.dumps(fp))


class FlowCache:
    """A flow cache opened for reading.

    Attributes
    ----------
    path : Path
    fingerprint : dict
    clips : list of CachedClip
        The clip table, annotated onset/apex/offset (-1 when absent).
    shape : tuple of int
        (C, H, W) of every clip's map.
    channels : tuple of str
    """

    def __init__(self, path: Path, *, require_complete: bool = True) -> None:
        self.path = Path(path)
        self._root, self._attrs = fs.open_flow_group(self.path)
        self.fingerprint: dict = self._attrs["fingerprint"]
        self.shape: tuple[int, int, int] = tuple(self._attrs["shape"])
        self.channels = tuple(self.fingerprint.get("channels", ()))
        self.clips: list[CachedClip] = read_table(
            {"clips": dict(self._attrs["clips"], row_start=[-1] * self._attrs["n_clips"])})
        if require_complete and not self._attrs.get("finalized"):
            s = self.summary()
            if not s.complete:
                raise CacheError(incomplete_message(self.path, s, what="flow cache",
                                                    command="mer-cache extract --features flow"))

    def summary(self) -> CacheSummary:
        status = fs.read_column(self._root, "status")
        failed_idx = [int(i) for i in np.flatnonzero(status == fs.FAILED)]
        reasons = fs.read_errors(self._root, failed_idx)
        return CacheSummary(n_clips=len(self.clips), n_done=int((status == fs.DONE).sum()),
                            n_failed=len(failed_idx),
                            failed={self.clips[i].clip_id: reasons[i] for i in failed_idx})

    def load_all(self, dtype=np.float32) -> np.ndarray:
        """Every clip's map, ``(n, C, H, W)``, in cache order."""
        return fs.read_maps(self._root).astype(dtype, copy=False)

    def frames_used(self) -> list[FramesUsed]:
        """Per clip, the onset and apex frames (0-based) and whether the apex was annotated."""
        onset = fs.read_column(self._root, "onset_used")
        apex = fs.read_column(self._root, "apex_used")
        source = fs.read_column(self._root, "apex_source")
        return [FramesUsed(int(o), int(a), fs.APEX_SOURCES[int(s)])
                for o, a, s in zip(onset, apex, source)]

    def info(self) -> dict:
        used = self.frames_used()
        return {"path": str(self.path), "kind": fs.KIND, "fingerprint": self.fingerprint,
                "clips": len(self.clips), "shape": list(self.shape),
                "apex_annotated": sum(u.apex_source == "annotated" for u in used),
                "apex_estimated": sum(u.apex_source == "estimated" for u in used),
                "bytes_on_disk": fs.store_bytes(self.path), "status": self.summary().to_dict()}


def open_flow_cache(path: Path | str, *, require_complete: bool = True) -> FlowCache:
    """Open a flow cache for reading.

    Raises
    ------
    CacheError
        When the folder is not a flow cache, or (with ``require_complete``) when any clip is
        not done; the message says to rerun the extraction.
    """
    return FlowCache(Path(path), require_complete=require_complete)


def cache_kind(path: Path | str) -> str | None:
    """``"flow"``, ``"embeddings"``, or None when ``path`` is not a mer-cache cache."""
    return fs.read_kind(Path(path)) if Path(path).exists() else None


class FlowCacheWriter:
    """Writes clips' maps into a flow cache (one writer)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._root, self._attrs = fs.open_flow_group(self.path, mode="r+")
        self.clips = FlowCache(self.path, require_complete=False).clips
        self.shape = tuple(self._attrs["shape"])

    def pending(self) -> list[int]:
        """Clips not done yet (failed clips are retried)."""
        status = fs.read_column(self._root, "status")
        return [int(i) for i in np.flatnonzero(status != fs.DONE)]

    def write(self, index: int, maps: np.ndarray, used: FramesUsed) -> None:
        clip = self.clips[index]
        if maps.shape != self.shape:
            raise CacheError(f"{clip.clip_id}: got a map of shape {maps.shape}, the cache "
                             f"holds {self.shape}.")
        if not np.isfinite(maps).all():
            raise CacheError(f"{clip.clip_id}: the flow map holds NaN/inf values.")
        source = {"annotated": fs.ANNOTATED, "estimated": fs.ESTIMATED}[used.apex_source]
        fs.write_clip(self._root, index, maps.astype(self._attrs["dtype"], copy=False),
                      onset=used.onset, apex=used.apex, source=source)

    def fail(self, index: int, reason: str) -> None:
        fs.write_failure(self._root, index, reason)

    def finalize(self) -> CacheSummary:
        """Record the summary in the root attributes and consolidate the metadata."""
        summary = FlowCache(self.path, require_complete=False).summary()
        fs.write_summary(self._root, self._attrs, summary.to_dict())
        fs.consolidate(self.path)
        return summary


def prepare_flow_cache(path: Path | str, *, fingerprint: dict, clips: list[Clip],
                       shape: tuple[int, int, int]) -> str:
    """Create the flow cache, or check that the existing one is for the same run.

    Returns "created" or "resumed".

    Raises
    ------
    CacheError
        Naming every identity field that differs, when ``path`` holds a flow cache made
        with another fingerprint, or when it holds something else.
    """
    path = Path(path)
    if path.exists() and any(path.iterdir()):
        _, attrs = fs.open_flow_group(path)
        identity, provenance = diff_fingerprints(
            attrs["fingerprint"], fingerprint, identity_fields=FLOW_IDENTITY_FIELDS,
            provenance_fields=FLOW_PROVENANCE_FIELDS)
        if identity:
            raise CacheError(f"{path} already holds a flow cache made with a different "
                             f"fingerprint: {'; '.join(identity)}. Use another --out folder, "
                             "or delete this one to start over.")
        if provenance:
            warnings.warn(f"Resuming {path} with other versions ({'; '.join(provenance)}).",
                          stacklevel=2)
        fs.clean_partial_files(path)
        root, attrs = fs.open_flow_group(path, mode="r+")
        fs.write_summary(root, attrs, None)  # readers must not trust an old summary now
        return "resumed"
    fs.create_flow_store(path, fingerprint=fingerprint, table=table_from_clips(clips),
                         shape=tuple(shape), dtype=fingerprint["dtype"])
    return "created"
