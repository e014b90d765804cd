"""A rerun aligns again the unfinished clips whose face alignment failed, and only those.

The failure says "Replace or remove the file, then rerun", so the rerun must read the
replaced frame; every other clip keeps its stored transform, so crops never change within
a cache.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from mer_cache.cache import open_cache
from mer_cache.catalogue import load_catalogue
from mer_cache.extract import extractor
from mer_cache.extract.extractor import ExtractOptions, extract_clips
from mer_cache.faces import FaceStage
from mer_cache.synth import SynthConfig, generate_dataset
from mer_cache.trunks import create_trunk
from real_footage import mtcnn_weights  # noqa: F401 (fixture)

SMALL = dict(subjects=2, clips_per_class=1, max_frames=14)
GARBAGE = b"not an image " * 40


@pytest.fixture(scope="module")
def raw_template(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("raw")
    generate_dataset(root, config=SynthConfig(**SMALL, layout="raw"))
    return root


@pytest.fixture
def raw_root(raw_template, tmp_path, mtcnn_weights, monkeypatch) -> Path:  # noqa: F811
    """A copy of the raw synthetic dataset, to break frames in."""
    monkeypatch.setenv("MER_CACHE_WEIGHTS", str(mtcnn_weights))
    return Path(shutil.copytree(raw_template, tmp_path / "raw"))


def _extract(root: Path, out: Path):
    return extract_clips(load_catalogue("casme2", root), create_trunk("tiny-cnn"), out,
                         options=ExtractOptions(face="align"))


def _spy_alignments(monkeypatch) -> list[str]:
    """Ids of the clips the face stage detects in from now on."""
    seen: list[str] = []
    real = FaceStage.table_column

    def table_column(self, clips):
        seen.extend(c.clip_id for c in clips)
        return real(self, clips)
    monkeypatch.setattr(FaceStage, "table_column", table_column)
    return seen


def _first_frame_broken(root: Path, out: Path):
    """Garbage in the first frame of the first clip, then one extraction (it fails that clip).
    Returns the clips, that frame, the clip's id, the frame's good bytes and the result."""
    clips = load_catalogue("casme2", root)
    frame, cid = clips[0].frames[0], clips[0].clip_id
    good = frame.read_bytes()
    frame.write_bytes(GARBAGE)
    return clips, frame, cid, good, _extract(root, out)


def _stored(out: Path) -> list[str]:
    return [json.dumps(v, sort_keys=True) for v in open_cache(out, require_complete=False).column("face")]


def test_a_fixed_reference_frame_is_aligned_and_extracted_on_rerun(raw_root, tmp_path, monkeypatch):
    out = tmp_path / "cache.zarr"
    clips, frame, cid, good, first = _first_frame_broken(raw_root, out)
    assert set(first.failed) == {cid} and "Cannot decode frame" in first.failed[cid]
    before = _stored(out)
    cache = open_cache(out, require_complete=False)
    rows = {i: cache.load_clip(i) for i in range(1, len(clips))}

    frame.write_bytes(good)  # what the message asks for; then the same command again
    aligned = _spy_alignments(monkeypatch)
    again = _extract(raw_root, out)
    assert again.failed == {} and again.n_written == 1 and again.complete
    assert aligned == [cid]  # the failed clip alone was detected again
    after = _stored(out)
    assert json.loads(after[0])["error"] is None
    assert after[1:] == before[1:]  # other clips' stored transforms, byte for byte
    cache = open_cache(out)
    for i, r in rows.items():
        np.testing.assert_array_equal(cache.load_clip(i), r)
    # the new transform is the one a fresh cache of the intact clip gets
    extract_clips([clips[0]], create_trunk("tiny-cnn"), tmp_path / "fresh.zarr",
                  options=ExtractOptions(face="align"))
    assert after[0] == _stored(tmp_path / "fresh.zarr")[0]
    np.testing.assert_array_equal(cache.load_clip(0), open_cache(tmp_path / "fresh.zarr").load_clip(0))


def test_a_still_broken_reference_frame_fails_again_with_its_new_reason(raw_root, tmp_path):
    out = tmp_path / "cache.zarr"
    _, frame, cid, good, first = _first_frame_broken(raw_root, out)
    assert "cannot identify image file" in first.failed[cid]

    frame.write_bytes(good[:len(good) // 2])  # "fixed" with a copy cut short
    again = _extract(raw_root, out)
    assert set(again.failed) == {cid} and again.n_written == 0 and not again.complete
    reason = again.failed[cid]
    assert str(frame) in reason and "truncated" in reason and "cannot identify" not in reason
    cache = open_cache(out, require_complete=False)
    assert cache.summary().failed == {cid: reason}  # the cache records the new reason
    assert json.loads(_stored(out)[0])["error"] == reason


def test_a_crash_after_the_new_alignment_loses_nothing(raw_root, tmp_path, monkeypatch):
    """Killed after the new alignment is stored and before any frame is embedded: the done
    clips stay done, the new alignment is kept and the next rerun extracts the clip with it."""
    out = tmp_path / "cache.zarr"
    clips, frame, cid, good, _ = _first_frame_broken(raw_root, out)
    before = _stored(out)
    frame.write_bytes(good)

    real_loader = extractor.frame_loader

    def killed(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(extractor, "frame_loader", killed)
    with pytest.raises(KeyboardInterrupt):
        _extract(raw_root, out)
    summary = open_cache(out, require_complete=False).summary()
    assert summary.n_done == len(clips) - 1 and set(summary.failed) == {cid}
    after = _stored(out)
    assert json.loads(after[0])["error"] is None and after[1:] == before[1:]

    monkeypatch.setattr(extractor, "frame_loader", real_loader)
    aligned = _spy_alignments(monkeypatch)
    last = _extract(raw_root, out)
    assert last.complete and last.n_written == 1 and aligned == []  # the stored one was used
    assert _stored(out) == after
