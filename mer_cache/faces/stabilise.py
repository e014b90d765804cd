"""Optional per-frame, translation-only stabilisation inside a clip's aligned crop.

The clip's one similarity transform removes where the head is in the take; it leaves the
head's own sway during the clip (on the synthetic data up to ~1.6 px peak to peak at
128 px, as large as the expression). With ``FaceConfig(stabilise=True)`` each frame's crop
is compared with the clip's first frame by phase correlation (OpenCV ``phaseCorrelate``,
Hann window, on the grey crop at its own size: shrunk to 128 px, the measured shifts
were worse than none on the synthetic data), and the frame is warped
again from the raw frame with the translation that cancels the shift, so it is
interpolated once. Only a translation: the expression must stay. Blinks and expressions
do pull the correlation peak (by up to ~1.5 px on synthetic clips), so this is measured,
not assumed: ``benchmarks/face_stage.py`` compares the head translation left in the
crops and UF1 with and without.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numpy as np

from mer_cache.faces.align import ClipAlignment, warp_frame



def grey_crop(frame: np.ndarray, alignment: ClipAlignment) -> np.ndarray:
    """The aligned crop of a raw frame, grey float32 (the correlation's input)."""
    import cv2

    crop = warp_frame(frame, alignment)
    if crop.ndim == 3:
        crop = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    return crop.astype(np.float32)


def frame_shift(reference: np.ndarray, crop: np.ndarray) -> tuple[float, float]:
    """(dx, dy) in crop pixels by which ``crop`` is displaced from ``reference``."""
    import cv2

    window = cv2.createHanningWindow(reference.shape[::-1], cv2.CV_32F)
    (dx, dy), _ = cv2.phaseCorrelate(reference, crop, window)
    return dx, dy


def shifted(alignment: ClipAlignment, shift: tuple[float, float]) -> ClipAlignment:
    """The alignment that also moves the crop by ``-shift`` (cancels a measured shift)."""
    m = np.asarray(alignment.matrix, dtype=np.float64).copy()
    m[:, 2] -= shift
    return replace(alignment, matrix=m.tolist())


class Stabiliser:
    """Stabilises the frames of clips against each clip's first frame.

    ``frame_alignment(frame, alignment, key, first)`` returns the alignment to warp
    ``frame`` with. ``key`` names the clip and ``first()`` gives its first frame, read
    once per clip (a DataLoader worker may start mid-clip, so the reference is always
    the first frame itself, never the first one seen). Only the last clip's reference is
    kept: frames of a clip arrive together.
    """

    def __init__(self) -> None:
        self._key, self._reference = None, None

    def frame_alignment(self, frame: np.ndarray, alignment: ClipAlignment, key,
                        first: Callable[[], np.ndarray]) -> ClipAlignment:
        if key != self._key:
            self._key, self._reference = key, grey_crop(first(), alignment)
        shift = frame_shift(self._reference, grey_crop(frame, alignment))
        return shifted(alignment, shift)
