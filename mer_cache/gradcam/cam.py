"""Grad-CAM over a trunk's spatial layers: one hook class, small target callables.

Shaped like pytorch-grad-cam (one class registers forward hooks and gradient hooks, keeps
the handles and releases them on exit; targets are callables), but written here: the
``grad-cam`` package pulls in opencv (a 61 MB wheel) for a resize that
``F.interpolate`` does, and it min-max-normalizes every map, which would bias the focus
score (a share of CAM mass). One forward and one backward pass give the maps of all layers.

Grad-CAM (Selvaraju et al.): for layer activations ``A`` (B, K, h, w) and a scalar target
``y``, ``w_k = mean_{ij} dy/dA_kij`` and ``CAM = ReLU(sum_k w_k A_k)``.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mer_cache.errors import TrunkError
from mer_cache.trunks.base import Trunk

Target = Callable[[torch.Tensor], torch.Tensor]  # embedding (B, D) -> score (B,)


class EmbeddingNormTarget:
    """``||embedding||``: for a trunk without a classifier for the task (the base trunk).

    It asks "what drives the features the head will read", with no class in mind.
    """

    def __call__(self, embedding: torch.Tensor) -> torch.Tensor:
        return embedding.float().norm(dim=1)  # (B,)


class ClassLogitTarget:
    """The logit of ``class_index`` (or of each frame's predicted class when None)."""

    def __init__(self, classifier: nn.Module, class_index: int | None = None) -> None:
        self.classifier = classifier.eval()  # BatchNorm/Dropout as at test time
        self.class_index = class_index

    def __call__(self, embedding: torch.Tensor) -> torch.Tensor:
        logits = self.classifier(embedding)  # (B, n_classes)
        idx = logits.argmax(1) if self.class_index is None else torch.full(
            (len(logits),), self.class_index, device=logits.device)
        return logits.gather(1, idx[:, None])[:, 0]  # (B,)


class GradCAM:
    """Grad-CAM maps of several layers of a trunk.

    Use as a context manager, so the hooks never outlive the computation::

        with GradCAM(trunk, ["layer3", "layer4"]) as cam:
            maps = cam(frames_uint8, EmbeddingNormTarget())  # {layer: (B, H, W)}

    Raises
    ------
    TrunkError
        When a layer is not a spatial layer of the trunk (the valid names are listed).
    """

    def __init__(self, trunk: Trunk, layers: Sequence[str]) -> None:
        modules = trunk.cam_modules()
        unknown = [name for name in layers if name not in modules]
        if unknown or not layers:
            raise TrunkError(f"Trunk '{trunk.name}' has no spatial layer "
                             f"{', '.join(repr(u) for u in unknown) or '(none given)'} for "
                             f"Grad-CAM. Valid layers, in forward order: {', '.join(modules)}.")
        self.trunk = trunk
        self.layers = list(layers)
        self._modules = {name: modules[name] for name in self.layers}
        self._handles: list = []  # forward hooks, for the with-block
        self._grad_handles: list = []  # gradient hooks on this call's activations
        self._activations: dict[str, torch.Tensor] = {}
        self._gradients: dict[str, torch.Tensor] = {}

    def __enter__(self) -> "GradCAM":
        for name, module in self._modules.items():
            self._handles.append(module.register_forward_hook(self._keeper(name)))
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def release(self) -> None:
        """Remove every hook and drop the stored tensors."""
        for handle in [*self._handles, *self._grad_handles]:
            handle.remove()
        self._handles.clear()
        self._grad_handles.clear()
        self._activations.clear()
        self._gradients.clear()

    def _keeper(self, name: str):
        def hook(module, inputs, output):
            self._activations[name] = output

            def keep_grad(grad):
                self._gradients[name] = grad

            if output.requires_grad:
                self._grad_handles.append(output.register_hook(keep_grad))

        return hook

    def __call__(self, frames: torch.Tensor, target: Target) -> dict[str, torch.Tensor]:
        """uint8 frames ``(B, C, H, W)`` -> ``{layer: CAM (B, H, W)}`` at the input size, >= 0.

        The maps are not normalized, so their mass can be compared across regions.
        """
        if not self._handles:
            raise RuntimeError("GradCAM must be used inside a `with` block.")
        self._activations.clear()
        self._gradients.clear()
        was_training = self.trunk.training
        self.trunk.eval()
        try:
            with torch.enable_grad():
                # the input requires grad, so activations of frozen layers get gradients too
                x = self.trunk.normalize(frames).requires_grad_(True)  # (B, C, H, W)
                emb = self.trunk.net.forward_features(x, self.trunk.layer)  # (B, D)
                score = target(emb).sum()
                # gradients w.r.t. the input only: the layer hooks see dy/dA on the way, and
                # no parameter .grad is touched (the trunk may be mid-training elsewhere)
                torch.autograd.grad(score, x)
        finally:
            self.trunk.train(was_training)
            for handle in self._grad_handles:
                handle.remove()
            self._grad_handles.clear()
        size = frames.shape[-2:]
        maps = {}
        for name in self.layers:
            a = self._activations[name].detach().float()  # (B, K, h, w)
            g = self._gradients[name].float()  # (B, K, h, w)
            weights = g.mean(dim=(2, 3), keepdim=True)  # (B, K, 1, 1)
            cam = F.relu((weights * a).sum(1, keepdim=True))  # (B, 1, h, w)
            cam = F.interpolate(cam, size=size, mode="bilinear", align_corners=False)
            maps[name] = cam[:, 0].clamp_min(0)  # (B, H, W)
        self._activations.clear()
        self._gradients.clear()
        return maps
