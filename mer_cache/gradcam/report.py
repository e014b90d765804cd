"""``mer-cache gradcam``: heat maps of every candidate layer, focus scores, before/after figures.

The base trunk is explained with the embedding-norm target (it has no classifier for the
task); a fine-tuned checkpoint with its ``fold{k}.head.pt`` is explained with the logit of
the class its classifier predicts, so "after" shows what the Exp-I model looks at (Fig. 4).
With a face stage, maps and panels are computed on the aligned crops the trunk gets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from mer_cache.catalogue.clip import Clip
from mer_cache.errors import ConfigError, DatasetError
from mer_cache.faces import FaceStage
from mer_cache.gradcam.cam import ClassLogitTarget, EmbeddingNormTarget, GradCAM
from mer_cache.gradcam.figures import write_grid
from mer_cache.gradcam.focus import RegionSource, regions_for_clips
from mer_cache.gradcam.suggest import align_picked, clip_views, compute_cams, pick_clips, rank_layers
from mer_cache.trunks.base import Trunk

ROWS_PER_PNG = 8


@dataclass(frozen=True)
class FineTuned:
    """A fine-tuned trunk to explain beside the base one: trunk, classifier (or None), meta."""

    trunk: Trunk
    head: nn.Module | None
    meta: dict
    checkpoint: Path


@dataclass
class GradcamReport:
    """What :func:`run_gradcam` wrote and found."""

    out: Path
    layers: list[str]
    ranking: list[dict]  # base trunk, best layer first
    ranking_after: list[dict] | None = None  # fine-tuned checkpoint, when given
    pngs: list[Path] = field(default_factory=list)
    clip_ids: list[str] = field(default_factory=list)
    targets: dict = field(default_factory=dict)
    face: dict | None = None  # the face stage's identity; None: whole frames
    regions: str = "diff"  # the kind of moving regions scored against: synth, boxes or diff
    failed: dict[str, str] = field(default_factory=dict)  # picked clip id -> why it is not drawn


def _captions(ranking: list[dict], suffix: str) -> dict[str, list[str]]:
    out = {}
    for row in ranking:
        out[row["layer"]] = [f"{row['layer']}{suffix} {f:.2f}" if f is not None else
                             f"{row['layer']}{suffix} -" for f in row["focus_per_clip"]]
    return out


def run_gradcam(clips: list[Clip], *, trunk: Trunk, out: Path | str,
                layers: list[str] | None = None, n_clips: int = 4,
                regions: RegionSource | str = "auto", tuned: FineTuned | None = None,
                face: FaceStage | None = None, seed: int = 0) -> GradcamReport:
    """Grad-CAM of ``layers`` on apex frames of ``n_clips`` clips; PNG grids and ``focus.json``.

    Parameters
    ----------
    clips : list of Clip
    trunk : Trunk
        The base trunk ("before").
    out : Path
        Folder for ``gradcam_XX.png`` and ``focus.json``.
    layers : list of str, optional
        Candidate layers (default: every spatial layer of the trunk).
    regions : RegionSource or {"auto", "synth", "diff"} or str
        Moving regions, resolved from ``clips``
        (:func:`~mer_cache.gradcam.focus.regions_for_clips`):
        ``auto`` takes the synthetic ground truth (``synth.json``) of clips from
        ``mer-cache synth``, else onset-to-apex frame differences; or a boxes JSON file.
    tuned : FineTuned, optional
        A fine-tuned trunk (``fold{k}.pt`` of ``mer-cache finetune``, loaded by the job API
        :func:`mer_cache.pipelines.run_gradcam`): its maps are drawn next to the base
        trunk's ("after").
    face : FaceStage, optional
        Draw and score the clips' aligned crops (one transform per clip, as extraction and
        fine-tuning feed the trunk); a picked clip without a usable face is left out and
        named in ``failed``.

    Raises
    ------
    TrunkError
        For a layer the trunk does not have (the valid names are listed).
    ConfigError
        When the fine-tuned trunk is another architecture.
    DatasetError
        When no clip has a usable moving region.
    """
    regions = regions_for_clips(regions, clips)
    layers = list(layers or trunk.cam_modules())
    GradCAM(trunk, layers)  # validates the names before any work
    after = None
    if tuned is not None:
        if tuned.trunk.name != trunk.name:
            raise ConfigError(f"{tuned.checkpoint} fine-tunes '{tuned.trunk.name}', not "
                              f"'{trunk.name}'. Pass --trunk {tuned.trunk.name} with the base "
                              f"weights of that run.")
        after = (tuned.trunk, ClassLogitTarget(tuned.head) if tuned.head is not None
                 else EmbeddingNormTarget(), tuned.meta)
    picked = pick_clips(clips, regions, n_clips=n_clips, seed=seed)
    alignments, failed = align_picked(picked, face)
    views = clip_views(picked, regions, trunk, alignments)
    if not views:
        why = f" ({len(failed)} without a usable face: {'; '.join(failed.values())})" if failed else ""
        raise DatasetError(f"No clip has a moving region to draw (regions: {regions.kind} "
                           f"{regions.origin}){why}. Use --regions diff or check the boxes' "
                           "clip ids.")
    cams = compute_cams(views, trunk=trunk, layers=layers, target=EmbeddingNormTarget())
    ranking = rank_layers(views, cams)
    report = GradcamReport(out=Path(out), layers=layers, ranking=ranking,
                           clip_ids=[v.clip.clip_id for v in views],
                           targets={"before": "embedding norm"},
                           face=face.identity() if face is not None else None, failed=failed,
                           regions=regions.kind)
    cams_after, captions_after = None, {}
    if after is not None:
        ft_trunk, target, meta = after
        cams_after = compute_cams(views, trunk=ft_trunk, layers=layers, target=target)
        report.ranking_after = rank_layers(views, cams_after)
        captions_after = _captions(report.ranking_after, "'")
        report.targets["after"] = ("predicted-class logit of the fine-tuned classifier"
                                   if isinstance(target, ClassLogitTarget) else "embedding norm")
        report.targets["checkpoint"] = str(tuned.checkpoint)
        report.targets["fold"] = meta.get("fold")
    captions = _captions(ranking, "")
    columns = ["apex frame", *layers, *([f"{n} (fine-tuned)" for n in layers] if cams_after else [])]
    rows = []
    for i, v in enumerate(views):
        maps = [(cams[n][i], captions[n][i]) for n in layers]
        if cams_after is not None:
            maps += [(cams_after[n][i], captions_after[n][i]) for n in layers]
        rows.append({"title": f"{v.clip.clip_id} ({v.clip.label})", "frame": v.frame,
                     "mask": v.mask, "frame_caption": f"apex {v.apex}", "maps": maps})
    out = Path(out)
    for p in range(0, len(rows), ROWS_PER_PNG):
        report.pngs.append(write_grid(out / f"gradcam_{p // ROWS_PER_PNG + 1:02d}.png",
                                      rows[p:p + ROWS_PER_PNG], columns))
    (out / "focus.json").write_text(json.dumps({
        "trunk": trunk.name, "weights_sha256": trunk.weights_sha256, "regions": regions.kind,
        "clips": report.clip_ids, "ranking": ranking, "ranking_after": report.ranking_after,
        "targets": report.targets, "face": report.face, "failed": report.failed},
        indent=1) + "\n")
    return report
