"""Optical-flow features: TV-L1 onset -> apex flow and optical strain, per clip, cached.

Flow: :func:`extract_flow_cache` (clips -> onset/apex choice (:mod:`.apex`) -> (u, v,
strain) maps (:mod:`.compute`) -> the flow cache, stored by :mod:`mer_cache.cache`). The
flow heads that read it live in :mod:`mer_cache.heads.flow_models`.
"""

from mer_cache.flow.apex import choose_frames, estimate_apex
from mer_cache.flow.compute import flow_maps, optical_strain, tvl1_flow
from mer_cache.flow.config import CHANNELS, FlowConfig
from mer_cache.flow.extract import (
    FlowExtractResult, clip_flow, extract_flow_cache, run_flow_extract_job,
)

__all__ = ["CHANNELS", "FlowConfig", "FlowExtractResult", "choose_frames", "clip_flow",
           "estimate_apex", "extract_flow_cache", "flow_maps", "optical_strain",
           "run_flow_extract_job", "tvl1_flow"]
