"""What a trunk builder returns: the network, its preprocessing and its weights' identity."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from mer_cache.trunks.spec import Preprocessing


@dataclass(frozen=True)
class BuiltNet:
    net: nn.Module
    preprocessing: Preprocessing
    weights_sha256: str | None
    weights_format: str
    weights_path: Path | None = None
