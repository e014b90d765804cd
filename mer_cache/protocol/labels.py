"""Labels to classes: one path for every route that makes folds (heads, fine-tuning, sweeps).

A label scheme maps each clip's raw dataset label to a task class or drops it. Head training,
fine-tuning and the fold assignment all label clips here, so they drop the same clips, give
the same class indices and the same ``dataset/subject`` group keys, in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

import warnings

from mer_cache.catalogue.labels import UnmappedLabelWarning, apply_scheme, get_scheme
from mer_cache.errors import LabelError


@dataclass(frozen=True)
class LabelledClips:
    """What a label scheme keeps of a clip list.

    Attributes
    ----------
    keep : ndarray of int
        Positions of the kept clips in the input order.
    y : ndarray of int64
        Class index (into ``classes``) of every kept clip.
    classes : tuple of str
        The scheme's classes that at least one kept clip has, in the scheme's order.
    notes : tuple of str
        What was dropped, counted, for the run report.
    dropped : dict
        ``"dataset/label" -> clips`` the scheme left out (nothing is dropped uncounted).
    """

    keep: np.ndarray
    y: np.ndarray
    classes: tuple[str, ...]
    notes: tuple[str, ...]
    dropped: dict


def label_clips(datasets: Sequence[str], labels: Sequence[str], *, scheme: str) -> LabelledClips:
    """Apply the label scheme ``scheme`` to clips given by dataset and raw label.

    Classes of the scheme that no clip has are left out (with a note), so folds and metrics
    only see classes that exist; every dropped clip is counted by its raw label.

    Raises
    ------
    LabelError
        If the scheme is unknown, fits none of the labels, or leaves fewer than two classes.
    """
    raw = [str(x) for x in labels]
    sch = get_scheme(scheme, raw)
    result = apply_scheme(sch, [str(d) for d in datasets], raw)
    mapped = result.mapped
    keep = [i for i, m in enumerate(mapped) if m is not None]
    seen = ", ".join(sorted(set(raw))[:20])
    if not keep:
        raise LabelError(
            f"The label scheme '{scheme}' ({', '.join(sch.classes)}) fits none of the "
            f"{len(raw)} clips' labels ({seen}). Pick a scheme made for this data with --labels "
            f"(e.g. smic4 for SMIC, megc3 for the composite, emotion for the raw labels)."
        )
    notes = []
    if result.unmapped:  # every label the scheme does not map, counted, in the report
        notes.append(result.summary(scheme))
        warnings.warn(result.summary(scheme), UnmappedLabelWarning, stacklevel=2)
    present = [c for c in sch.classes if c in {mapped[i] for i in keep}]
    if len(present) < len(sch.classes):
        missing = [c for c in sch.classes if c not in present]
        notes.append(f"no clip has class {', '.join(missing)}; trained on {len(present)} classes")
    if len(present) < 2:
        raise LabelError(f"The label scheme '{scheme}' fits only class '{present[0]}' of this data's "
                         f"labels ({seen}); classification needs at least two classes. Pick a "
                         f"scheme made for this data with --labels.")
    return LabelledClips(keep=np.asarray(keep, dtype=np.int64),
                         y=np.array([present.index(mapped[i]) for i in keep], dtype=np.int64),
                         classes=tuple(present), notes=tuple(notes),
                         dropped={f"{d}/{lab}": n for (d, lab), n in sorted(result.unmapped.items())})
