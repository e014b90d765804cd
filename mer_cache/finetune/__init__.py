"""Exp-I mechanism: a trunk partly retrained on one fold's training subjects.

:func:`train_fold` trains one fold's trunk; :mod:`mer_cache.finetune.saved` writes and reads
its checkpoint. The whole run (folds, l_s choice, run folder, per-fold caches, the leakage
guard) is the job API: :func:`mer_cache.pipelines.finetune_run`,
:func:`mer_cache.pipelines.extract_finetuned`. Names are imported on first use (PEP 562), so
``mer_cache.finetune.config`` stays free of torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {"FinetuneConfig": "config", "load_fold_model": "saved", "train_fold": "train"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mer_cache.finetune' has no attribute {name!r}")
    return getattr(importlib.import_module(f"mer_cache.finetune.{_EXPORTS[name]}"), name)
