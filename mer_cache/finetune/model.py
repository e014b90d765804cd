"""A trunk partly retrained from layer l_s on, with the fc1 -> fc2 -> fc3 classifier of Exp-I.

Bai & Goecke freeze l_0..l_{s-1} and retrain l_s..end. Here "layers" are the trunk's spatial
layers in forward order (``trunk.cam_modules()``: ``layer1..layer4`` of a ResNet,
``stem, module1..module4`` of the mini-Xception): the spatial layers from l_s on are
trainable; everything else in the trunk stays frozen (the stem before the first spatial
layer, and classifier parts the embedding does not use).
"""

from __future__ import annotations

import torch
from torch import nn

from mer_cache.errors import TrunkError
from mer_cache.trunks.base import Trunk


def split_layers(trunk: Trunk, from_layer: str) -> tuple[list[str], list[str]]:
    """(frozen spatial layers, trainable spatial layers) for l_s = ``from_layer``.

    Raises
    ------
    TrunkError
        When ``from_layer`` is not a spatial layer of the trunk (the message lists them).
    """
    names = list(trunk.cam_modules())
    if from_layer not in names:
        raise TrunkError(f"Trunk '{trunk.name}' has no spatial layer '{from_layer}' to fine-tune "
                         f"from. Valid layers, in forward order: {', '.join(names)} (or 'auto').")
    s = names.index(from_layer)
    return names[:s], names[s:]


def make_classifier(dim: int, fc_dims: tuple[int, ...], n_classes: int, *,
                    dropout: float) -> nn.Sequential:
    """fc1 -> fc2 -> ... -> fc3: Linear + BatchNorm + ReLU per hidden width, then the logits.

    The reference code's encoder uses Linear + BatchNorm + ReLU blocks after pool5
    (2048 -> 1024 -> 768 -> 512); Exp-I names fc1, fc2, fc3 without widths.
    """
    layers: list[nn.Module] = []
    width = dim
    for h in fc_dims:
        layers += [nn.Linear(width, h), nn.BatchNorm1d(h), nn.ReLU(inplace=True)]
        width = h
    layers += [nn.Dropout(dropout), nn.Linear(width, n_classes)]
    return nn.Sequential(*layers)


class FinetuneModel(nn.Module):
    """Trunk (frozen before l_s) + classifier; input uint8 frames ``(B, C, H, W)``.

    ``augment`` (optional) maps normalized inputs to augmented ones during training.
    """

    def __init__(self, trunk: Trunk, *, from_layer: str, n_classes: int,
                 fc_dims: tuple[int, ...], dropout: float) -> None:
        super().__init__()
        # Contiguous layout for training: with channels_last, the CPU weight gradient of a 1x1
        # stride-2 conv (fer-minixception's shortcuts) segfaults in torch 2.14 (oneDNN);
        # inference keeps the trunk's own layout. On CUDA the caller may switch back.
        trunk.net.to(memory_format=torch.contiguous_format)
        self.trunk = trunk
        self.from_layer = from_layer
        self.frozen_layers, self.trainable_layers = split_layers(trunk, from_layer)
        modules = trunk.cam_modules()
        self.trainable_modules = [modules[n] for n in self.trainable_layers]
        trunk.requires_grad_(False)
        for m in self.trainable_modules:
            m.requires_grad_(True)
        self.classifier = make_classifier(trunk.dim, fc_dims, n_classes, dropout=dropout)
        self.train(False)

    def train(self, mode: bool = True) -> "FinetuneModel":
        super().train(mode)
        # Frozen layers stay in eval mode even while training: requires_grad=False stops the
        # weights, but a BatchNorm in train mode would still normalize with the statistics of
        # each small fine-tuning batch and overwrite its running mean/var (buffers, saved in the
        # checkpoint). The frozen part must compute exactly the pretrained function.
        self.trunk.eval()
        if mode:
            for m in self.trainable_modules:
                m.train()
        return self

    def embed(self, x_normalized):
        """Normalized input ``(B, C, H, W)`` -> embedding ``(B, D)``."""
        return self.trunk.net.forward_features(x_normalized, self.trunk.layer)

    def forward(self, x_uint8, augment=None):
        x = self.trunk.normalize(x_uint8)  # (B, C, H, W) float
        if augment is not None:
            x = augment(x)
        return self.classifier(self.embed(x))  # (B, n_classes)
