"""The caches: per-clip ``(T, D)`` embedding sequences, or per-clip ``(C, H, W)`` flow maps,
in Zarr with a fingerprint.

See :mod:`mer_cache.cache.store` for the layout and why it is shaped that way.
"""

from mer_cache.cache.api import (
    CacheSummary, CacheWriter, EmbeddingCache, open_cache, prepare_cache, verify_cache,
)
from mer_cache.cache.export import export_h5
from mer_cache.cache.fingerprint import build_fingerprint, catalogue_sha256
from mer_cache.cache.flow_api import (
    FlowCache, FlowCacheWriter, FramesUsed, build_flow_fingerprint, cache_kind, open_flow_cache,
    prepare_flow_cache,
)
from mer_cache.cache.store import CachedClip

__all__ = ["CacheSummary", "CacheWriter", "CachedClip", "EmbeddingCache", "FlowCache",
           "FlowCacheWriter", "FramesUsed", "build_fingerprint", "build_flow_fingerprint",
           "cache_kind", "catalogue_sha256", "export_h5", "open_cache", "open_flow_cache",
           "prepare_cache", "prepare_flow_cache", "verify_cache"]
