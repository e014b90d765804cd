"""Which frames a clip's flow runs between: the onset, and the annotated or estimated apex.

The onset is the annotated one, else frame 0 (SMIC clips start on a neutral frame; REFERENCE
section 1). The apex is the annotated one when it lies after the onset; otherwise (SMIC has
no apex) it is estimated as the frame whose mean absolute grey difference from the onset
frame is largest (REFERENCE 10: the common choice), searched between the onset and the
annotated offset (the clip's end when there is none). Frames are blurred first (Gaussian,
sigma 1 px at the flow grid) so sensor noise does not pick the frame.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from mer_cache.cache.flow_api import FramesUsed
from mer_cache.catalogue.clip import Clip
from mer_cache.flow.compute import require_cv2

BLUR_SIGMA_PX = 1.0


def difference_curve(greys: list[np.ndarray], onset: int) -> np.ndarray:
    """Mean absolute difference of every (blurred) grey frame from the onset frame, (T,)."""
    cv2 = require_cv2()
    blurred = [cv2.GaussianBlur(g.astype(np.float32), (0, 0), BLUR_SIGMA_PX) for g in greys]
    ref = blurred[onset]
    return np.array([float(np.abs(b - ref).mean()) for b in blurred])


def estimate_apex(greys: list[np.ndarray], onset: int, offset: int | None = None) -> int:
    """The frame after ``onset`` (up to ``offset``) that differs most from the onset frame."""
    last = len(greys) - 1 if offset is None or not onset < offset < len(greys) else offset
    if last <= onset:
        raise ValueError(f"no frame after the onset {onset} to take as apex "
                         f"({len(greys)} frames)")
    curve = difference_curve(greys[:last + 1], onset)
    return onset + 1 + int(np.argmax(curve[onset + 1:last + 1]))


def annotated_frames(clip: Clip) -> FramesUsed | None:
    """The clip's annotated (onset, apex), or None when the apex must be estimated."""
    onset = clip.onset if clip.onset is not None and 0 <= clip.onset < clip.n_frames else 0
    if clip.apex is not None and onset < clip.apex < clip.n_frames:
        return FramesUsed(onset, int(clip.apex), "annotated")
    return None


def choose_frames(clip: Clip, read_all: Callable[[], list[np.ndarray]]) -> tuple[FramesUsed, list | None]:
    """The frames to use, reading every frame (``read_all``) only when the apex is estimated.

    Returns the choice and the frames read (None when none were).
    """
    used = annotated_frames(clip)
    if used is not None:
        return used, None
    greys = read_all()
    onset = clip.onset if clip.onset is not None and 0 <= clip.onset < len(greys) else 0
    return FramesUsed(onset, estimate_apex(greys, onset, clip.offset), "estimated"), greys
