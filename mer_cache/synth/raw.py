"""The ``raw`` layout: each synthetic face inside a larger frame, like CASME II's raw release.

CASME II raw frames are 640x480 with the face (~280 px tall) in the middle (REFERENCE 9);
here the 128 px face sits in a 320x240 frame (the same face-to-frame ratio at half the
size, to keep the demo small), shifted by up to +-40 x +-30 px and scaled by 0.9..1.1 per
clip (head position differs between takes), over a smooth background of its own. Within
a clip the placement is fixed; the face's own head motion comes from the renderer.
Folders and workbook are CASME II's, so the ``casme2`` loader reads it.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from mer_cache.synth.face import CROP_PX

RAW_SIZE = (320, 240)  # (W, H)
MAX_SHIFT_PX = (40, 30)
SCALE_RANGE = (0.9, 1.1)


def sample_placement(rng: np.random.Generator) -> dict:
    """Where one clip's face goes: its box in the raw frame and the background colours."""
    w, h = RAW_SIZE
    side = int(round(CROP_PX * rng.uniform(*SCALE_RANGE)))
    dx, dy = (int(rng.integers(-m, m + 1)) for m in MAX_SHIFT_PX)
    x0, y0 = (w - side) // 2 + dx, (h - side) // 2 + dy
    top, bottom = rng.integers(40, 200, size=(2, 3))
    return {"box": [x0, y0, x0 + side, y0 + side], "top": top.tolist(),
            "bottom": bottom.tolist(), "seed": int(rng.integers(2**31))}


def place_in_raw(frames: np.ndarray, placement: dict) -> np.ndarray:
    """(T, 128, 128, 3) face crops -> (T, 240, 320, 3) raw frames."""
    w, h = RAW_SIZE
    t = np.linspace(0, 1, h)[:, None, None]
    bg = (1 - t) * np.array(placement["top"]) + t * np.array(placement["bottom"])  # (H, 1, 3)
    texture = np.random.default_rng(placement["seed"]).normal(0, 6, (h, w, 1))
    background = np.clip(np.broadcast_to(bg, (h, w, 3)) + texture, 0, 255).astype(np.uint8)
    x0, y0, x1, y1 = placement["box"]
    out = np.repeat(background[None], len(frames), axis=0)
    for k, f in enumerate(frames):
        face = np.array(Image.fromarray(f).resize((x1 - x0, y1 - y0), Image.BILINEAR))
        out[k, y0:y1, x0:x1] = face
    return out
