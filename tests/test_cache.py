"""The Zarr cache: packing, ownership, completion, fingerprint checks, verify, export."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from mer_cache.cache import CacheWriter, export_h5, open_cache, prepare_cache, verify_cache
from mer_cache.cache.fingerprint import build_fingerprint
from mer_cache.cache.store import pack_rows
from mer_cache.errors import CacheError
from mer_cache.trunks import create_trunk


def _fingerprint(clips, dtype="float16"):
    return build_fingerprint(create_trunk("tiny-cnn", weights="random").identity(),
                             dtype=dtype, clips=clips)


def test_packing_keeps_clips_inside_one_chunk_or_on_own_chunks():
    lengths = [30, 30, 40, 200, 10, 10, 64]
    row_start, unit, total = pack_rows(lengths, 64)
    for start, n in zip(row_start, lengths):
        if n <= 64:
            assert start // 64 == (start + n - 1) // 64  # no straddling
        else:
            assert start % 64 == 0
    # units never share a chunk
    chunks_of_unit: dict[int, set[int]] = {}
    for start, n, u in zip(row_start, lengths, unit):
        chunks_of_unit.setdefault(int(u), set()).update(range(start // 64, (start + n - 1) // 64 + 1))
    all_chunks = [c for s in chunks_of_unit.values() for c in s]
    assert len(all_chunks) == len(set(all_chunks))
    assert total % 64 == 0 and total >= row_start[-1] + lengths[-1]


def test_roundtrip_and_completion_is_explicit(tmp_path, tiny_clips):
    path = tmp_path / "c.zarr"
    assert prepare_cache(path, fingerprint=_fingerprint(tiny_clips), clips=tiny_clips) == "created"
    w = CacheWriter(path)
    rng = np.random.default_rng(0)
    data = {i: rng.normal(size=(c.n_frames, 32)).astype(np.float32) for i, c in enumerate(tiny_clips)}
    for i in range(len(tiny_clips) - 1):
        w.write(i, data[i])
    with pytest.raises(CacheError, match="incomplete: 7 of 8 clips done"):
        open_cache(path)
    assert w.pending() == [len(tiny_clips) - 1]
    w.write(len(tiny_clips) - 1, data[len(tiny_clips) - 1])
    assert w.finalize().complete
    cache = open_cache(path)
    seqs = cache.load_all()
    for i, s in enumerate(seqs):
        np.testing.assert_allclose(s, data[i].astype(np.float16), rtol=0, atol=0)
    assert [c.clip_id for c in cache.clips] == [c.clip_id for c in tiny_clips]
    assert verify_cache(path) == []


def test_failed_clip_is_recorded_and_retried(tmp_path, tiny_clips):
    path = tmp_path / "c.zarr"
    prepare_cache(path, fingerprint=_fingerprint(tiny_clips), clips=tiny_clips)
    w = CacheWriter(path)
    w.fail(2, "frame 1 does not decode")
    s = open_cache(path, require_complete=False).summary()
    assert s.n_failed == 1 and s.failed == {tiny_clips[2].clip_id: "frame 1 does not decode"}
    assert 2 in w.pending()


def test_other_fingerprint_is_refused_naming_the_difference(tmp_path, tiny_clips):
    path = tmp_path / "c.zarr"
    prepare_cache(path, fingerprint=_fingerprint(tiny_clips), clips=tiny_clips)
    with pytest.raises(CacheError, match="dtype: cache has \"float16\", this run has \"float32\""):
        prepare_cache(path, fingerprint=_fingerprint(tiny_clips, "float32"), clips=tiny_clips)
    assert prepare_cache(path, fingerprint=_fingerprint(tiny_clips), clips=tiny_clips) == "resumed"


def test_ranks_split_units_without_overlap(tmp_path, tiny_clips):
    path = tmp_path / "c.zarr"
    prepare_cache(path, fingerprint=_fingerprint(tiny_clips), clips=tiny_clips, chunk_bytes=64 * 16)
    owners = [[CacheWriter(path, rank=r, world=2).owns(i) for r in range(2)]
              for i in range(len(tiny_clips))]
    assert all(sum(o) == 1 for o in owners)


def test_verify_reports_nan_rows(tmp_path, tiny_clips):
    path = tmp_path / "c.zarr"
    prepare_cache(path, fingerprint=_fingerprint(tiny_clips), clips=tiny_clips)
    w = CacheWriter(path)
    for i, c in enumerate(tiny_clips):
        rows = np.zeros((c.n_frames, 32), np.float32)
        if i == 3:
            rows[1] = np.nan
        w.write(i, rows)
    problems = verify_cache(path)
    assert len(problems) == 1 and tiny_clips[3].clip_id in problems[0] and "NaN" in problems[0]


def test_not_a_cache_is_a_clear_error(tmp_path):
    with pytest.raises(CacheError, match="No cache at"):
        open_cache(tmp_path / "missing.zarr")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.txt").write_text("hi")
    with pytest.raises(CacheError, match="not"):
        open_cache(tmp_path / "junk")


def test_h5_export_roundtrip(tmp_path, tiny_clips):
    path = tmp_path / "c.zarr"
    prepare_cache(path, fingerprint=_fingerprint(tiny_clips), clips=tiny_clips)
    w = CacheWriter(path)
    rng = np.random.default_rng(1)
    for i, c in enumerate(tiny_clips):
        w.write(i, rng.normal(size=(c.n_frames, 32)).astype(np.float32))
    w.finalize()
    out = export_h5(path, tmp_path / "c.h5")
    cache = open_cache(path)
    seqs = cache.load_all()
    with h5py.File(out) as f:
        emb = f["embeddings"][:]
        assert emb.dtype == np.float32
        starts, counts = f["clips/row_start"][:], f["clips/n_frames"][:]
        ids = [s.decode() for s in f["clips/clip_id"][:]]
        assert ids == [c.clip_id for c in cache.clips]
        for s, st, n in zip(seqs, starts, counts):
            np.testing.assert_array_equal(emb[st:st + n], s)


def test_direct_chunk_read_equals_zarr_read_including_missing_chunks(tmp_path, tiny_clips):
    from mer_cache.cache import store

    path = tmp_path / "c.zarr"
    prepare_cache(path, fingerprint=_fingerprint(tiny_clips), clips=tiny_clips, chunk_bytes=64 * 12)
    w = CacheWriter(path)
    rng = np.random.default_rng(2)
    for i, c in enumerate(tiny_clips[:3]):  # later chunks stay unwritten
        w.write(i, rng.normal(size=(c.n_frames, 32)).astype(np.float32))
    root, _ = store.open_group(path)
    fast = store._read_uncompressed_local(root["embeddings"])
    assert fast is not None
    np.testing.assert_array_equal(fast, root["embeddings"][:])  # NaN == NaN for array_equal


def test_direct_chunk_writes_are_what_zarr_reads(tmp_path, tiny_clips):
    from mer_cache.cache import store

    path = tmp_path / "c.zarr"
    prepare_cache(path, fingerprint=_fingerprint(tiny_clips), clips=tiny_clips, chunk_bytes=64 * 12)
    w = CacheWriter(path)
    rng = np.random.default_rng(3)
    written = {}
    for i in (0, 2, 5):  # partial chunks: neighbours stay unwritten (NaN)
        written[i] = rng.normal(size=(tiny_clips[i].n_frames, 32)).astype(np.float32)
        w.write(i, written[i])
    root, _ = store.open_group(path)
    emb, status = root["embeddings"][:], root["status"][:]  # read through Zarr itself
    cache = open_cache(path, require_complete=False)
    for c in cache.clips:
        rows = emb[c.row_start:c.row_start + c.n_frames]
        if c.index in written:
            np.testing.assert_array_equal(rows, written[c.index].astype(np.float16))
            assert status[c.index] == store.DONE
        else:
            assert np.isnan(rows).all() and status[c.index] == store.PENDING
    assert not list(path.rglob("*.partial"))
