"""The settings dataclasses of the jobs, importable without torch (the CLI's defaults)."""

from mer_cache.finetune.config import FinetuneConfig
from mer_cache.heads.config import FLOW_HEADS, AU_DEFAULTS, HEADS, PRESETS, HeadConfig, preset_fields

__all__ = ["FLOW_HEADS", "AU_DEFAULTS", "FinetuneConfig", "HEADS", "HeadConfig", "PRESETS", "preset_fields"]
