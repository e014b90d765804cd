"""The :class:`Trunk` module every registered CNN is wrapped in.

A trunk takes ``uint8`` frames ``(B, C, H, W)`` in RGB (or gray) order, as the frame
decoder produces them, and returns one embedding per frame ``(B, D)`` from the tapped
layer. Channel reordering and mean/std normalization happen here, on the device.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import torch
from torch import nn

from mer_cache.errors import TrunkError
from mer_cache.trunks.spec import Preprocessing, TrunkSpec


class TappableNet(Protocol):
    """What a network must offer to be wrapped as a trunk."""

    def forward_features(self, x: torch.Tensor, layer: str) -> torch.Tensor:
        """Normalized input ``(B, C, H, W)`` -> embedding ``(B, D)`` of ``layer``."""

    def cam_modules(self) -> dict[str, nn.Module]:
        """Spatial layers by name (``layer1``..``layer4``), in forward order."""


class Trunk(nn.Module):
    """A CNN wrapped with its preprocessing, its tapped layer and its weights' identity."""

    def __init__(
        self,
        spec: TrunkSpec,
        net: nn.Module,
        *,
        preprocessing: Preprocessing,
        layer: str | None = None,
        weights_sha256: str | None = None,
        weights_path: Path | None = None,
        weights_format: str = "random",
    ) -> None:
        super().__init__()
        layer = layer or spec.default_layer
        if layer not in spec.layers:
            known = ", ".join(spec.layers)
            raise TrunkError(
                f"Trunk '{spec.name}' has no layer '{layer}'. Layers that can be tapped: {known}."
            )
        self.spec = spec
        self.net = net
        self.preprocessing = preprocessing
        self.layer = layer
        self.weights_sha256 = weights_sha256
        self.weights_path = weights_path
        self.weights_format = weights_format
        c = preprocessing.n_channels
        self.register_buffer(
            "mean", torch.tensor(preprocessing.mean, dtype=torch.float32).view(1, c, 1, 1),
            persistent=False,
        )
        self.register_buffer(
            "std", torch.tensor(preprocessing.std, dtype=torch.float32).view(1, c, 1, 1),
            persistent=False,
        )

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def dim(self) -> int:
        return self.spec.layers[self.layer]

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 RGB/gray ``(B, C, H, W)`` -> float model input in the model's order."""
        x = x.float()
        if self.preprocessing.channels == "bgr":
            x = x.flip(1)  # decoder gives RGB; Caffe-trained VGGFace2 weights expect BGR
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.forward_features(self.normalize(x), self.layer)  # (B, D)

    def cam_modules(self) -> dict[str, nn.Module]:
        return self.net.cam_modules()

    def identity(self) -> dict:
        """What a cache fingerprint records about this trunk."""
        return {
            "trunk": self.spec.name,
            "layer": self.layer,
            "dim": self.dim,
            "weights_sha256": self.weights_sha256,
            "weights_format": self.weights_format,
            # provenance only: where the weights were read from (predict looks there first)
            "weights_path": str(self.weights_path.resolve()) if self.weights_path else None,
            "preprocessing": self.preprocessing.to_dict(),
        }
