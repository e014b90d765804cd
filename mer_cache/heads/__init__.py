"""Temporal heads on cached embeddings: the mechanism (data, windows, models, one fold's training).

Flow: :func:`load_sequences` (cache -> labelled sequences in memory) -> windows -> a head
trained on one fold (:func:`mer_cache.heads.training.train_fold`; for action-unit
detection :func:`mer_cache.heads.au.train_au_fold`). Whole runs (folds, guards,
run folders, sweeps) are the job API: :func:`mer_cache.pipelines.head_training`,
:func:`mer_cache.pipelines.run_sweep`. :func:`load_head` and :func:`predict_sequences`
rebuild a fold's head from its checkpoint and predict new clips. On a flow cache,
:func:`load_flow_sequences` and the flow heads (``ststnet``, ``offapexnet``) go through the
same job API; :func:`mer_cache.pipelines.fuse_runs` fuses finished runs on the same folds.

Names are imported on first use (PEP 562): ``mer_cache.heads.config`` stays free of torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Sequences": "data", "load_sequences": "data", "sequences_from_arrays": "data",
    "sequences_from_cache": "data", "HEADS": "models", "create_head": "models",
    "load_head": "models", "HeadConfig": "config", "predict_sequences": "training",
    "choose_au_targets": "au", "train_au_fold": "au",
    "load_flow_sequences": "flow_data", "FLOW_HEADS": "flow_models",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mer_cache.heads' has no attribute {name!r}")
    return getattr(importlib.import_module(f"mer_cache.heads.{_EXPORTS[name]}"), name)
