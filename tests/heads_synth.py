"""Synthetic labelled sequences for the head tests: the class lives in the temporal change.

Every clip is subject noise plus a shared direction scaled by a class-specific profile over
time (rising, falling, oscillating, flat), so the per-clip mean barely tells the classes
apart while the order of frames does.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mer_cache.heads.data import Sequences, sequences_from_arrays

RAW = ("negative", "positive", "surprise", "non_micro")
# each class's action units, as the synthetic generator codes them (mer_cache.synth.actions),
# written the ways the datasets write them; non_micro clips code none
RAW_AUS = ("AU4+R15", "6+12B", "1,2", "")


def profile(c: int, t: int) -> np.ndarray:
    s = np.linspace(-1.0, 1.0, t)
    return [s, -s, np.sin(np.arange(t) * 1.5), np.zeros(t)][c]


def make_arrays(*, n_subjects=12, clips_per_class=3, dim=16, n_classes=4, t_min=11, t_max=30,
                seed=0, dataset="smic"):
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=dim)
    direction /= np.linalg.norm(direction)
    emb, ids, subs, labels, aus = [], [], [], [], []
    for s in range(n_subjects):
        subj = rng.normal(scale=0.3, size=dim)
        for c in range(n_classes):
            for k in range(clips_per_class):
                t = int(rng.integers(t_min, t_max + 1))
                x = subj + 2.0 * profile(c, t)[:, None] * direction + rng.normal(scale=0.2, size=(t, dim))
                emb.append(x.astype(np.float32))
                ids.append(f"{dataset}/s{s:02d}/{RAW[c]}_{k}")
                subs.append(f"s{s:02d}")
                labels.append(RAW[c])
                aus.append(RAW_AUS[c])
    return dict(embeddings=emb, clip_ids=ids, subjects=subs, datasets=[dataset] * len(emb),
                labels=labels, action_units=aus)


def make_sequences(scheme="smic4", **kw) -> Sequences:
    return sequences_from_arrays(**make_arrays(**kw), scheme=scheme)



def write_cache(path, *, dim=None, drop_last=False, **kw):
    """A real embedding cache (through the cache API) holding synthetic sequences."""
    from pathlib import Path

    from mer_cache.cache import CacheWriter, prepare_cache
    from mer_cache.cache.fingerprint import build_fingerprint
    from mer_cache.catalogue.clip import Clip
    from mer_cache.trunks import create_trunk

    identity = create_trunk("tiny-cnn", weights="random").identity()
    arrays = make_arrays(dim=dim or int(identity["dim"]), **kw)
    clips = [Clip(dataset=d, subject=s, clip_id=c, label=lab, fps=100.0,
                  frames=tuple(Path(f"img{i + 1}.png") for i in range(len(e))),
                  attrs={"action_units": au})
             for e, c, s, d, lab, au in zip(arrays["embeddings"], arrays["clip_ids"], arrays["subjects"],
                                            arrays["datasets"], arrays["labels"], arrays["action_units"])]
    fp = build_fingerprint(identity, dtype="float32", clips=clips)
    prepare_cache(path, fingerprint=fp, clips=clips)
    writer = CacheWriter(path)
    n = len(clips) - 1 if drop_last else len(clips)
    for i in range(n):
        writer.write(i, arrays["embeddings"][i])
    if not drop_last:
        writer.finalize()
    return arrays
