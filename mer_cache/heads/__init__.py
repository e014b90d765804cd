"""Temporal heads on cached embeddings, trained and scored under honest protocols.

Flow: :func:`load_sequences` (cache -> labelled sequences in memory) -> :func:`train_head`
(windows, folds, per-fold training, pooled metrics, run directory) or :func:`run_sweep`
(a grid of runs over the same sequences). :func:`load_head` and :func:`predict_sequences`
rebuild a fold's head from its checkpoint and predict new clips.
"""

from mer_cache.heads.data import Sequences, load_sequences, sequences_from_arrays, sequences_from_cache
from mer_cache.heads.folds import PROTOCOLS, SubjectLeakWarning, make_folds
from mer_cache.heads.models import HEADS, create_head, load_head
from mer_cache.heads.sweep import SweepResult, run_sweep
from mer_cache.heads.training import HeadConfig, ProgressEvent, RunResult, predict_sequences, train_head

__all__ = [
    "HEADS", "PROTOCOLS", "HeadConfig", "ProgressEvent", "RunResult", "Sequences", "SubjectLeakWarning",
    "SweepResult", "create_head", "load_head", "load_sequences", "make_folds", "predict_sequences",
    "run_sweep", "sequences_from_arrays", "sequences_from_cache", "train_head",
]
