"""The Grad-CAM job: base trunk, optionally beside a fine-tuned fold checkpoint.

Maps are drawn on the frames the trunk gets: with a checkpoint, through its run's face stage
and stored transforms (``faces.json``); without one, as ``extract --face`` would (``auto``:
aligned crops on raw layouts).
"""

from __future__ import annotations

from pathlib import Path

from mer_cache.catalogue.clip import Clip
from mer_cache.errors import ConfigError
from mer_cache.faces import FaceStage
from mer_cache.faces.defaults import resolve_face_mode
from mer_cache.finetune.saved import load_fold_model, run_face_stage
from mer_cache.gradcam.focus import RegionSource, regions_for_clips, resolve_regions  # noqa: F401  (job API)
from mer_cache.gradcam.report import FineTuned, GradcamReport
from mer_cache.gradcam.report import run_gradcam as _run_gradcam
from mer_cache.trunks.base import Trunk


def _frames(aligned: bool) -> str:
    return "aligned face crops" if aligned else "whole frames"


def run_gradcam(clips: list[Clip], *, trunk: Trunk, out: Path | str, layers: list[str] | None = None,
                n_clips: int = 4, regions: RegionSource | str = "auto",
                checkpoint: Path | str | None = None, face: str | None = None,
                seed: int = 0) -> GradcamReport:
    """Grad-CAM of ``layers`` on apex frames (see :func:`mer_cache.gradcam.run_gradcam`).

    Parameters
    ----------
    regions : RegionSource or {"auto", "synth", "diff"} or str
        Moving regions, resolved from ``clips`` (:func:`regions_for_clips`): ``auto`` takes
        the ground truth of a ``mer-cache synth`` dataset, else frame differences.
    checkpoint : Path, optional
        A ``fold{k}.pt`` of ``mer-cache finetune``, loaded with its classifier
        (``fold{k}.head.pt``) and drawn beside the base trunk.
    face : {"auto", "align", "none"}, optional
        Which frames the maps are computed on: ``align`` (each clip's aligned face crop),
        ``none`` (whole frames), ``auto`` (align raw layouts, as ``extract --face auto``).
        Default: the checkpoint's run's setting and transforms; without a checkpoint,
        ``auto``.

    Raises
    ------
    ConfigError
        When ``face`` differs from what the checkpoint was fine-tuned on: its maps would be
        of frames it never saw.
    """
    regions = regions_for_clips(regions, clips)  # a bad boxes file fails before any loading
    tuned, stage = None, None
    if checkpoint is not None:
        checkpoint = Path(checkpoint)
        ft, head, meta = load_fold_model(checkpoint, layer=trunk.layer,
                                         resize_mode=trunk.preprocessing.resize_mode)
        tuned = FineTuned(trunk=ft, head=head, meta=meta, checkpoint=checkpoint)
        trained = meta.get("face") is not None
        if face is not None and (resolve_face_mode(face, clips) == "align") != trained:
            raise ConfigError(
                f"{checkpoint} was fine-tuned on {_frames(trained)}, so --face {face} "
                f"({_frames(not trained)} here) would draw its maps on frames it never saw. "
                f"Leave --face out to follow the run, or pass --face "
                f"{'align' if trained else 'none'}.")
        stage = run_face_stage(checkpoint.parent, meta, clips)
    elif resolve_face_mode(face or "auto", clips) == "align":
        stage = FaceStage()
    return _run_gradcam(clips, trunk=trunk, out=out, layers=layers, n_clips=n_clips,
                        regions=regions, tuned=tuned, face=stage, seed=seed)
