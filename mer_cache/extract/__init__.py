"""Batch extraction of per-frame embeddings into a cache (single process or torchrun)."""

from mer_cache.extract.extractor import ExtractOptions, ExtractResult, extract_clips, resolve_device
from mer_cache.extract.job import ExtractJob, run_extract_finetuned_job, run_extract_job

__all__ = ["ExtractJob", "ExtractOptions", "ExtractResult", "extract_clips", "resolve_device",
           "run_extract_finetuned_job", "run_extract_job"]
