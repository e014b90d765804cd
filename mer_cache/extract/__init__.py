"""Batch extraction of per-frame embeddings into a cache (single process or torchrun).

The job API (catalogue -> trunk -> extractor, fold caches) is :mod:`mer_cache.pipelines`.
"""

from mer_cache.extract.extractor import ExtractOptions, ExtractResult, extract_clips, resolve_device

__all__ = ["ExtractOptions", "ExtractResult", "extract_clips", "resolve_device"]
