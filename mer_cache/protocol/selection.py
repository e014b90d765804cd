"""Model selection without the test fold: nested, on each outer fold's training subjects.

A sweep that ranks configurations by their pooled test score and reports the top one has
chosen on the test folds, and its headline is optimistic. Here every outer fold chooses its
configuration by an inner cross-validation over its own *training* subjects
(:func:`selection_positions`), by the rule of :func:`choose`; the headline is the outer test
score of what each fold chose. Per-configuration test scores are still reported, labelled as
not for choosing.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from mer_cache.errors import ProtocolError
from mer_cache.protocol.folds import Fold


def selection_positions(fold: Fold) -> np.ndarray:
    """Positions a configuration may be chosen on in ``fold``: its training subjects only
    (training and validation parts), never its test part."""
    chosen = np.sort(np.concatenate([fold.train, fold.val]))
    if len(np.intersect1d(chosen, fold.test)):
        raise ProtocolError(f"Fold {fold.index}: training and test positions overlap; "
                            "refusing to select on them.")
    return chosen


def choose(inner_scores: Mapping[str, Mapping[str, float]]) -> str:
    """The configuration with the best inner pooled UF1, then UAR; ties go to the first listed.

    ``inner_scores`` maps a configuration name (in grid order) to its pooled inner scores
    (``{"uf1": ..., "uar": ...}``), all computed on training subjects of one outer fold.
    """
    if not inner_scores:
        raise ValueError("no configuration to choose from")
    names = list(inner_scores)
    return max(names, key=lambda n: (inner_scores[n]["uf1"], inner_scores[n]["uar"],
                                     -names.index(n)))
