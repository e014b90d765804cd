"""What a head run reads: one embedding cache, a flow cache, or a folder of per-fold caches
(``extract --finetuned-run``)."""

from __future__ import annotations

from pathlib import Path

from mer_cache.cache import cache_kind
from mer_cache.heads.data import Sequences, load_sequences
from mer_cache.heads.flow_data import load_flow_sequences
from mer_cache.pipelines.fold_features import FoldFeatures, is_fold_cache_dir, load_fold_features


def load_inputs(cache: Path | str, *, labels: str) -> tuple[Sequences, FoldFeatures | None]:
    """The head's sequences, and the per-fold features when ``cache`` is a fold-cache folder.

    A single cache whose trunk was fine-tuned (a ``fold{k}.zarr``, or a cache extracted with
    ``--weights fold{k}.pt``) loads, but :func:`mer_cache.pipelines.head_training` refuses every
    fold that tests a subject its trunk saw.
    """
    if cache_kind(cache) == "flow":  # one flow map per clip, for --arch ststnet|offapexnet
        return load_flow_sequences(cache, labels=labels), None
    if is_fold_cache_dir(cache):
        features = load_fold_features(cache, labels=labels)
        return features.sequences[0], features
    return load_sequences(cache, labels=labels), None
