"""The face stage's jobs as the job API exposes them: fetch the detector's weights, draw a
contact sheet of raw frames beside their aligned crops, list clips with no or several faces.

The work is in :mod:`mer_cache.faces` (detection and alignment, the stage before the trunk).
"""

from mer_cache.faces.check import face_problems
from mer_cache.faces.preview import write_preview
from mer_cache.faces.weights import fetch_mtcnn, load_mtcnn_state

__all__ = ["face_problems", "fetch_mtcnn", "load_mtcnn_state", "write_preview"]
