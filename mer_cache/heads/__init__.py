"""Temporal heads on cached embeddings, trained and scored under honest protocols.

Flow: :func:`load_sequences` (cache -> labelled sequences in memory) -> :func:`train_head`
(windows, folds, per-fold training, pooled metrics, run directory) or :func:`run_sweep`
(a grid of runs over the same sequences). :func:`load_head` and :func:`predict_sequences`
rebuild a fold's head from its checkpoint and predict new clips. On a flow cache,
:func:`load_flow_sequences` and the flow heads (``ststnet``, ``offapexnet``) go through the
same :func:`train_head`; :func:`fuse_runs` fuses finished runs on the same folds.
"""

from mer_cache.heads.data import Sequences, load_sequences, sequences_from_arrays, sequences_from_cache
from mer_cache.heads.flow_data import load_flow_sequences
from mer_cache.heads.flow_models import FLOW_HEADS
from mer_cache.heads.folds import PROTOCOLS, SubjectLeakWarning, make_folds
from mer_cache.heads.fusion import FusionResult, fuse_runs
from mer_cache.heads.models import HEADS, create_head, load_head
from mer_cache.heads.sweep import SweepResult, run_sweep
from mer_cache.heads.training import HeadConfig, ProgressEvent, RunResult, predict_sequences, train_head

__all__ = [
    "FLOW_HEADS", "FusionResult", "fuse_runs", "load_flow_sequences",
    "HEADS", "PROTOCOLS", "HeadConfig", "ProgressEvent", "RunResult", "Sequences", "SubjectLeakWarning",
    "SweepResult", "create_head", "load_head", "load_sequences", "make_folds", "predict_sequences",
    "run_sweep", "sequences_from_arrays", "sequences_from_cache", "train_head",
]
