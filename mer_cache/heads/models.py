"""Temporal heads over cached frame embeddings: a name -> class registry.

Every head is the paper's per-frame projection (Bai & Goecke reference code: pool5 2048 ->
fc 1024 -> 768 -> 512, each with BatchNorm and ReLU) followed by a decoder over time:

- ``lstm``   Exp-II: 3-layer LSTM, hidden 512, fc 256 -> classes on the last time step.
- ``bilstm`` Exp-III: 1-layer Bi-LSTM, hidden 512, fc 256 -> classes on the last time step.
  The readout is the Bi-LSTM output at the last step (``out[:, -1]``: the forward state after
  the whole window concatenated with the backward state after the last frame only), as the
  reference code reads ``output[:, -1]``; it is the faithful choice, not the richest one.
- ``gru``    1-layer GRU, hidden 512, same readout as ``lstm``.
- ``mean``   temporal mean of the projected frames, then fc 256 -> classes.
- ``frame``  the static baseline: fc 256 -> classes on every frame, logits averaged over time.

The split into :meth:`TemporalHead.project` (per frame) and :meth:`TemporalHead.decode`
(per window) lets training project each distinct frame of a batch once and gather the
windows afterwards (see ``training.py``); ``forward`` chains both for plain (B, T, D) input.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from mer_cache.errors import ConfigError
from mer_cache.heads.flow_models import FLOW_HEADS

from mer_cache.heads.config import FC, HIDDEN, PROJECTION_DIMS
from mer_cache.heads.config import HEADS as HEAD_NAMES


def _projection(in_dim: int, dims: tuple[int, ...]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for d in dims:
        layers += [nn.Linear(in_dim, d), nn.BatchNorm1d(d), nn.ReLU(inplace=True)]
        in_dim = d
    return nn.Sequential(*layers)


class TemporalHead(nn.Module):
    """Per-frame projection plus a decoder; subclasses implement :meth:`decode`.

    Parameters
    ----------
    in_dim : int
        Embedding size D of the cache.
    n_classes : int
    proj_dims : tuple of int
        Widths of the per-frame projection.
    hidden : int
        Recurrent hidden size.
    fc : int
        Width of the fc layer before the classifier.
    """

    def __init__(self, in_dim: int, n_classes: int, *, proj_dims: tuple[int, ...] = PROJECTION_DIMS,
                 hidden: int = HIDDEN, fc: int = FC) -> None:
        super().__init__()
        self.in_dim, self.n_classes = in_dim, n_classes
        self.proj = _projection(in_dim, tuple(proj_dims))
        self.feat_dim = proj_dims[-1]

    def project(self, frames: torch.Tensor) -> torch.Tensor:
        """(F, D) frames -> (F, P) projected frames; BatchNorm runs over the F frames."""
        return self.proj(frames)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, T, P) projected windows -> (B, C) logits."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape  # (B, T, D)
        z = self.project(x.reshape(b * t, d)).reshape(b, t, -1)  # (B, T, P)
        return self.decode(z)  # (B, C)


def _classifier(in_dim: int, fc: int, n_classes: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, fc), nn.ReLU(inplace=True), nn.Linear(fc, n_classes))


class LSTMHead(TemporalHead):
    """Exp-II: 3-layer LSTM decoder, last time step."""

    layers, bidirectional, cell = 3, False, nn.LSTM

    def __init__(self, in_dim: int, n_classes: int, **kw) -> None:
        super().__init__(in_dim, n_classes, **kw)
        hidden = kw.get("hidden", HIDDEN)
        self.rnn = self.cell(self.feat_dim, hidden, num_layers=self.layers, batch_first=True,
                             bidirectional=self.bidirectional)
        out = hidden * (2 if self.bidirectional else 1)
        self.cls = _classifier(out, kw.get("fc", FC), n_classes)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(z)  # (B, T, H) or (B, T, 2H)
        return self.cls(out[:, -1])  # (B, C): last time step, as the reference code reads it


class BiLSTMHead(LSTMHead):
    """Exp-III: 1-layer Bi-LSTM decoder; readout ``out[:, -1]`` (see the module docstring).

    ``out[:, -1]`` holds the reverse direction's state after the last frame alone: one LSTM
    cell step from the zero state. :meth:`decode` computes that step directly instead of
    running the reverse direction over all T frames: the same output and gradients as
    ``self.rnn(z)[0][:, -1]`` (tested; ``weight_hh_l0_reverse``, which only ever multiplies
    the zero state, gets none), without the reverse direction's T - 1 unread steps
    (about 46 % of the decoder's work at T = 13) or a second oneDNN LSTM call, whose fixed
    cost is most of the time of a one-step run. On CUDA the plain call is kept: cuDNN wants
    the module's single flat weight buffer.
    """

    layers, bidirectional = 1, True

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        if z.is_cuda:  # cuDNN runs both directions fused from the module's one weight buffer
            return super().decode(z)
        b = z.shape[0]
        w = self.rnn._flat_weights  # [w_ih, w_hh, b_ih, b_hh] forward, then the same reverse
        h0 = z.new_zeros(1, b, self.rnn.hidden_size)
        # torch.lstm is what nn.LSTM.forward calls; the forward direction alone here
        fwd = torch.lstm(z, (h0, h0), w[:4], True, 1, 0.0, self.training, False, True)[0]
        rev = _lstm_step_from_zero(z[:, -1], w[4], w[6], w[7]).to(fwd.dtype)  # (B, H)
        return self.cls(torch.cat([fwd[:, -1], rev], dim=1))  # (B, 2H) -> (B, C)


def _lstm_step_from_zero(x: torch.Tensor, w_ih: torch.Tensor, b_ih: torch.Tensor,
                         b_hh: torch.Tensor) -> torch.Tensor:
    """(B, I) -> (B, H): an LSTM cell's output from the zero state h0 = c0 = 0, as nn.LSTM's.

    From h0 = 0 the recurrent product ``w_hh @ h0`` is zero, so ``w_hh`` is left out and
    gets no gradient (None, where nn.LSTM gives it zeros): Adam then skips it, where a zero
    gradient moves it only through weight decay (0 by default). No output depends on it
    either way. The product runs at the autocast precision, the gates in float32.
    """
    gates = F.linear(x, w_ih, b_ih).float() + b_hh  # (B, 4H): i, f, g, o
    i, _, g, o = gates.chunk(4, dim=1)  # f multiplies c0 = 0
    return torch.sigmoid(o) * torch.tanh(torch.sigmoid(i) * torch.tanh(g))


class GRUHead(LSTMHead):
    """1-layer GRU decoder, last time step."""

    layers, cell = 1, nn.GRU


class MeanHead(TemporalHead):
    """Temporal mean-pool of the projected frames, then an MLP."""

    def __init__(self, in_dim: int, n_classes: int, **kw) -> None:
        super().__init__(in_dim, n_classes, **kw)
        self.cls = _classifier(self.feat_dim, kw.get("fc", FC), n_classes)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.cls(z.mean(dim=1))  # (B, P) -> (B, C)


class FrameHead(MeanHead):
    """Static baseline: classify every frame, average the logits over time."""

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.cls(z).mean(dim=1)  # (B, T, C) -> (B, C)


SEQUENCE_HEADS: dict[str, Callable[..., TemporalHead]] = {
    "lstm": LSTMHead, "bilstm": BiLSTMHead, "gru": GRUHead, "mean": MeanHead, "frame": FrameHead,
}
# every head the loop trains: the flow heads read one (C, H, W) map per clip, seen as a
# length-1 sequence (heads/flow_models.py)
HEADS: dict[str, Callable[..., torch.nn.Module]] = {**SEQUENCE_HEADS, **FLOW_HEADS}
if tuple(HEADS) != HEAD_NAMES:  # the config validates names without importing torch
    raise RuntimeError(f"heads.config.HEADS {HEAD_NAMES} must list the registry {tuple(HEADS)}")


def create_head(arch: str, *, in_dim: int, n_classes: int, proj_dims: tuple[int, ...] = PROJECTION_DIMS,
                hidden: int = HIDDEN, fc: int = FC) -> TemporalHead:
    """Build a head by registry name.

    Raises
    ------
    ConfigError
        For an unknown name (the message lists the known ones).
    """
    if arch not in HEADS:
        raise ConfigError(f"Unknown head '{arch}'. Known heads: {', '.join(HEADS)}.")
    return HEADS[arch](in_dim, n_classes, proj_dims=tuple(proj_dims), hidden=hidden, fc=fc)


def load_head(path) -> tuple[TemporalHead, dict]:
    """Rebuild a head from a ``fold{k}.pt`` checkpoint; returns (head in eval mode, metadata).

    The metadata holds ``arch``, ``in_dim``, ``classes``, ``head_kwargs``, ``config`` (the run's
    HeadConfig as a dict), ``fold`` and ``test_clip_ids``.
    """
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    kw = ckpt["head_kwargs"]
    head = create_head(ckpt["arch"], in_dim=ckpt["in_dim"], n_classes=len(ckpt["classes"]),
                       proj_dims=tuple(kw["proj_dims"]), hidden=kw["hidden"], fc=kw["fc"])
    head.load_state_dict(ckpt["state_dict"])
    head.eval()
    meta = {k: v for k, v in ckpt.items() if k != "state_dict"}
    return head, meta
