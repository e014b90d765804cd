"""Exp-I: a trunk partly retrained per fold, fold-aware caches, and the leakage guard.

:func:`finetune` trains one trunk per fold on that fold's training subjects;
:func:`extract_finetuned` writes one cache per fold with the fold's trunk; the guard
(:func:`open_fold_caches`, :func:`check_fold_features`) refuses head training that would test
a fold on subjects its features' trunk has seen.
"""

from mer_cache.finetune.config import FinetuneConfig
from mer_cache.finetune.fold_caches import FoldCachesResult, extract_finetuned
from mer_cache.finetune.guard import (
    FoldCaches, FoldFeatures, check_fold_features, check_head_folds, check_not_fold_cache,
    is_fold_cache_dir, load_fold_features, open_fold_caches,
)
from mer_cache.finetune.train import FinetuneEvent, FinetuneResult, finetune

__all__ = ["FinetuneConfig", "FinetuneEvent", "FinetuneResult", "FoldCaches", "FoldCachesResult",
           "FoldFeatures", "check_fold_features", "check_head_folds", "check_not_fold_cache",
           "extract_finetuned", "finetune", "is_fold_cache_dir", "load_fold_features",
           "open_fold_caches"]
