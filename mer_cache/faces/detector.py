"""The face detector the stage uses: MTCNN on a downscaled copy of the frame.

Detection runs on a copy whose short side is at most ``detect_short_side_px`` (a SAMM
frame is 2040x1088); boxes and landmarks are mapped back to the full frame, where the
alignment warps from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

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
        return self.detect_many([rgb])[0]

    def detect_many(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        """Detections of each frame (RGB or grey); frames of one size share each net call
        (:meth:`MTCNN.detect_many`)."""
        import cv2

        copies, scales = [], []
        for rgb in frames:
            if rgb.ndim == 2:
                rgb = np.repeat(rgb[..., None], 3, axis=2)  # SAMM is greyscale
            h, w = rgb.shape[:2]
            scale = min(1.0, self.config.detect_short_side_px / min(h, w))
            if scale < 1.0:
                small = cv2.resize(rgb, (round(w * scale), round(h * scale)),
                                   interpolation=cv2.INTER_AREA)
                # per axis, as rounding makes the two scales differ
                scales.append(np.array([small.shape[1] / w, small.shape[0] / h]))
                rgb = small
            else:
                scales.append(None)
            copies.append(rgb)
        with torch.inference_mode():
            found = self.net.detect_many(copies)
        return [det if s is None else _map_back(det, s) for det, s in zip(found, scales)]


def _map_back(det: Detections, s: np.ndarray) -> Detections:
    """Points found on a copy downscaled by ``s`` (x, y) in the full frame's pixels.

    Pixel centres: small pixel j covers full pixels [j / s, (j + 1) / s), so its centre is
    at (j + 0.5) / s - 0.5; dividing by s alone put every point 0.5 / s - 0.5 px up and
    left (1 px on a SAMM frame).
    """
    return Detections(((det.boxes.reshape(-1, 2, 2) + 0.5) / s - 0.5).reshape(-1, 4),
                      det.scores, (det.landmarks + 0.5) / s - 0.5)
