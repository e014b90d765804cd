"""Face detection and alignment before the trunk (issue 10).

Sits at the frames layer: it reads frames and hands the extractor aligned crops; it
imports only ``frames``, ``catalogue``, ``trunks`` (weights store) and ``errors``.
"""

from mer_cache.faces.align import ClipAlignment, FaceConfig, FaceError, warp_frame
from mer_cache.faces.stage import FaceStage, align_clip, align_clips, aligned_input

__all__ = ["ClipAlignment", "FaceConfig", "FaceError", "FaceStage", "align_clip", "align_clips",
           "aligned_input", "warp_frame"]
