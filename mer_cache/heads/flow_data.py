"""Clips of a flow cache as labelled one-step sequences, the form the training loop reads.

Each clip's ``(C, H, W)`` map becomes a ``(1, C*H*W)`` array; the flow heads
(:mod:`mer_cache.heads.flow_models`) reshape it back. The cache fingerprint travels with the
sequences (``features: flow``), so a run records the flow parameters and a sequence head is
refused on flow data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mer_cache.errors import CacheError
from mer_cache.heads.data import Sequences, sequences_from_arrays


def sequences_from_flow_cache(cache, *, labels: str) -> Sequences:
    """Load every clip of an opened flow cache (``mer_cache.cache.open_flow_cache``)."""
    maps = cache.load_all(dtype=np.float32)  # (n, C, H, W)
    bad = [c.clip_id for c, m in zip(cache.clips, maps) if not np.isfinite(m).all()]
    if bad:
        raise CacheError(f"The flow cache {cache.path} holds NaN/inf maps for {len(bad)} clip(s) "
                         f"({', '.join(bad[:5])}). Re-extract it into a new --out folder.")
    clips = cache.clips
    return sequences_from_arrays(
        [m.reshape(1, -1) for m in maps],  # (1, C*H*W) each
        clip_ids=[c.clip_id for c in clips], subjects=[c.subject for c in clips],
        datasets=[c.dataset for c in clips], labels=[c.label for c in clips],
        scheme=labels, fingerprint=dict(cache.fingerprint))


def load_flow_sequences(path: Path | str, *, labels: str) -> Sequences:
    """Open a complete flow cache and load it as labelled one-step sequences.

    Raises
    ------
    CacheError
        If the cache is missing, incomplete or not a flow cache.
    LabelError
        If the label scheme does not fit the cache's labels.
    """
    from mer_cache.cache import open_flow_cache

    return sequences_from_flow_cache(open_flow_cache(path), labels=labels)
