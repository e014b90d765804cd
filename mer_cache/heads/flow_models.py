"""Heads over one optical-flow map per clip: STSTNet and OFF-ApexNet.

A flow cache stores one ``(C, H, W)`` map per clip (u, v, strain at 28 x 28; see
:mod:`mer_cache.flow`); the training loop sees it as a one-step sequence of one flattened
map, ``(1, C*H*W)``, so folds, balancing, early stopping, checkpoints and metrics are the
sequence heads' own. Each head splits into :meth:`project` (map -> features, per clip) and
:meth:`decode` (features of a length-1 window -> logits), the interface the loop calls.

Layer sizes, with sources:

- ``ststnet`` (Liong, Gan, See, Khor, Huang 2019, arXiv:1902.03634; its public PyTorch
  port): input (u, v, strain) 28 x 28; three parallel streams of 3, 5 and 8 filters
  (3 x 3, padding 2 -> 30 x 30), each ReLU + BatchNorm + MaxPool(3, stride 3, padding 1)
  (-> 10 x 10) + dropout 0.5; concatenated (16 channels), AvgPool(2) -> 5 x 5 x 16 = 400
  -> Linear(400, classes). The port applies ReLU before BatchNorm; kept as ported.
- ``offapexnet`` (Gan, Liong, Yau, Huang, Tan 2019, "OFF-ApexNet on micro-expression
  recognition system", Signal Processing: Image Communication, arXiv:1805.08699): one
  stream per flow component (u, v), each conv 6 filters -> MaxPool 2 -> conv 16 filters ->
  MaxPool 2 (28 -> 14 -> 7: 16 x 7 x 7 = 784 per stream), concatenated 1568 -> FC 1024
  -> FC 1024 -> classes, ReLU, dropout 0.5. Public ports disagree on the kernel: 5 x 5
  (padding 2) in the two-stream PRICAI2021-Off-TANet port, 3 x 3 on stacked (u, v) in
  meb's; we follow the two-stream port (the paper's two streams, LeNet-style 6/16 filters
  of 5 x 5) and did not check the paper's table itself.
"""

from __future__ import annotations

import torch
from torch import nn

from mer_cache.errors import ConfigError

SIDE = 28  # the input size both papers use
OFFAPEX_KERNEL = 5  # see the module docstring: 5 x 5 (Off-TANet port) vs 3 x 3 (meb port)


def _check_input(name: str, in_dim: int, channels: tuple[int, ...]) -> int:
    c, rest = divmod(in_dim, SIDE * SIDE)
    if rest or c not in channels:
        need = " or ".join(f"{k} x {SIDE} x {SIDE} = {k * SIDE * SIDE}" for k in channels)
        raise ConfigError(f"{name} reads flow maps of {need} values per clip; this input has "
                          f"{in_dim}. Train it on a flow cache (`mer-cache extract --features "
                          f"flow`), whose maps are (u, v, strain) at {SIDE} x {SIDE}.")
    return c


class FlowHead(nn.Module):
    """Base of the flow heads: (F, C*28*28) flattened maps in, the loop's interface out."""

    def __init__(self, in_dim: int, n_classes: int) -> None:
        super().__init__()
        self.in_dim, self.n_classes = in_dim, n_classes

    def maps(self, frames: torch.Tensor) -> torch.Tensor:
        return frames.reshape(len(frames), -1, SIDE, SIDE)  # (F, C, 28, 28)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, T, P) -> (B, C); a flow clip has T = 1, so this is the classifier on z[:, 0]."""
        return self.cls(z.mean(dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, 28, 28) maps, or (B, 1, C*28*28) as the loop stores them -> (B, classes)."""
        flat = x.reshape(len(x), -1)  # (B, C*28*28)
        return self.decode(self.project(flat).unsqueeze(1))


class STSTNet(FlowHead):
    """Shallow triple-stream CNN on (u, v, strain); 400 features -> Linear(400, classes)."""

    widths = (3, 5, 8)  # filters of the three streams

    def __init__(self, in_dim: int, n_classes: int, **_ignored) -> None:
        super().__init__(in_dim, n_classes)
        c = _check_input("ststnet", in_dim, (3,))
        self.streams = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, w, 3, padding=2), nn.ReLU(inplace=True), nn.BatchNorm2d(w),
                          nn.MaxPool2d(3, stride=3, padding=1), nn.Dropout(0.5))
            for w in self.widths)
        self.pool = nn.AvgPool2d(2)
        self.cls = nn.Linear(5 * 5 * sum(self.widths), n_classes)  # 400 -> classes

    def project(self, frames: torch.Tensor) -> torch.Tensor:
        x = self.maps(frames)  # (F, 3, 28, 28)
        z = torch.cat([s(x) for s in self.streams], dim=1)  # (F, 16, 10, 10)
        return self.pool(z).flatten(1)  # (F, 400)


class OffApexNet(FlowHead):
    """Two LeNet-style streams on u and v, FC 1024 -> 1024 -> classes (strain unused)."""

    def __init__(self, in_dim: int, n_classes: int, **_ignored) -> None:
        super().__init__(in_dim, n_classes)
        _check_input("offapexnet", in_dim, (2, 3))
        k, pad = OFFAPEX_KERNEL, OFFAPEX_KERNEL // 2

        def stream() -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(1, 6, k, padding=pad), nn.ReLU(inplace=True), nn.MaxPool2d(2),
                                 nn.Conv2d(6, 16, k, padding=pad), nn.ReLU(inplace=True), nn.MaxPool2d(2))

        self.u_stream, self.v_stream = stream(), stream()
        self.cls = nn.Sequential(
            nn.Linear(2 * 16 * 7 * 7, 1024), nn.ReLU(inplace=True), nn.Dropout(0.5),
            nn.Linear(1024, 1024), nn.ReLU(inplace=True), nn.Dropout(0.5),
            nn.Linear(1024, n_classes))

    def project(self, frames: torch.Tensor) -> torch.Tensor:
        x = self.maps(frames)  # (F, C, 28, 28): channel 0 is u, 1 is v
        u = self.u_stream(x[:, 0:1]).flatten(1)  # (F, 784)
        v = self.v_stream(x[:, 1:2]).flatten(1)  # (F, 784)
        return torch.cat([u, v], dim=1)  # (F, 1568)


FLOW_HEADS = {"ststnet": STSTNet, "offapexnet": OffApexNet}
