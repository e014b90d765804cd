"""Sliding windows, edge padding, and the per-epoch class-balanced draw."""

import numpy as np
import pytest

from mer_cache.errors import ConfigError
from mer_cache.heads.windows import (
    EpochSampler, check_window, class_weights, clip_offsets, make_windows,
)


def test_windows_cover_each_clip_with_stride():
    lengths = np.array([5, 7])
    win = make_windows(lengths, np.array([0, 1]), window=3, stride=2)
    # clip 0: starts 0, 2 ; clip 1 (offset 5): starts 0, 2, 4
    assert win.frames.tolist() == [[0, 1, 2], [2, 3, 4], [5, 6, 7], [7, 8, 9], [9, 10, 11]]
    assert win.clip.tolist() == [0, 0, 1, 1, 1]
    assert win.n_padded == 0


def test_short_clip_is_centred_and_padded_by_edge_frames():
    lengths = np.array([10, 3])
    win = make_windows(lengths, np.array([1]), window=7, stride=1)
    # clip 1 occupies rows 10, 11, 12; two repeats of the first frame, two of the last
    assert win.frames.tolist() == [[10, 10, 10, 11, 12, 12, 12]]
    assert win.n_padded == 1
    assert clip_offsets(lengths).tolist() == [0, 10]


def test_window_longer_than_every_clip_is_refused():
    check_window(np.array([11, 30]), window=30)
    with pytest.raises(ConfigError, match="longer than every clip.*30 frames"):
        check_window(np.array([11, 30]), window=31)


def test_balanced_draw_gives_each_class_the_same_count_and_walks_the_pool():
    labels = np.array([0] * 50 + [1] * 5 + [2] * 10)
    sampler = EpochSampler(labels, 3, per_epoch=30, balance="windows", seed=1)
    first = sampler.next_epoch()
    assert np.bincount(labels[first], minlength=3).tolist() == [10, 10, 10]
    # the majority class is walked without repeats until its pool is used up
    seen = np.concatenate([first] + [sampler.next_epoch() for _ in range(4)])
    majority = seen[labels[seen] == 0]
    assert len(set(majority.tolist())) == 50
    again = EpochSampler(labels, 3, per_epoch=30, balance="windows", seed=1).next_epoch()
    assert np.array_equal(first, again)


def test_unbalanced_draw_keeps_the_pool_mix_and_weights_invert_frequency():
    labels = np.array([0] * 30 + [1] * 10)
    ids = EpochSampler(labels, 2, per_epoch=40, balance="none", seed=0).next_epoch()
    assert sorted(ids.tolist()) == list(range(40))
    w = class_weights(labels, 2)
    assert w[1] == pytest.approx(3 * w[0])
    assert np.average(w[labels]) == pytest.approx(1.0)


def test_the_whole_pool_each_epoch_oversamples_every_class_to_the_largest():
    """--epoch-windows all (Aug.-II): every window at least once per epoch, classes equal."""
    labels = np.array([0] * 10 + [1] * 4 + [2] * 1)
    sampler = EpochSampler(labels, 3, per_epoch=None, balance="windows", seed=0)
    for _ in range(3):
        ids = sampler.next_epoch()
        assert len(ids) == 30 and set(ids.tolist()) == set(range(15))
        assert np.bincount(labels[ids], minlength=3).tolist() == [10, 10, 10]
    plain = EpochSampler(labels, 3, per_epoch=None, balance="none", seed=0).next_epoch()
    assert sorted(plain.tolist()) == list(range(15))
