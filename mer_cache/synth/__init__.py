"""Synthetic micro-expression data: procedural faces, AU-like motion, real dataset layouts.

The built-in default data of mer-cache (``mer-cache synth``). See
:func:`generate_dataset` and :class:`SynthConfig`.
"""

from mer_cache.synth.generator import (
    GENERATOR_VERSION, MANIFEST, SynthConfig, SynthSummary, generate_dataset,
)

__all__ = ["GENERATOR_VERSION", "MANIFEST", "SynthConfig", "SynthSummary", "generate_dataset"]
