"""The benchmark's FLOP count of a training step equals what torch's FLOP counter sees."""

import sys
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from mer_cache.heads.models import SEQUENCE_HEADS, create_head
from mer_cache.heads.training import batch_loss

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from heads_flops import matmul_rate, step_flops  # noqa: E402

SMALL = dict(proj_dims=(24, 16), hidden=12, fc=8)


@pytest.mark.parametrize("arch", sorted(SEQUENCE_HEADS))  # the heads the benchmark counts
def test_counted_step_flops_equal_torch_flop_counter(arch):
    torch.manual_seed(0)
    head = create_head(arch, in_dim=20, n_classes=4, **SMALL).train()
    bank = torch.randn(100, 20)
    rows = torch.randint(0, 100, (6, 9))  # repeated frames: U < B * N
    # oneDNN's fused RNN kernel is opaque to the counter; the native path runs per-step matmuls
    with torch.backends.mkldnn.flags(enabled=False), FlopCounterMode(display=False) as counter:
        batch_loss(head, bank, rows, torch.zeros(6, dtype=torch.long), weight=None,
                   precision="fp32").backward()
    u = len(torch.unique(rows))
    assert u < 54
    assert step_flops(arch=arch, distinct_frames=u, batch=6, window=9, in_dim=20, n_classes=4,
                      **SMALL) == counter.get_total_flops()


def test_matmul_rate_is_a_positive_flop_rate():
    for precision in ("fp32", "bf16"):  # runs on any CPU; bf16 may be emulated, hence slow
        assert matmul_rate(precision, n=64, repeats=2) > 1e6
