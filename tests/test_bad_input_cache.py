"""Bad input, part 2: caches (``extract --out``, ``cache verify|info|export``, damaged files).

Damaged chunks must be found (per-clip CRC-32), named, marked not done and recomputed by
a rerun of extract; a damaged ``zarr.json`` must be named; full and read-only disks give a
message and leave nothing behind. Also the concurrency risks of the cache: temp files of
live writers, and two processes creating one cache. See ``bad_input.py``.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bad_input import (  # noqa: F401 - fixtures
    FAST_HEAD, Case, fail_writes, flip_bytes, invoke, run_case, shared, truncate, wide_console, ws,
)
from conftest import make_clips
from mer_cache.cache import CacheWriter, open_cache, prepare_cache, store
from mer_cache.cache.fingerprint import build_fingerprint
from mer_cache.errors import CacheError
from mer_cache.trunks import create_trunk


# ---------------------------------------------------------------- damaged caches
def missing_chunk(w) -> Path:
    cache = w.copy("cache")
    w.chunk(cache).unlink()
    return cache


def short_chunk(w) -> Path:
    cache = w.copy("cache")
    truncate(w.chunk(cache))
    return cache


def flipped(w) -> Path:
    """Two bytes of clip000's second frame changed; the values stay finite."""
    cache = w.copy("cache")
    flip_bytes(w.chunk(cache), offset=64)
    rows = np.fromfile(w.chunk(cache), np.float16)
    assert np.isfinite(rows[:64]).all()  # the changed values are finite floats
    return cache


def edit_meta(w, change) -> Path:
    cache = w.copy("cache")
    meta = cache / "zarr.json"
    doc = json.loads(meta.read_text())
    change(doc["attributes"])
    meta.write_text(json.dumps(doc))
    return cache


def garbage_meta(w) -> Path:
    cache = w.copy("cache")
    (cache / "zarr.json").write_text("{ this is not json")
    return cache


def no_meta(w) -> Path:
    cache = w.copy("cache")
    (cache / "zarr.json").unlink()
    return cache


def no_embeddings_meta(w) -> Path:
    cache = w.copy("cache")
    (cache / "embeddings" / "zarr.json").unlink()
    return cache


def pending_clip(w) -> Path:
    cache = edit_meta(w, lambda a: a["mer_cache"].update(finalized=False, summary=None))
    (cache / "status" / "c" / "3").unlink()
    return cache


def unfinalized(w) -> Path:
    return edit_meta(w, lambda a: a["mer_cache"].update(finalized=False, summary=None))


def truncated_vector_chunk(w, array: str, i: int) -> Path:
    cache = unfinalized(w)
    (cache / array / "c" / str(i)).write_bytes(b"")
    return cache


def set_attr(key, value):
    return lambda a: a["mer_cache"].__setitem__(key, value)


# ---------------------------------------------------------------- outcomes
def verified(w: "Workspace", cache: Path) -> None:
    code, out = invoke(["cache", "verify", cache])
    assert code == 0, out


def marked_then_repaired(w, out) -> None:
    """verify marked the damaged clips not done; rerunning extract recomputes just those."""
    cache = w.path / "cache"
    with pytest.raises(CacheError, match="incomplete"):
        open_cache(cache)
    code, out = invoke(w.extract_args(w.shared["frames"], cache))
    assert code == 0 and "Cache complete: True" in out, out
    verified(w, cache)
    assert np.array_equal(np.concatenate(open_cache(cache).load_all()),
                          np.concatenate(open_cache(w.shared["cache"]).load_all()))


def repaired(w, out) -> None:
    cache = w.path / "cache"
    verified(w, cache)
    assert np.array_equal(np.concatenate(open_cache(cache).load_all()),
                          np.concatenate(open_cache(w.shared["cache"]).load_all()))


def only_clip000_recomputed(w, out) -> None:
    assert "written now │ 1 │" in out, out
    repaired(w, out)


def nothing_at(*names):
    def check(w, out):
        for name in names:
            assert not (w.path / name).exists(), name
        assert not list(w.path.glob(".*creating*")), list(w.path.iterdir())
    return check


def rerun_creates(w, out) -> None:
    """After a creation that failed for lack of space, the same command (with space) works."""
    nothing_at("c.zarr")(w, out)
    code, out = invoke(w.extract_args(w.path / "frames", w.path / "c.zarr"))
    assert code == 0 and "(created)" in out, out


def rerun_resumes(w, out) -> None:
    """After running out of space mid-run, the same command resumes and keeps finished clips."""
    done = open_cache(w.path / "c.zarr", require_complete=False).summary().n_done
    assert done >= 1
    code, out = invoke(w.extract_args(w.path / "frames", w.path / "c.zarr"))
    assert code == 0 and "(resumed)" in out and f"already done before this run │ {done} │" in out, out
    verified(w, w.path / "c.zarr")


def enospc_after_clips(w, n_writes: int) -> None:
    real = store._write_uncompressed_local
    count = [0]

    def write(arr, start, values):
        count[0] += 1
        if count[0] > n_writes:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(arr.store.root))
        return real(arr, start, values)

    w.faults.setattr(store, "_write_uncompressed_local", write)


def export_half_written(w) -> list:
    """The HDF5 library runs out of space after writing part of the file."""
    import mer_cache.cache.export as export

    def boom(tmp, *args):
        Path(tmp).write_bytes(b"\x89HDF half a file")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))

    w.faults.setattr(export, "_write_h5", boom)
    return ["cache", "export", w.copy("cache"), w.path / "e.h5"]


def extract(w, out, root=None, more=()):
    return w.extract_args(root or w.copy("frames"), out, more=more)


def in_dir(w, name: str) -> Path:
    (w.path / name).mkdir()
    return w.path / name / "c.zarr"


def denied(w, name: str, err: int) -> Path:
    out = in_dir(w, name)
    fail_writes(w, out.parent, err)
    return out


VERIFY, INFO, EXPORT = ["cache", "verify"], ["cache", "info"], ["cache", "export"]


def train(cache, w):
    return ["train-head", "--cache", cache, "--out", w.path / "run", *FAST_HEAD]


def export(cache, w):
    return [*EXPORT, cache, w.path / "e.h5"]


CASES = [
    # extract --out that cannot be a cache
    Case("out-is-dataset-root", lambda w: extract(w, w.path / "frames", w.copy("frames")), 2,
         "holds the dataset's own frames", absent=("--cache",)),
    Case("out-holds-other-files", lambda w: extract(w, w.copy("run")), 2, "already holds other files and no cache",
         absent=("--cache",)),
    Case("out-is-a-file", lambda w: extract(w, w.copy("run") / "config.json"), 2, "is an existing file"),
    Case("out-under-proc", lambda w: extract(w, Path("/proc/mer-cache-test/c.zarr")), 2,
         ("While creating the cache /proc/mer-cache-test/c.zarr", "like /proc")),
    Case("out-read-only", lambda w: extract(w, denied(w, "ro", errno.EROFS)), 2,
         ("Read-only file system", "Choose a path on a writable disk")),
    Case("out-unwritable-dir", lambda w: extract(w, denied(w, "locked", errno.EACCES)), 2, ("Permission denied", "locked")),
    Case("out-immutable-dir", lambda w: extract(w, denied(w, "immutable", errno.EPERM)), 2, "not permitted"),
    Case("out-disk-full-at-creation", lambda w: (w.copy("frames"), fail_writes(w, w.path, errno.ENOSPC, after=4),
                                                 extract(w, w.path / "c.zarr", w.path / "frames"))[2], 2,
         ("No space left on device", "Free space there"), unchanged=False, check=rerun_creates),
    Case("out-disk-full-mid-run", lambda w: (enospc_after_clips(w, 4), extract(w, w.path / "c.zarr"))[1], 2,
         ("Disk full", "rerun the same command"), unchanged=False, check=rerun_resumes),
    Case("out-other-fingerprint", lambda w: extract(w, w.copy("cache"), more=("--dtype", "float32")), 2,
         'dtype: cache has "float16", this run has "float32"'),
    Case("out-garbage-zarr-json", lambda w: extract(w, garbage_meta(w)), 2, "zarr.json is not valid JSON"),
    Case("out-not-our-zarr", lambda w: extract(w, edit_meta(w, lambda a: a.pop("mer_cache"))), 2,
         "has no 'mer_cache' attribute"),
    # damaged chunks: found, named, marked, recomputed
    Case("missing-chunk-verify", lambda w: [*VERIFY, missing_chunk(w)], 1,
         ("embeddings/c/0/0 is missing", "folder/s1/clip000", "Marked these 8 clip(s) not done"),
         unchanged=False, check=marked_then_repaired),
    Case("short-chunk-verify", lambda w: [*VERIFY, short_chunk(w)], 1, ("holds 2048 of 4096 bytes", "folder/s4/clip007"),
         unchanged=False, check=marked_then_repaired),
    Case("flipped-bytes-verify", lambda w: [*VERIFY, flipped(w)], 1,
         ("1 clip(s) no longer match the checksums written with them: folder/s1/clip000", "Marked these 1 clip(s)"),
         unchanged=False, check=marked_then_repaired),
    Case("missing-chunk-export", lambda w: export(missing_chunk(w), w), 2, ("is damaged", "rerun the same `mer-cache extract`")),
    Case("short-chunk-export", lambda w: export(short_chunk(w), w), 2, "is damaged"),
    Case("flipped-bytes-export", lambda w: export(flipped(w), w), 2, "stored embeddings of 1 clip(s) (folder/s1/clip000)"),
    Case("missing-chunk-train-head", lambda w: train(missing_chunk(w), w), 2, "is damaged"),
    Case("short-chunk-train-head", lambda w: train(short_chunk(w), w), 2, "is damaged"),
    Case("flipped-bytes-train-head", lambda w: train(flipped(w), w), 2, "no longer match the checksums"),
    Case("missing-chunk-extract-recomputes", lambda w: extract(w, missing_chunk(w), w.shared["frames"]), 0,
         "Cache complete: True", unchanged=False, check=repaired),
    Case("short-chunk-extract-recomputes", lambda w: extract(w, short_chunk(w), w.shared["frames"]), 0,
         "Cache complete: True", unchanged=False, check=repaired),
    Case("flipped-bytes-extract-recomputes", lambda w: extract(w, flipped(w), w.shared["frames"]), 0,
         "Cache complete: True", unchanged=False, check=only_clip000_recomputed),
    Case("truncated-status-chunk-verify", lambda w: [*VERIFY, truncated_vector_chunk(w, "status", 3)], 1,
         "incomplete: 7 of 8 clips done"),
    Case("truncated-status-chunk-extract-recomputes", lambda w: extract(w, truncated_vector_chunk(w, "status", 3), w.shared["frames"]),
         0, ("written now │ 1 │", "Cache complete: True"), unchanged=False, check=repaired),
    Case("truncated-checksum-chunk-train-head", lambda w: train(truncated_vector_chunk(w, "checksums", 2), w), 2,
         ("stored embeddings of 1 clip(s)", "no longer match the checksums")),
    Case("truncated-checksum-chunk-extract-recomputes", lambda w: extract(w, truncated_vector_chunk(w, "checksums", 2), w.shared["frames"]),
         0, "written now │ 1 │", unchanged=False, check=repaired),
    Case("flipped-bytes-verify-read-only-copy", lambda w: (lambda c: (fail_writes(w, c, errno.EROFS), [*VERIFY, c])[1])(flipped(w)), 1,
         ("no longer match the checksums", "Could not mark them not done", "Read-only file system")),
    Case("pending-clip-verify", lambda w: [*VERIFY, pending_clip(w)], 1, "incomplete: 7 of 8 clips done"),
    Case("pending-clip-train-head", lambda w: train(pending_clip(w), w), 2, "incomplete: 7 of 8 clips done"),
    # damaged zarr.json: the file is named
    Case("no-zarr-json-verify", lambda w: [*VERIFY, no_meta(w)], 2, "cache/zarr.json is missing"),
    Case("no-zarr-json-info", lambda w: [*INFO, no_meta(w)], 2, "cache/zarr.json is missing"),
    Case("no-zarr-json-train-head", lambda w: train(no_meta(w), w), 2, "cache/zarr.json is missing"),
    Case("no-zarr-json-extract", lambda w: extract(w, no_meta(w)), 2, "already holds other files and no cache"),
    Case("garbage-zarr-json-verify", lambda w: [*VERIFY, garbage_meta(w)], 2, "cache/zarr.json is not valid JSON"),
    Case("garbage-zarr-json-export", lambda w: export(garbage_meta(w), w), 2, "zarr.json is not valid JSON"),
    Case("garbage-zarr-json-train-head", lambda w: train(garbage_meta(w), w), 2, "zarr.json is not valid JSON"),
    Case("attr-is-a-list", lambda w: [*VERIFY, edit_meta(w, lambda a: a.__setitem__("mer_cache", [1, 2]))], 2,
         "is damaged: it is a list, not an object"),
    Case("attr-is-a-string", lambda w: [*INFO, edit_meta(w, lambda a: a.__setitem__("mer_cache", "x"))], 2,
         "it is a str, not an object"),
    Case("attr-dim-is-text", lambda w: train(edit_meta(w, set_attr("dim", "32")), w), 2, "'dim' is \"32\", expected a int"),
    Case("attr-fingerprint-missing", lambda w: export(edit_meta(w, lambda a: a["mer_cache"].pop("fingerprint")), w), 2,
         "'fingerprint' is null"),
    Case("attr-clip-column-short", lambda w: [*VERIFY, edit_meta(w, lambda a: a["mer_cache"]["clips"]["subject"].pop())], 2,
         "clip column 'subject' is not a list of 8 values"),
    Case("attr-layout-version", lambda w: [*VERIFY, edit_meta(w, set_attr("layout_version", 99))], 2,
         "of layout version 99"),
    Case("no-embeddings-array", lambda w: [*VERIFY, no_embeddings_meta(w)], 2, "has no 'embeddings' array"),
    Case("cache-is-a-file", lambda w: [*VERIFY, w.copy("run") / "config.json"], 2, "is a file, not a cache folder"),
    Case("cache-missing", lambda w: [*INFO, w.path / "nope.zarr"], 2, "No cache at"),
    # export: nothing half-written is left
    Case("export-read-only", lambda w: (fail_writes(w, in_dir(w, "ro").parent, errno.EROFS),
                                        [*EXPORT, w.copy("cache"), w.path / "ro" / "e.h5"])[1], 2,
         "Read-only file system"),
    Case("export-unwritable-dir", lambda w: (fail_writes(w, in_dir(w, "locked").parent, errno.EACCES),
                                             [*EXPORT, w.copy("cache"), w.path / "locked" / "e.h5"])[1], 2,
         "Permission denied"),
    Case("export-onto-existing-dir", lambda w: [*EXPORT, w.copy("cache"), w.copy("run")], 2, "is an existing folder"),
    Case("export-disk-full-mid-write", export_half_written, 2, "Disk full"),
    Case("export-parent-is-file", lambda w: [*EXPORT, w.copy("cache"), w.copy("run") / "config.json" / "e.h5"], 2,
         "is a file, not a folder"),
    Case("export-format", lambda w: [*EXPORT, w.copy("cache"), w.path / "e.csv", "--format", "csv"], 2, "only 'h5'"),
    Case("export-incomplete", lambda w: export(pending_clip(w), w), 2, "incomplete"),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bad_cache_input(case, ws):
    run_case(case, ws)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_resume_removes_only_temp_files_of_writers_that_are_gone(ws):
    """A concurrent writer's fresh temp file survives a resuming extract; a dead one's does not."""
    cache = ws.copy("cache")
    chunk_dir = ws.chunk(cache).parent
    live = chunk_dir / f"0.{os.getpid()}.1.partial"  # a writer about to rename it
    dead = chunk_dir / f"0.{_dead_pid()}.1.partial"
    fresh = cache / f"zarr.json.{'a' * 32}.partial"  # zarr's own naming, just written
    old = cache / f"zarr.json.{'b' * 32}.partial"
    for p in (live, dead, fresh, old):
        p.write_bytes(b"temp")
    os.utime(old, (time.time() - 2 * store.STALE_PARTIAL_S,) * 2)
    code, out = invoke(ws.extract_args(ws.shared["frames"], cache))
    assert code == 0, out
    assert live.exists() and fresh.exists()
    assert not dead.exists() and not old.exists()


def test_two_processes_creating_one_cache_share_it(tmp_path, monkeypatch):
    """Process B creates the cache (and writes a clip) while A is still creating its own: A
    must resume B's cache, not overwrite it."""
    clips = make_clips(tmp_path / "frames", [4, 5, 6])
    fp = build_fingerprint(create_trunk("tiny-cnn", weights="random").identity(), dtype="float16",
                           clips=clips)
    out = tmp_path / "c.zarr"
    out.mkdir()  # an empty --out, as a user may prepare it
    real = store.create_store
    raced = []

    def create_while_b_wins(path, **kwargs):
        if not raced:
            raced.append(True)
            assert prepare_cache(out, fingerprint=fp, clips=clips) == "created"  # B
            CacheWriter(out).write(0, np.ones((4, 32), np.float32))
        return real(path, **kwargs)

    monkeypatch.setattr(store, "create_store", create_while_b_wins)
    assert prepare_cache(out, fingerprint=fp, clips=clips) == "resumed"  # A
    summary = open_cache(out, require_complete=False).summary()
    assert summary.n_done == 1  # B's finished clip is kept
    assert [p.name for p in tmp_path.iterdir() if "creating" in p.name] == []


def test_checksums_catch_a_changed_bit_anywhere_in_a_clip():
    """A flipped bit anywhere in a clip's rows changes its CRC-32 (cost: benchmarks/cache_io.py)."""
    rows = np.random.default_rng(0).standard_normal((40, 64)).astype(np.float16)
    crc = store.rows_checksum(rows)
    raw = bytearray(rows.tobytes())
    for i in range(0, len(raw), 97):
        raw[i] ^= 0x01
        assert store.rows_checksum(np.frombuffer(bytes(raw), np.float16).reshape(rows.shape)) != crc
        raw[i] ^= 0x01
