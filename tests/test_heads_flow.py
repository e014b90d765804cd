"""Flow heads: published shapes, guards, and learning a planted flow signal under the loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mer_cache.errors import ConfigError
from mer_cache.heads.data import sequences_from_arrays
from mer_cache.heads.flow_models import OffApexNet, STSTNet
from mer_cache.heads.models import create_head, load_head
from mer_cache.heads.config import HeadConfig
from mer_cache.pipelines import train_head

RAW = ("negative", "positive", "surprise")
FLOW_FP = {"features": "flow", "channels": ["u", "v", "strain"], "out_size": 28}


def planted_flow(*, n_subjects=6, clips_per_class=4, seed=0):
    """(u, v, strain) maps whose class is where the face moves: brows up (v < 0, top),
    mouth corners out (u, middle), jaw down (v > 0, bottom); plus per-subject noise."""
    rng = np.random.default_rng(seed)
    maps, ids, subs, labels = [], [], [], []
    for s in range(n_subjects):
        bias = rng.normal(scale=0.05, size=(3, 28, 28))
        for c in range(3):
            for k in range(clips_per_class):
                m = bias + rng.normal(scale=0.15, size=(3, 28, 28))
                amp = rng.uniform(0.3, 0.6)
                if c == 0:
                    m[1, 3:10, 6:22] -= amp
                elif c == 1:
                    m[0, 12:18, 4:10] -= amp
                    m[0, 12:18, 18:24] += amp
                else:
                    m[1, 20:27, 8:20] += amp
                m[2] = np.abs(m[2])
                maps.append(m.reshape(1, -1).astype(np.float32))
                ids.append(f"smic/s{s}/{RAW[c]}_{k}")
                subs.append(f"s{s}")
                labels.append(RAW[c])
    return sequences_from_arrays(maps, clip_ids=ids, subjects=subs, datasets=["smic"] * len(maps),
                                 labels=labels, scheme="smic4", fingerprint=FLOW_FP)


@pytest.mark.parametrize("cls, width", [(STSTNet, 400), (OffApexNet, 1568)])
def test_flow_heads_have_the_published_feature_sizes(cls, width):
    head = cls(3 * 28 * 28, 3).eval()
    flat = torch.randn(5, 3 * 28 * 28)
    z = head.project(flat)
    assert z.shape == (5, width)  # STSTNet 5 x 5 x 16; OFF-ApexNet 2 x 16 x 7 x 7
    assert head.decode(z.unsqueeze(1)).shape == (5, 3)
    torch.testing.assert_close(head(flat.reshape(5, 3, 28, 28)), head.decode(z.unsqueeze(1)))


def test_ststnet_layers_are_the_published_ones():
    head = STSTNet(3 * 28 * 28, 3)
    convs = [m for m in head.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [3, 5, 8]
    assert all(c.kernel_size == (3, 3) and c.padding == (2, 2) for c in convs)
    assert head.cls.in_features == 400 and head.cls.out_features == 3


def test_offapexnet_reads_u_and_v_only():
    head = OffApexNet(3 * 28 * 28, 3).eval()
    x = torch.randn(4, 3, 28, 28)
    y = x.clone()
    y[:, 2] = torch.randn(4, 28, 28)  # another strain channel
    torch.testing.assert_close(head(x), head(y))
    y[:, 1] += 1.0
    assert not torch.allclose(head(x), head(y))


def test_flow_heads_refuse_an_input_that_is_not_a_28x28_map():
    with pytest.raises(ConfigError, match="ststnet reads flow maps of 3 x 28 x 28"):
        create_head("ststnet", in_dim=512, n_classes=3)
    with pytest.raises(ConfigError, match="offapexnet"):
        create_head("offapexnet", in_dim=4 * 784, n_classes=3)


def test_flow_arch_and_cache_kind_must_match():
    flow = planted_flow(n_subjects=2, clips_per_class=1)
    with pytest.raises(ConfigError, match="needs an embedding cache"):
        train_head(flow, HeadConfig(arch="frame", window=1, folds=2))
    from heads_synth import make_sequences

    with pytest.raises(ConfigError, match="reads optical-flow maps"):
        train_head(make_sequences(n_subjects=4, clips_per_class=1), HeadConfig(arch="ststnet", window=1))
    with pytest.raises(ConfigError, match="use window 1"):
        HeadConfig(arch="ststnet", window=13)


def test_each_arch_has_its_own_default_window_in_the_library_as_on_the_cli():
    """A notebook's HeadConfig(arch="ststnet") is train-head --arch ststnet: window 1; the
    sequence heads keep the paper's 13, and a typed window is kept."""
    from mer_cache.pipelines.sweep import expand_grid

    assert HeadConfig(arch="ststnet").window == HeadConfig(arch="offapexnet").window == 1
    assert HeadConfig().window == HeadConfig(arch="lstm").window == 13
    assert HeadConfig(arch="lstm", window=7).window == 7
    points = expand_grid({"arch": ["ststnet", "offapexnet"]}, base=HeadConfig())
    assert [c.window for _, c in points] == [1, 1]
    points = expand_grid({"arch": ["lstm", "gru"]}, base=HeadConfig(window=9))
    assert [c.window for _, c in points] == [9, 9]  # the base's own, same kind of head
    with pytest.raises(ConfigError, match="mixes flow heads"):
        expand_grid({"arch": ["bilstm", "ststnet"]}, base=HeadConfig())
    assert HeadConfig(arch="offapexnet", window=1).resolved_reference == "none"
    with pytest.raises(ConfigError, match="only map from itself"):
        HeadConfig(arch="ststnet", window=1, reference="first")


@pytest.mark.parametrize("arch, epochs, lr", [("ststnet", 12, 5e-3), ("offapexnet", 10, 1e-3)])
def test_flow_heads_learn_a_planted_signal_on_held_out_subjects(arch, epochs, lr, tmp_path):
    seqs = planted_flow()
    config = HeadConfig(arch=arch, window=1, epochs=epochs, lr=lr, batch_size=16, folds=3,
                        windows_per_clip=2.0, precision="fp32", labels="smic4")
    res = train_head(seqs, config, out=tmp_path / arch)
    assert res.metrics["pooled"]["uf1"] > 0.85, res.metrics["pooled"]
    # a fold's checkpoint rebuilds the same head
    head, meta = load_head(tmp_path / arch / "fold0.pt")
    rec = res.folds[0]
    x = torch.from_numpy(np.concatenate([seqs.embeddings[i] for i in rec["test_clips"]]))
    np.testing.assert_allclose(head(x.reshape(len(x), 3, 28, 28)).detach().numpy(),
                               np.asarray(rec["logits"]), rtol=1e-4, atol=1e-4)


def test_early_stopping_picks_the_epoch_on_training_subjects_only():
    seqs = planted_flow(n_subjects=6, clips_per_class=2)
    res = train_head(seqs, HeadConfig(arch="ststnet", window=1, epochs=4, folds=3, val_subjects=1,
                                      patience=2, precision="fp32"))
    for rec in res.folds:
        assert rec["val_subjects"] and not set(rec["val_subjects"]) & set(rec["test_subjects"])
        assert not set(rec["val_subjects"]) & set(rec["train_subjects"])
        assert rec["epochs_run"] >= rec["best_epoch"] >= 1  # an epoch chosen on validation, restored
        assert len(rec["val_uf1_history"]) == rec["epochs_run"]


def test_loso_on_a_composite_reports_every_dataset():
    """The MEGC composite protocol: one fold per subject, pooled and per-dataset UF1 / UAR."""
    seqs = planted_flow(n_subjects=4, clips_per_class=1)
    datasets = ["smic" if s in ("s0", "s1") else "casme2" for s in seqs.subjects]
    ids = [f"{d}/{c.split('/', 1)[1]}" for d, c in zip(datasets, seqs.clip_ids)]
    composite = sequences_from_arrays(seqs.embeddings, clip_ids=ids, subjects=seqs.subjects,
                                      datasets=datasets, labels=seqs.labels, scheme="smic4",
                                      fingerprint=FLOW_FP)
    res = train_head(composite, HeadConfig(arch="ststnet", window=1, epochs=2, protocol="loso",
                                           precision="fp32"))
    assert len(res.folds) == 4
    assert set(res.metrics["per_dataset"]) == {"smic", "casme2"}
    assert res.metrics["per_dataset"]["smic"]["n"] == 6
