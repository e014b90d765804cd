"""Rank a trunk's spatial layers by Grad-CAM focus on the moving face regions.

The paper chooses l_s from Grad-CAM heat maps of the conv layers; here the choice is the
layer whose maps put the largest share of their mass where the face moves, averaged over
apex frames of a class-balanced sample of clips. ``finetune --from-layer auto`` uses the
base trunk (before any fine-tuning) with the embedding-norm target, so no label and no
test-fold score enter the choice; the moving regions are annotations of the frames only.
With a face stage the frames are the clips' aligned crops, as the trunk gets them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import torch

from mer_cache.catalogue.clip import Clip
from mer_cache.errors import DatasetError
from mer_cache.faces import ClipAlignment, FaceStage
from mer_cache.faces.stage import aligned_frame
from mer_cache.frames import load_frame
from mer_cache.gradcam.cam import EmbeddingNormTarget, GradCAM, Target
from mer_cache.gradcam.focus import (
    FrameLoader, RegionSource, focus_score, frame_indices, region_mask, regions_for_clips,
)
from mer_cache.trunks.base import Trunk
from mer_cache.trunks.spec import Preprocessing


@dataclass(frozen=True)
class ClipView:
    """One clip's apex frame at the input size and its moving-region mask."""

    clip: Clip
    apex: int
    frame: np.ndarray  # (C, H, W) uint8
    mask: np.ndarray  # (H, W) bool


def pick_clips(clips: list[Clip], source: RegionSource, *, n_clips: int, seed: int) -> list[Clip]:
    """Up to ``n_clips`` clips with regions, alternating labels, seeded.

    Raises
    ------
    DatasetError
        When every clip is a video file: Grad-CAM reads frame files.
    """
    if clips and all(not c.frames for c in clips):
        raise DatasetError(
            f"Grad-CAM reads frame files, and these {len(clips)} clips are video files (e.g. "
            f"{clips[0].source}). Write each video's frames to a folder (e.g. `ffmpeg -i "
            "clip.mp4 clip/img%04d.jpg`) and use --dataset folder.")
    by_label: dict[str, list[Clip]] = defaultdict(list)
    for c in sorted(clips, key=lambda c: c.clip_id):
        if c.frames and source.has_regions(c):
            by_label[c.label].append(c)
    rng = np.random.default_rng(seed)
    pools = [[pool[i] for i in rng.permutation(len(pool))] for _, pool in sorted(by_label.items())]
    picked: list[Clip] = []
    while len(picked) < n_clips and any(pools):
        for pool in pools:
            if pool and len(picked) < n_clips:
                picked.append(pool.pop(0))
    return picked


def align_picked(clips: list[Clip], face: FaceStage | None
                 ) -> tuple[list[ClipAlignment] | None, dict[str, str]]:
    """The clips' alignments (None without a face stage) and, by clip id, why some failed."""
    if face is None:
        return None, {}
    alignments = face.alignments(face.table_column(clips))
    return alignments, {c.clip_id: a.error for c, a in zip(clips, alignments) if a.error}


def frame_loader(pre: Preprocessing, alignment: ClipAlignment | None) -> FrameLoader:
    """``path -> (C, H, W)`` uint8: the frame as the trunk gets it (aligned crop, if any)."""
    if alignment is None:
        return lambda path: load_frame(path, pre)
    return lambda path: aligned_frame(path, alignment, pre)


def clip_views(clips: list[Clip], source: RegionSource, trunk: Trunk,
               alignments: list[ClipAlignment] | None = None) -> list[ClipView]:
    """Apex frames and masks of ``clips`` (clips without a usable mask are left out).

    ``alignments`` (one per clip): frames are the aligned crops and boxes follow them;
    clips whose alignment failed are left out.
    """
    pre = trunk.preprocessing
    views = []
    for k, clip in enumerate(clips):
        alignment = alignments[k] if alignments is not None else None
        if alignment is not None and alignment.error:
            continue
        load = frame_loader(pre, alignment)
        onset, apex = frame_indices(clip, source, pre, load)
        first, peak = load(clip.frames[onset]), load(clip.frames[apex])
        mask = region_mask(clip, source, pre, onset_frame=first, apex_frame=peak,
                           alignment=alignment)
        if mask is not None:
            views.append(ClipView(clip, apex, peak, mask))
    return views


def compute_cams(views: list[ClipView], *, trunk: Trunk, layers: list[str], target: Target,
                 batch_size: int = 32) -> dict[str, np.ndarray]:
    """``{layer: CAM (N, H, W)}`` of the views' apex frames."""
    out: dict[str, list[np.ndarray]] = {name: [] for name in layers}
    device = next(trunk.parameters(), torch.empty(0)).device
    with GradCAM(trunk, layers) as cam:
        for i in range(0, len(views), batch_size):
            x = torch.from_numpy(np.stack([v.frame for v in views[i:i + batch_size]])).to(device)
            for name, maps in cam(x, target).items():
                out[name].append(maps.detach().cpu().numpy())
    return {name: np.concatenate(parts) for name, parts in out.items()}


def rank_layers(views: list[ClipView], cams: dict[str, np.ndarray]) -> list[dict]:
    """Layers by mean focus, best first (``mask_area`` is what a uniform map would score)."""
    area = float(np.mean([v.mask.mean() for v in views]))
    rows = []
    for order, (name, maps) in enumerate(cams.items()):
        per_clip = [focus_score(m, v.mask) for m, v in zip(maps, views)]
        valid = [f for f in per_clip if np.isfinite(f)]
        rows.append({"layer": name, "focus": round(float(np.mean(valid)), 6) if valid else 0.0,
                     "mask_area": round(area, 6), "n_clips": len(valid), "order": order,
                     "focus_per_clip": [round(f, 6) if np.isfinite(f) else None for f in per_clip]})
    rows.sort(key=lambda r: (-r["focus"], r["order"]))
    return rows


def suggest_layer(clips: list[Clip], *, trunk: Trunk, regions: RegionSource | str = "auto",
                  layers: list[str] | None = None, n_clips: int = 16, seed: int = 0,
                  target: Target | None = None, face: FaceStage | None = None) -> list[dict]:
    """Rank spatial layers by focus on the moving regions; the first is the suggestion.

    Parameters
    ----------
    clips : list of Clip
    trunk : Trunk
    regions : RegionSource or {"auto", "synth", "diff"} or str
        Moving regions, resolved from ``clips``
        (:func:`~mer_cache.gradcam.focus.regions_for_clips`):
        ``auto`` takes the synthetic ground truth (``synth.json``) of clips from
        ``mer-cache synth``, else onset-to-apex frame differences.
    layers : list of str, optional
        Candidate layers (default: all of ``trunk.cam_modules()``).
    n_clips : int
        Clips sampled (class-balanced, seeded) to average over.
    target : callable, optional
        Default: the embedding norm (the trunk has no classifier for the task yet).
    face : FaceStage, optional
        Score the sampled clips' aligned crops (one transform per clip); clips without a
        usable face are left out.

    Raises
    ------
    DatasetError
        When no clip has a usable moving region.
    TrunkError
        For an unknown layer name (the valid names are listed).
    """
    regions = regions_for_clips(regions, clips)
    layers = list(layers or trunk.cam_modules())
    GradCAM(trunk, layers)  # an unknown layer fails here, before any frame is decoded
    picked = pick_clips(clips, regions, n_clips=n_clips, seed=seed)
    views = clip_views(picked, regions, trunk, align_picked(picked, face)[0])
    if not views:
        raise DatasetError(f"No clip has a moving region to score Grad-CAM against (regions: "
                           f"{regions.kind} {regions.origin}). Check the clip ids of the boxes, "
                           "or use --regions diff.")
    cams = compute_cams(views, trunk=trunk, layers=layers, target=target or EmbeddingNormTarget())
    return rank_layers(views, cams)
