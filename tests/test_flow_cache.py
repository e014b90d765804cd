"""The flow cache: frames used recorded, resume, fingerprint refusal, failures, kind checks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mer_cache.cache import FlowCacheWriter, FramesUsed, open_cache, open_flow_cache
from mer_cache.cache.flow_api import build_flow_fingerprint, prepare_flow_cache
from mer_cache.errors import CacheError
from mer_cache.flow import FlowConfig, extract_flow_cache
from mer_cache.flow.compute import opencv_version

SMALL = FlowConfig(frame_size=32)  # the fixture frames are 24 px: keep TV-L1 cheap


def test_extract_writes_maps_and_the_frames_used(tmp_path, tiny_clips):
    clips = list(tiny_clips)
    clips[1] = dataclasses.replace(clips[1], apex=None)  # as SMIC: the apex must be estimated
    res = extract_flow_cache(clips, tmp_path / "f.zarr", config=SMALL)
    assert res.complete and res.n_written == len(clips) and res.n_estimated_apex == 1
    cache = open_flow_cache(tmp_path / "f.zarr")
    maps = cache.load_all()
    assert maps.shape == (len(clips), 3, 28, 28) and np.isfinite(maps).all()
    used = cache.frames_used()
    assert used[0] == FramesUsed(0, clips[0].n_frames // 2, "annotated")
    # the fixture brightens every frame, so the last frame differs most from the onset
    assert used[1] == FramesUsed(0, clips[1].n_frames - 1, "estimated")
    assert [c.clip_id for c in cache.clips] == [c.clip_id for c in clips]
    assert cache.fingerprint["tvl1"]["lambda_"] == 0.15 and cache.fingerprint["out_size"] == 28
    assert cache.info()["apex_estimated"] == 1


def test_resume_keeps_done_clips_and_computes_only_the_rest(tmp_path, tiny_clips):
    path = tmp_path / "f.zarr"
    fp = build_flow_fingerprint(SMALL.identity(), clips=tiny_clips, opencv_version=opencv_version())
    prepare_flow_cache(path, fingerprint=fp, clips=tiny_clips, shape=(3, 28, 28))
    writer = FlowCacheWriter(path)
    for i in range(3):  # a run killed after three clips
        writer.write(i, np.zeros((3, 28, 28), np.float32), FramesUsed(0, 1, "annotated"))
    with pytest.raises(CacheError, match="incomplete: 3 of 8"):
        open_flow_cache(path)
    res = extract_flow_cache(tiny_clips, path, config=SMALL)
    assert (res.status, res.n_already_done, res.n_written) == ("resumed", 3, 5)
    maps = open_flow_cache(path).load_all()
    assert not maps[:3].any() and maps[3:].any()  # done clips were not recomputed
    again = extract_flow_cache(tiny_clips, path, config=SMALL)
    assert (again.n_already_done, again.n_written) == (8, 0)


def test_other_flow_parameters_are_refused_naming_the_field(tmp_path, tiny_clips):
    path = tmp_path / "f.zarr"
    extract_flow_cache(tiny_clips[:2], path, config=SMALL)
    with pytest.raises(CacheError, match="different fingerprint: tvl1"):
        extract_flow_cache(tiny_clips[:2], path, config=dataclasses.replace(SMALL, lambda_=0.3))
    with pytest.raises(CacheError, match="out_size"):
        extract_flow_cache(tiny_clips[:2], path, config=dataclasses.replace(SMALL, out_size=20))
    with pytest.raises(CacheError, match="catalogue_sha256"):
        extract_flow_cache(tiny_clips[1:3], path, config=SMALL)


def test_unreadable_frame_fails_its_clip_only_and_a_rerun_retries_it(tmp_path, tiny_clips):
    path = tmp_path / "f.zarr"
    bad = tiny_clips[2].frames[tiny_clips[2].apex]
    good_bytes = bad.read_bytes()
    bad.write_bytes(b"not an image")
    res = extract_flow_cache(tiny_clips, path, config=SMALL)
    assert list(res.failed) == [tiny_clips[2].clip_id] and "Cannot decode frame" in res.failed[
        tiny_clips[2].clip_id] and res.n_written == 7 and not res.complete
    with pytest.raises(CacheError, match="1 failed.*Cannot decode"):
        open_flow_cache(path)
    bad.write_bytes(good_bytes)
    res = extract_flow_cache(tiny_clips, path, config=SMALL)
    assert res.n_written == 1 and res.complete


def test_kinds_are_told_apart_with_a_clear_error(tmp_path, tiny_clips):
    from heads_synth import write_cache

    flow, emb = tmp_path / "f.zarr", tmp_path / "e.zarr"
    extract_flow_cache(tiny_clips[:2], flow, config=SMALL)
    write_cache(emb, n_subjects=2, clips_per_class=1)
    with pytest.raises(CacheError, match="is a flow cache, not an embedding cache"):
        open_cache(flow)
    with pytest.raises(CacheError, match="is an embedding cache, not a flow cache"):
        open_flow_cache(emb)
    with pytest.raises(CacheError, match="embedding cache"):
        extract_flow_cache(tiny_clips[:2], emb, config=SMALL)


def test_a_clip_of_one_frame_fails_with_its_reason_and_the_run_goes_on(tmp_path, tiny_clips):
    clips = [dataclasses.replace(tiny_clips[0], frames=tiny_clips[0].frames[:1], onset=None,
                                 apex=None, offset=None), tiny_clips[1]]
    res = extract_flow_cache(clips, tmp_path / "f.zarr", config=SMALL)
    assert res.n_written == 1 and "no frame after the onset" in res.failed[clips[0].clip_id]


def test_flow_extraction_refuses_several_processes(tmp_path, monkeypatch):
    from mer_cache.errors import ConfigError
    from mer_cache.flow import run_flow_extract_job

    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="one process"):
        run_flow_extract_job("smic", tmp_path, tmp_path / "f.zarr")
