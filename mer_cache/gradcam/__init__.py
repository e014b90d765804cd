"""Grad-CAM over trunk layers: heat maps, a focus score per layer, and the layer to fine-tune from.

``GradCAM`` is the hook class; :func:`suggest_layer` ranks layers by the share of CAM mass on
the moving face regions; :func:`run_gradcam` writes the PNG grids (before/after fine-tuning).
"""

from mer_cache.gradcam.cam import ClassLogitTarget, EmbeddingNormTarget, GradCAM
from mer_cache.gradcam.focus import RegionSource, focus_score, regions_for_clips, resolve_regions
from mer_cache.gradcam.report import FineTuned, GradcamReport, run_gradcam
from mer_cache.gradcam.suggest import suggest_layer

__all__ = ["ClassLogitTarget", "EmbeddingNormTarget", "FineTuned", "GradCAM", "GradcamReport", "RegionSource",
           "focus_score", "regions_for_clips", "resolve_regions", "run_gradcam", "suggest_layer"]
