"""The Grad-CAM job: base trunk, optionally beside a fine-tuned fold checkpoint."""

from __future__ import annotations

from pathlib import Path

from mer_cache.catalogue.clip import Clip
from mer_cache.finetune.saved import load_fold_model
from mer_cache.gradcam.focus import RegionSource, resolve_regions  # noqa: F401  (job API)
from mer_cache.gradcam.report import FineTuned, GradcamReport
from mer_cache.gradcam.report import run_gradcam as _run_gradcam
from mer_cache.trunks.base import Trunk


def run_gradcam(clips: list[Clip], *, trunk: Trunk, out: Path | str, layers: list[str] | None = None,
                n_clips: int = 4, regions: RegionSource | None = None,
                checkpoint: Path | str | None = None, seed: int = 0) -> GradcamReport:
    """Grad-CAM of ``layers`` on apex frames (see :func:`mer_cache.gradcam.run_gradcam`).

    ``checkpoint``: a ``fold{k}.pt`` of ``mer-cache finetune``, loaded with its classifier
    (``fold{k}.head.pt``) and drawn beside the base trunk.
    """
    tuned = None
    if checkpoint is not None:
        ft, head, meta = load_fold_model(checkpoint, layer=trunk.layer,
                                         resize_mode=trunk.preprocessing.resize_mode)
        tuned = FineTuned(trunk=ft, head=head, meta=meta, checkpoint=Path(checkpoint))
    return _run_gradcam(clips, trunk=trunk, out=out, layers=layers, n_clips=n_clips,
                        regions=regions, tuned=tuned, seed=seed)
