"""Labelled sequences: label schemes applied, clips dropped with a note, the cache bridge."""

from dataclasses import dataclass

import numpy as np
import pytest

from heads_synth import make_arrays, make_sequences, write_cache
from mer_cache.errors import CacheError, LabelError
from mer_cache.heads.data import load_sequences, sequences_from_cache
from mer_cache.heads.config import HeadConfig
from mer_cache.pipelines import train_head


def test_scheme_drops_clips_it_leaves_out_and_says_so():
    arrays = make_arrays(n_subjects=2, clips_per_class=1, dim=4)
    seqs = make_sequences(scheme="megc3", n_subjects=2, clips_per_class=1, dim=4)
    assert seqs.classes == ("negative", "positive", "surprise")
    assert len(seqs) == len(arrays["labels"]) - 2  # the two non_micro clips
    assert any("left out 2 of 8 clips" in n and "smic 'non_micro' x2" in n for n in seqs.notes)
    assert seqs.dropped == {"smic/non_micro": 2}
    assert seqs.y.tolist() == [0, 1, 2, 0, 1, 2]
    assert seqs.groups[0] == "smic/s00"


def test_scheme_that_fits_no_label_is_a_label_error():
    arrays = make_arrays(n_subjects=2, clips_per_class=1, dim=4)
    arrays["labels"] = ["happiness"] * len(arrays["labels"])
    from mer_cache.heads.data import sequences_from_arrays

    with pytest.raises(LabelError, match="'smic4'.*fits none of the 8 clips' labels \\(happiness\\)"):
        sequences_from_arrays(**arrays, scheme="smic4")
    with pytest.raises(LabelError, match="Unknown label scheme"):
        sequences_from_arrays(**arrays, scheme="nope")


@dataclass(frozen=True)
class _Clip:
    index: int
    clip_id: str
    dataset: str
    subject: str
    label: str
    n_frames: int


class _FakeCache:
    """The read contract of mer_cache.cache: clips, fingerprint, dim, load_all."""

    def __init__(self, arrays):
        self._arrays = arrays
        self.fingerprint = {"trunk": "fake", "dim": 4}
        self.dim = 4
        self.clips = [_Clip(i, c, d, s, lab, len(e)) for i, (e, c, s, d, lab) in enumerate(zip(
            arrays["embeddings"], arrays["clip_ids"], arrays["subjects"], arrays["datasets"],
            arrays["labels"]))]

    def load_all(self, dtype=np.float32):
        return [e.astype(dtype) for e in self._arrays["embeddings"]]


def test_sequences_from_a_cache_object_keep_its_fingerprint_and_order():
    arrays = make_arrays(n_subjects=2, clips_per_class=1, dim=4)
    seqs = sequences_from_cache(_FakeCache(arrays), labels="smic4")
    assert seqs.fingerprint == {"trunk": "fake", "dim": 4}
    assert list(seqs.clip_ids) == arrays["clip_ids"]
    np.testing.assert_array_equal(seqs.embeddings[3], arrays["embeddings"][3])


def test_real_cache_trains_and_records_its_fingerprint(tmp_path):
    write_cache(tmp_path / "c.zarr", n_subjects=6, clips_per_class=1)
    seqs = load_sequences(tmp_path / "c.zarr", labels="smic4")
    assert len(seqs) == 24 and seqs.dim == 32 and seqs.fingerprint["trunk"] == "tiny-cnn"
    config = HeadConfig(arch="mean", epochs=1, folds=2, window=9, proj_dims=(16,), fc=8)
    res = train_head(seqs, config, out=tmp_path / "run")
    assert res.metrics["pooled"]["n"] == 24
    assert (tmp_path / "run" / "config.json").read_text().count('"tiny-cnn"') == 1


def test_incomplete_cache_is_a_cache_error(tmp_path):
    write_cache(tmp_path / "c.zarr", n_subjects=2, clips_per_class=1, drop_last=True)
    with pytest.raises(CacheError, match="incomplete"):
        load_sequences(tmp_path / "c.zarr", labels="smic4")


def test_cache_with_nan_rows_fails_verification_by_name(tmp_path):
    from mer_cache.cache import CacheWriter

    arrays = write_cache(tmp_path / "c.zarr", n_subjects=2, clips_per_class=1)
    bad = arrays["embeddings"][1].copy()
    bad[0, 0] = np.nan  # e.g. a corrupted chunk
    CacheWriter(tmp_path / "c.zarr").write(1, bad)
    # written after finalization, the rows no longer match the recorded checksum: either
    # check (checksum or NaN) must refuse the clip by name
    with pytest.raises(CacheError, match=f"(fails verification|is damaged).*1 clip.*{arrays['clip_ids'][1]}"):
        load_sequences(tmp_path / "c.zarr", labels="smic4")
