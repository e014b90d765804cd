"""A contact sheet to check the face stage: each clip's first frame with the detected box
and landmarks, next to the aligned crop every frame of that clip will get."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from mer_cache.catalogue.clip import Clip
from mer_cache.faces.align import ClipAlignment, FaceConfig, warp_frame
from mer_cache.faces.stage import align_clip, reference_frames

ROW_PX = 240  # height of one row of the sheet


@dataclass(frozen=True)
class PreviewRow:
    clip_id: str
    alignment: ClipAlignment


def _annotated(rgb: np.ndarray, a: ClipAlignment) -> Image.Image:
    img = Image.fromarray(rgb)
    draw = ImageDraw.Draw(img)
    r = max(2, round(min(img.size) / 120))
    if a.box is not None:
        draw.rectangle(a.box, outline=(0, 255, 0), width=r)
    for x, y in a.landmarks or []:
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(255, 0, 0))
    return img


def _fit(img: Image.Image, height: int) -> Image.Image:
    return img.resize((max(1, round(img.width * height / img.height)), height), Image.BILINEAR)


def write_preview(clips: list[Clip], out: Path | str, *, config: FaceConfig = FaceConfig(),
                  weights: Path | None = None) -> list[PreviewRow]:
    """Align ``clips`` and draw one row per clip (raw | crop, or the reason it failed)."""
    from mer_cache.faces.detector import FaceDetector

    detector = FaceDetector(config, weights=weights)
    rows, tiles = [], []
    for clip in clips:
        a = align_clip(clip, detector, config)
        rows.append(PreviewRow(clip.clip_id, a))
        frames = list(reference_frames(clip, 1)) if a.n_ref else []
        raw = _fit(_annotated(frames[0], a), ROW_PX) if frames else Image.new("RGB", (ROW_PX, ROW_PX))
        crop = (_fit(Image.fromarray(warp_frame(frames[0], a)), ROW_PX) if a.error is None
                else Image.new("RGB", (ROW_PX, ROW_PX), (60, 0, 0)))
        tile = Image.new("RGB", (raw.width + crop.width + 8, ROW_PX + 18), "white")
        tile.paste(raw, (0, 18))
        tile.paste(crop, (raw.width + 8, 18))
        ImageDraw.Draw(tile).text((2, 2), clip.clip_id if a.error is None else
                                  f"{clip.clip_id}: FAILED ({a.error.split(': ', 1)[-1][:60]})",
                                  fill=(0, 0, 0))
        tiles.append(tile)
    width = max((t.width for t in tiles), default=ROW_PX)
    sheet = Image.new("RGB", (width, sum(t.height for t in tiles) or ROW_PX), "white")
    y = 0
    for t in tiles:
        sheet.paste(t, (0, y))
        y += t.height
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return rows
