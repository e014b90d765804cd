"""Every registered head: output shapes, the project/decode split, checkpoints."""

import pytest
import torch

from mer_cache.errors import ConfigError
from mer_cache.heads.models import SEQUENCE_HEADS, create_head

SMALL = dict(proj_dims=(32, 24, 16), hidden=12, fc=8)


@pytest.mark.parametrize("arch", sorted(SEQUENCE_HEADS))  # flow heads: test_heads_flow.py
def test_head_maps_windows_to_class_logits(arch):
    torch.manual_seed(0)
    head = create_head(arch, in_dim=10, n_classes=4, **SMALL)
    x = torch.randn(5, 7, 10)  # (B, T, D)
    assert head(x).shape == (5, 4)
    head.eval()
    z = head.project(x.reshape(-1, 10)).reshape(5, 7, -1)
    assert z.shape == (5, 7, 16)
    torch.testing.assert_close(head.decode(z), head(x))


def test_recurrent_heads_see_frame_order_and_pools_do_not():
    torch.manual_seed(0)
    x = torch.randn(3, 9, 10)
    flipped = x.flip(1)
    for arch, order_matters in [("lstm", True), ("bilstm", True), ("gru", True),
                                ("mean", False), ("frame", False)]:
        head = create_head(arch, in_dim=10, n_classes=4, **SMALL).eval()
        same = torch.allclose(head(x), head(flipped), atol=1e-5)
        assert same != order_matters, arch


def test_paper_sizes_are_the_defaults():
    lstm = create_head("lstm", in_dim=2048, n_classes=4)
    assert [m.out_features for m in lstm.proj if isinstance(m, torch.nn.Linear)] == [1024, 768, 512]
    assert (lstm.rnn.num_layers, lstm.rnn.hidden_size, lstm.rnn.bidirectional) == (3, 512, False)
    bi = create_head("bilstm", in_dim=2048, n_classes=4)
    assert (bi.rnn.num_layers, bi.rnn.bidirectional) == (1, True)
    assert bi.cls[0].in_features == 1024 and bi.cls[0].out_features == 256


def test_unknown_head_lists_the_known():
    with pytest.raises(ConfigError, match="Known heads: lstm, bilstm"):
        create_head("transformer", in_dim=4, n_classes=2)
