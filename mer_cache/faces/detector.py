"""The face detector the stage uses: MTCNN on a downscaled copy of the frame.

Detection runs on a copy whose short side is at most ``detect_short_side_px`` (a SAMM
frame is 2040x1088); boxes and landmarks are mapped back to the full frame, where the
alignment warps from.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mer_cache.faces.align import FaceConfig
from mer_cache.faces.mtcnn import MTCNN, Detections
from mer_cache.faces.weights import load_mtcnn_state


class FaceDetector:
    """Boxes and 5 landmarks of the faces in an RGB frame, in the frame's pixels."""

    def __init__(self, config: FaceConfig = FaceConfig(), *, weights: Path | None = None) -> None:
        self.config = config
        self.net = MTCNN(min_face_px=config.min_face_px)
        states = load_mtcnn_state(weights)
        for name, state in states.items():
            getattr(self.net, name).load_state_dict(state, strict=True)
        self.net.eval().channels_last()

    def __call__(self, rgb: np.ndarray) -> Detections:
        import cv2

        if rgb.ndim == 2:
            rgb = np.repeat(rgb[..., None], 3, axis=2)  # SAMM is greyscale
        h, w = rgb.shape[:2]
        scale = min(1.0, self.config.detect_short_side_px / min(h, w))
        small = rgb if scale == 1.0 else cv2.resize(
            rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        with torch.inference_mode():
            det = self.net.detect(small)
        return Detections(det.boxes / scale, det.scores, det.landmarks / scale)
