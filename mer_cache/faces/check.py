"""Face problems of a dataset copy, for ``datasets check --deep``: clips whose reference
frames hold no face (they would fail with ``--face align``), several faces (the largest
central one would be used), or a face too small to embed."""

from __future__ import annotations

from pathlib import Path

from mer_cache.catalogue.clip import Clip
from mer_cache.catalogue.problems import Problem
from mer_cache.faces.align import FaceConfig
from mer_cache.faces.stage import Progress, align_clips

NO_FACE = "no_face"
SEVERAL_FACES = "several_faces"


# The whole pyramid: extraction's first pass stops at a large face, and a check should also
# see a smaller one beside it (a bystander, a photo on the wall).
CHECK_CONFIG = FaceConfig(first_pass=None)


def face_problems(clips: list[Clip], *, config: FaceConfig = CHECK_CONFIG,
                  weights: Path | None = None, progress: Progress | None = None) -> list[Problem]:
    """One warning per clip with no usable face or with several faces in its first frames
    (faces of any size the detector finds, not only those extraction's first pass sees)."""
    problems = []
    for clip, a in zip(clips, align_clips(clips, config, weights=weights, progress=progress)):
        if a.error is not None:
            problems.append(Problem("warning", NO_FACE, clip.source,
                                    f"{a.error} (`extract --face align` fails this clip alone)",
                                    clip.clip_id))
        elif a.max_faces > 1:
            problems.append(Problem(
                "warning", SEVERAL_FACES, clip.source,
                f"{clip.clip_id}: {a.max_faces} faces in "
                f"{'its first frame' if a.n_ref == 1 else f'one of its first {a.n_ref} frames'}; alignment "
                "follows the largest, most central one (check it with `mer-cache faces preview`).",
                clip.clip_id))
    return problems
