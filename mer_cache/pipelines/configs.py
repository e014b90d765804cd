"""The settings dataclasses of the jobs, importable without torch (the CLI's defaults)."""

from mer_cache.finetune.config import FinetuneConfig
from mer_cache.heads.config import HEADS, PRESETS, HeadConfig, preset_fields

__all__ = ["FinetuneConfig", "HEADS", "HeadConfig", "PRESETS", "preset_fields"]
