"""Matmul FLOPs of one head-training step, counted from the layer shapes, and the machine's
dense matmul rate to compare them with.

A training step projects its U distinct frames (``batch_loss`` in ``heads/training.py``)
and decodes B windows of N frames. Counted: every matrix product of the forward pass
(2 FLOPs per multiply-add) and of the backward pass (input and weight gradients, 2x the
forward, except the input gradient of the first layer, as the cached frames need none, and
the gradient into a recurrent layer's zero initial state).
Elementwise work (BatchNorm, gates, ReLU, Adam) is left out: it is small next to the
products, and leaving it out can only lower the reported rate. For ``bilstm`` the reverse
direction counts one cell step from the zero state, its input product alone: the readout
``out[:, -1]`` reads its state after the last frame only, nothing else of it reaches the
loss, and its recurrent product multiplies the zero state (``models.py``).
"""

from __future__ import annotations

import time

import torch

GATES = {"lstm": 4, "bilstm": 4, "gru": 3}
LAYERS = {"lstm": 3, "bilstm": 1, "gru": 1}


def step_flops(*, arch: str, distinct_frames: int, batch: int, window: int, in_dim: int,
               n_classes: int, proj_dims=(1024, 768, 512), hidden: int = 512, fc: int = 256) -> int:
    """Forward + backward matmul FLOPs of one training step (see the module docstring)."""
    u, b, t = distinct_frames, batch, window
    dims = (in_dim, *proj_dims)
    proj = sum(2 * u * i * o for i, o in zip(dims, dims[1:]))  # (U, D) -> (U, P)
    total = 3 * proj - 2 * u * dims[0] * dims[1]  # no input gradient into the cache
    feat = proj_dims[-1]
    if arch in GATES:
        g, steps_in = GATES[arch], feat
        for _ in range(LAYERS[arch]):
            # input and hidden products per step; no gradient into h0 = 0
            total += 3 * 2 * b * t * g * hidden * (steps_in + hidden) - 2 * b * g * hidden ** 2
            if arch == "bilstm":  # reverse: one step from h0 = 0, the input product only
                total += 3 * 2 * b * g * hidden * steps_in
            steps_in = hidden
        feat = hidden * (2 if arch == "bilstm" else 1)
        head_rows = b
    else:
        head_rows = b if arch == "mean" else b * t  # 'frame' classifies every frame
    total += 3 * 2 * head_rows * (feat * fc + fc * n_classes)
    return int(total)


def matmul_rate(precision: str, *, n: int = 2048, repeats: int = 5, device: str = "cpu") -> float:
    """Best dense (n x n) @ (n x n) rate in FLOP/s at ``precision`` ('fp32' or 'bf16').

    On the CPU fp32 takes the better of torch.matmul (MKL) and oneDNN's linear, since MKL
    may run a generic code path on non-Intel CPUs; bf16 matmul already runs on oneDNN.
    """
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    dev = torch.device(device)
    a, b = torch.randn(n, n, device=dev).to(dtype), torch.randn(n, n, device=dev).to(dtype)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    candidates = [lambda: (a @ b, sync())]
    if precision == "fp32" and dev.type == "cpu" and torch.backends.mkldnn.is_available():
        am, bm = a.to_mkldnn(), b.to_mkldnn()
        candidates.append(lambda: torch._C._nn.mkldnn_linear(am, bm))
    best = float("inf")
    for fn in candidates:
        fn()  # warm-up: oneDNN builds its kernel on the first call
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best
