"""PNG grids of Grad-CAM overlays: one row per clip, the frame then one overlay per layer.

Drawn with PIL only (matplotlib is an optional extra). The frame panel outlines the moving
regions; each overlay's caption gives the layer and its focus score. With a second set of
maps (after fine-tuning) the row continues with them, as in the paper's Fig. 4.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

PANEL_PX = 128  # panels are upscaled so 64-px inputs stay readable
CAPTION_PX = 14


def jet(t: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> ``(..., 3)`` uint8 colours of the classic jet map."""
    t = np.clip(t, 0, 1)[..., None]
    rgb = np.clip(1.5 - np.abs(4 * t - np.array([3.0, 2.0, 1.0])), 0, 1)
    return (rgb * 255).astype(np.uint8)


def _rgb(frame: np.ndarray) -> np.ndarray:
    img = frame.transpose(1, 2, 0)  # (H, W, C)
    return np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img


def overlay(frame: np.ndarray, cam: np.ndarray) -> np.ndarray:
    """uint8 ``(C, H, W)`` frame + ``(H, W)`` CAM -> ``(H, W, 3)`` uint8 (map scaled to its max)."""
    peak = float(cam.max())
    heat = jet(cam / peak if peak > 0 else np.zeros_like(cam)).astype(np.float32)
    return (0.5 * _rgb(frame).astype(np.float32) + 0.5 * heat).astype(np.uint8)


def _panel(img: np.ndarray, caption: str, mask: np.ndarray | None = None) -> Image.Image:
    pil = Image.fromarray(img).resize((PANEL_PX, PANEL_PX), Image.NEAREST)
    if mask is not None:  # outline of the moving regions
        edge = mask ^ np.pad(mask, 1, mode="edge")[1:-1, 2:] | mask ^ np.pad(mask, 1, mode="edge")[2:, 1:-1]
        edge = np.asarray(Image.fromarray(edge.astype(np.uint8) * 255).resize(
            (PANEL_PX, PANEL_PX), Image.NEAREST)) > 0
        arr = np.asarray(pil).copy()
        arr[edge] = (0, 255, 0)
        pil = Image.fromarray(arr)
    out = Image.new("RGB", (PANEL_PX, PANEL_PX + CAPTION_PX), "white")
    out.paste(pil, (0, CAPTION_PX))
    ImageDraw.Draw(out).text((2, 1), caption[:24], fill="black")
    return out


def write_grid(png: Path, rows: list[dict], columns: list[str]) -> Path:
    """Write rows of panels; each row is ``{"title", "frame", "mask", "maps": [(cam, caption)]}``."""
    n_cols = 1 + max(len(r["maps"]) for r in rows)
    width, height = n_cols * PANEL_PX, PANEL_PX + CAPTION_PX
    head = CAPTION_PX + 2
    sheet = Image.new("RGB", (width, head + len(rows) * (height + CAPTION_PX)), "white")
    draw = ImageDraw.Draw(sheet)
    for c, name in enumerate(columns[:n_cols]):
        draw.text((c * PANEL_PX + 2, 1), name[:24], fill="black")
    for r, row in enumerate(rows):
        y = head + r * (height + CAPTION_PX)
        draw.text((2, y), row["title"][:n_cols * 20], fill="black")
        y += CAPTION_PX
        sheet.paste(_panel(_rgb(row["frame"]), row.get("frame_caption", "apex"), row["mask"]), (0, y))
        for c, (cam, caption) in enumerate(row["maps"], start=1):
            sheet.paste(_panel(overlay(row["frame"], cam), caption), (c * PANEL_PX, y))
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(png)
    return png
