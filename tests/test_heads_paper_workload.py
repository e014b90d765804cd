"""The paper's epoch (every window, class-balanced) and the fast training step's equivalence.

The fast step projects each distinct frame once and runs the Bi-LSTM's reverse direction
over the last frame only; both must leave the gradients of the plain computation
(``nn.LSTM`` over the whole window, ``out[:, -1]``) unchanged.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from heads_synth import make_sequences
from mer_cache.errors import ConfigError
from mer_cache.heads.models import create_head
from mer_cache.heads.config import HeadConfig
from mer_cache.heads.training import batch_loss
from mer_cache.pipelines import train_head
from mer_cache.heads.windows import EpochSampler

SMALL = dict(proj_dims=(24, 16), hidden=12, fc=8)


def test_every_window_each_epoch_balanced_up_to_the_largest_class():
    labels = np.array([0] * 50 + [1] * 40 + [2] * 7)
    sampler = EpochSampler(labels, 4, per_epoch=None, balance="windows", seed=3)
    for _ in range(4):  # every epoch, not only on average
        ids = sampler.next_epoch()
        assert np.bincount(labels[ids], minlength=3).tolist() == [50, 50, 50]
        counts = np.bincount(ids, minlength=len(labels))
        # each window k or k + 1 times, k = 50 // pool: full walks, then a top-up without repeats
        for c, pool in enumerate((50, 40, 7)):
            assert set(counts[labels == c].tolist()) <= {50 // pool, 50 // pool + 1}
            assert counts[labels == c].min() == 50 // pool >= 1


def test_every_window_each_epoch_unbalanced_is_one_walk():
    labels = np.array([0] * 30 + [1] * 10)
    ids = EpochSampler(labels, 2, per_epoch=None, balance="loss", seed=0).next_epoch()
    assert sorted(ids.tolist()) == list(range(40))


def test_epoch_windows_all_trains_on_the_whole_pool_per_epoch():
    seqs = make_sequences(n_subjects=6, clips_per_class=2, dim=8)
    cfg = HeadConfig(**SMALL, window=9, epochs=1, folds=2, arch="mean", epoch_windows="all")
    res = train_head(seqs, cfg)
    lengths = seqs.lengths
    for rec in res.folds:
        train = np.setdiff1d(np.arange(len(seqs)), rec["test_clips"])
        n_win = np.maximum(lengths[train] - 9 + 1, 1)
        per_class = np.bincount(seqs.y[train], weights=n_win, minlength=4)
        assert rec["n_train_windows"] == n_win.sum()
        assert rec["windows_per_epoch"] == np.count_nonzero(per_class) * per_class.max()
    with pytest.raises(ConfigError, match="epoch_windows 'every'"):
        HeadConfig(epoch_windows="every")


def _plain_logits(head, x):
    """The plain computation: project every frame, run nn.LSTM both ways over the window."""
    b, t, d = x.shape
    z = head.project(x.reshape(b * t, d)).reshape(b, t, -1)
    return head.cls(head.rnn(z)[0][:, -1])


def _grads(loss, head):
    head.zero_grad(set_to_none=True)
    loss.backward()
    return {n: None if p.grad is None else p.grad.clone() for n, p in head.named_parameters()}


NO_GRAD = "rnn.weight_hh_l0_reverse"  # multiplies only the reverse direction's zero state


def _fast_and_plain_losses(precision, seed=0):
    """The fast training step's loss and the plain computation's, on one head."""
    torch.manual_seed(seed)
    head = create_head("bilstm", in_dim=20, n_classes=4, **SMALL).train()
    bank = torch.randn(200, 20)
    rows = torch.arange(6 * 9).reshape(6, 9) * 3  # no frame shared: BatchNorm sees the same frames
    y = torch.tensor([0, 1, 2, 3, 0, 1])

    def fast():
        return batch_loss(head, bank, rows, y, weight=None, precision=precision)

    def plain():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            logits = _plain_logits(head, bank[rows])
        return F.cross_entropy(logits.float(), y)

    return head, fast, plain


@pytest.mark.parametrize("precision, tol", [("fp32", 1e-5), ("bf16", 2e-2)])
def test_fast_step_gradients_equal_the_plain_loop(precision, tol):
    head, fast, plain = _fast_and_plain_losses(precision)
    fast_g, plain_g = _grads(fast(), head), _grads(plain(), head)
    assert plain_g.keys() == fast_g.keys()
    assert torch.equal(plain_g[NO_GRAD], torch.zeros_like(plain_g[NO_GRAD])) and fast_g[NO_GRAD] is None
    for name, g in plain_g.items():
        if name != NO_GRAD:
            assert g.abs().max() > 0
            torch.testing.assert_close(fast_g[name], g, atol=tol * max(1.0, g.abs().max().item()),
                                       rtol=tol)


def test_fast_steps_update_parameters_as_the_plain_loop():
    """Three steps of train_fold's optimizer (fused Adam) leave the same weights both ways (fp32)."""
    weights = []
    for step in ("fast", "plain"):
        head, fast, plain = _fast_and_plain_losses("fp32", seed=1)
        opt = torch.optim.Adam(head.parameters(), lr=2.6e-3, fused=True)
        for _ in range(3):
            opt.zero_grad(set_to_none=True)
            (fast if step == "fast" else plain)().backward()
            opt.step()
        weights.append({n: p.detach().clone() for n, p in head.named_parameters()})
    # a Linear bias before BatchNorm has a zero true gradient (BatchNorm subtracts the batch
    # mean): Adam turns its float noise into +-lr steps in either computation
    noise_only = {f"proj.{i}.bias" for i, m in enumerate(head.proj) if isinstance(m, torch.nn.Linear)}
    torch.manual_seed(1)
    init = dict(create_head("bilstm", in_dim=20, n_classes=4, **SMALL).named_parameters())
    for name, w in weights[1].items():
        if name in noise_only:
            continue
        assert (w - init[name]).abs().max() > 0 or name == NO_GRAD  # no weight decay: unchanged
        torch.testing.assert_close(weights[0][name], w, atol=1e-6, rtol=0)


def test_bilstm_decode_equals_the_full_two_way_lstm_readout():
    torch.manual_seed(1)
    head = create_head("bilstm", in_dim=20, n_classes=4, **SMALL)
    z = torch.randn(5, 13, 16, requires_grad=True)
    fast = head.decode(z)
    plain = head.cls(head.rnn(z)[0][:, -1])
    torch.testing.assert_close(fast, plain)
    gz_fast, = torch.autograd.grad(fast.sum(), z)
    gz_plain, = torch.autograd.grad(plain.sum(), z)
    torch.testing.assert_close(gz_fast, gz_plain)
    assert gz_plain[:, -1].abs().max() > 0
