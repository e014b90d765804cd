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
        self.net = MTCNN(min_face_px=config.min_face_px, first_pass=config.first_pass)
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
        if scale == 1.0:
            with torch.inference_mode():
                return self.net.detect(rgb)
        small = cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        with torch.inference_mode():
            det = self.net.detect(small)
        # Pixel centres: small pixel j covers full pixels [j / s, (j + 1) / s), so its centre
        # is at (j + 0.5) / s - 0.5; dividing by s alone put every point 0.5 / s - 0.5 px up
        # and left (1 px on a SAMM frame). Per axis, as rounding makes the two scales differ.
        s = np.array([small.shape[1] / w, small.shape[0] / h])
        return Detections(((det.boxes.reshape(-1, 2, 2) + 0.5) / s - 0.5).reshape(-1, 4),
                          det.scores, (det.landmarks + 0.5) / s - 0.5)
