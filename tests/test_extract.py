"""The extractor: numerics, resume after a hard kill, failed clips, fingerprint refusal."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from mer_cache.cache import open_cache
from mer_cache.errors import CacheError
from mer_cache.extract import ExtractOptions, extract_clips
from mer_cache.frames import load_frame
from mer_cache.trunks import create_trunk

OPTS = ExtractOptions(batch_size=4, workers=0, dtype="float32")


def _direct(trunk, clip):
    x = torch.from_numpy(np.stack([load_frame(p, trunk.preprocessing) for p in clip.frames]))
    with torch.inference_mode():
        return trunk(x).numpy()


def test_cache_holds_the_trunk_output_of_every_frame(tmp_path, tiny_clips):
    trunk = create_trunk("tiny-cnn", weights="random")
    result = extract_clips(tiny_clips, trunk, tmp_path / "c.zarr", options=OPTS)
    assert result.complete and result.n_written == len(tiny_clips) and not result.failed
    seqs = open_cache(tmp_path / "c.zarr").load_all()
    for clip, seq in zip(tiny_clips, seqs):
        np.testing.assert_allclose(seq, _direct(trunk, clip), atol=1e-5)


def test_workers_and_batch_packing_do_not_change_the_result(tmp_path, tiny_clips):
    trunk = create_trunk("tiny-cnn", weights="random")
    extract_clips(tiny_clips, trunk, tmp_path / "a.zarr", options=OPTS)
    extract_clips(tiny_clips, trunk, tmp_path / "b.zarr",
                  options=ExtractOptions(batch_size=7, workers=2, dtype="float32"))
    for a, b in zip(open_cache(tmp_path / "a.zarr").load_all(), open_cache(tmp_path / "b.zarr").load_all()):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_a_frame_that_does_not_decode_fails_only_its_clip_and_a_rerun_retries(tmp_path, tiny_clips):
    bad = tiny_clips[3].frames[2]
    good_bytes = bad.read_bytes()
    bad.write_bytes(b"not an image")
    trunk = create_trunk("tiny-cnn", weights="random")
    out = tmp_path / "c.zarr"
    result = extract_clips(tiny_clips, trunk, out, options=OPTS)
    assert list(result.failed) == [tiny_clips[3].clip_id]
    assert str(bad) in result.failed[tiny_clips[3].clip_id]
    assert result.n_written == len(tiny_clips) - 1 and not result.complete
    with pytest.raises(CacheError, match="1 failed"):
        open_cache(out)
    bad.write_bytes(good_bytes)
    again = extract_clips(tiny_clips, trunk, out, options=OPTS)
    assert again.n_written == 1 and again.n_already_done == len(tiny_clips) - 1 and again.complete


def test_another_fingerprint_is_refused(tmp_path, tiny_clips):
    out = tmp_path / "c.zarr"
    extract_clips(tiny_clips, create_trunk("tiny-cnn", weights="random"), out, options=OPTS)
    with pytest.raises(CacheError, match="layer: cache has \"pool\", this run has \"logits\""):
        extract_clips(tiny_clips, create_trunk("tiny-cnn", weights="random", layer="logits"), out,
                      options=OPTS)


KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {tests!r})
    from pathlib import Path
    from conftest import make_clips
    from mer_cache.extract import ExtractOptions, extract_clips
    from mer_cache.trunks import create_trunk
    clips = make_clips(Path({frames!r}), {lengths!r})
    kill_after = int(os.environ.get("KILL_AFTER_FRAMES", "0"))
    def progress(done, total):
        if kill_after and done >= kill_after:
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, like a crash
    r = extract_clips(clips, create_trunk("tiny-cnn", weights="random"), Path({out!r}),
                      options=ExtractOptions(batch_size=3, workers=0, dtype="float32"), progress=progress)
    print("WRITTEN", r.n_written, "DONE_BEFORE", r.n_already_done, "COMPLETE", r.complete)
""")


def test_kill_minus_nine_then_rerun_finishes_without_recomputing(tmp_path):
    lengths = [5, 9, 3, 12, 7, 4, 6, 8, 5, 5, 10, 3]
    script = tmp_path / "run.py"
    script.write_text(KILL_SCRIPT.format(tests=os.path.dirname(__file__), frames=str(tmp_path / "f"),
                                         lengths=lengths, out=str(tmp_path / "c.zarr")))
    env = dict(os.environ, KILL_AFTER_FRAMES="40")
    killed = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True)
    assert killed.returncode == -9
    partial = open_cache(tmp_path / "c.zarr", require_complete=False).summary()
    assert 0 < partial.n_done < len(lengths)
    env.pop("KILL_AFTER_FRAMES")
    rerun = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert f"WRITTEN {len(lengths) - partial.n_done} DONE_BEFORE {partial.n_done} COMPLETE True" in rerun.stdout
    # the resumed cache holds exactly what the trunk computes for every frame
    from conftest import make_clips  # noqa: PLC0415

    clips = make_clips(tmp_path / "f", lengths)
    trunk = create_trunk("tiny-cnn", weights="random")
    for clip, seq in zip(clips, open_cache(tmp_path / "c.zarr").load_all()):
        np.testing.assert_allclose(seq, _direct(trunk, clip), atol=1e-5)


def test_zero_clips_are_refused_by_the_mechanisms_too(tmp_path):
    """A notebook calling extract_clips or extract_flow_cache with an empty list gets the
    error the CLI gives, not an empty cache that says it is complete."""
    from mer_cache.errors import DatasetError
    from mer_cache.flow.extract import extract_flow_cache

    with pytest.raises(DatasetError, match="0 clips"):
        extract_clips([], create_trunk("tiny-cnn", weights="random"), tmp_path / "e.zarr", options=OPTS)
    with pytest.raises(DatasetError, match="0 clips"):
        extract_flow_cache([], tmp_path / "f.zarr")
    assert not any(tmp_path.iterdir())
