"""Bad input, part 1: frames and dataset copies (``datasets check|list``, ``extract``, ``embed``).

One row per case of issue 14 (and neighbours): the exit code, a phrase of the message, no
traceback, and nothing written where the command refuses. See ``bad_input.py``.
"""

from __future__ import annotations

import csv
import errno
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bad_input import Case, fail_writes, run_case, shared, wide_console, ws  # noqa: F401 - fixtures
from catalogue_trees import CASME2_HEADER, make_casme2, write_frames, write_xlsx
from mer_cache.cache import open_cache
from mer_cache.frames import load_frame
from mer_cache.trunks import create_trunk

# the loaders' warnings about the broken trees are expected; the rows check the messages
pytestmark = pytest.mark.filterwarnings("ignore::mer_cache.catalogue.problems.DatasetWarning")


# ---------------------------------------------------------------- builders of broken inputs
def frames16(ws) -> Path:
    """The shared folder tree, with one clip's frames replaced by 16-bit PNGs (values > 255)."""
    root = ws.copy("frames")
    clip = root / "s1" / "negative" / "clip000"
    for p in clip.iterdir():
        p.unlink()
    for f in range(6):
        grad = np.linspace(0, 60000, 24 * 24).reshape(24, 24)
        Image.fromarray(((grad + f * 900) % 65536).astype(np.uint16)).save(clip / f"img{f + 1}.png")
    return root


def float_tiff(ws) -> Path:
    root = ws.copy("frames")
    frame = root / "s1" / "negative" / "clip000" / "img1.png"
    frame.unlink()
    Image.fromarray(np.ones((24, 24), np.float32)).save(frame.with_suffix(".tif"))
    return root


def dup_frames(ws) -> Path:
    """A clip folder holding its frames twice: img1..6.png and img1..6.bmp."""
    root = ws.copy("frames")
    clip = root / "s1" / "negative" / "clip000"
    for p in sorted(clip.glob("*.png")):
        Image.open(p).save(p.with_suffix(".bmp"))
    return root


def manifest(ws, rows: list[list], header=("subject", "clip", "label", "frames_dir", "onset", "apex", "offset")) -> Path:
    if not (ws.path / "frames").exists():
        ws.copy("frames")
    path = ws.path / "manifest.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def good_rows(ws) -> list[list]:
    return [["s1", "a", "negative", str(ws.path / "frames/s1/negative/clip000"), "", "", ""],
            ["s2", "b", "positive", str(ws.path / "frames/s2/positive/clip001"), "", "", ""]]


def manifest_with(ws, line: int, col: int, value: str) -> Path:
    rows = good_rows(ws)
    rows[line - 2][col] = value
    return manifest(ws, rows)


CASME_ROWS_OLD = [["01", "EP02_01f", None, 2, 3, 4, None, "AU1", "happiness", "1"]]
CASME_ROWS_NEW = CASME_ROWS_OLD + [["02", "EP03_02f", None, 5, 6, 7, None, "AU4", "disgust", "2"]]


def casme2_two_files(ws, names=("CASME2-coding-20140508.xlsx", "CASME2-coding-20190701.xlsx")) -> Path:
    root = ws.path / "casme2"
    make_casme2(root, CASME_ROWS_NEW)
    (root / "CASME2-coding-test.xlsx").unlink()
    write_xlsx(root / names[0], CASME2_HEADER, CASME_ROWS_OLD)
    write_xlsx(root / names[1], CASME2_HEADER, CASME_ROWS_NEW)
    return root


def casme2_header_only(ws) -> Path:
    root = ws.path / "casme2"
    make_casme2(root, CASME_ROWS_NEW)
    write_xlsx(root / "CASME2-coding-test.xlsx", CASME2_HEADER, [])
    return root


def no_label_folders(ws) -> Path:
    root = ws.path / "subjects"
    for s in ("s1", "s2"):
        (root / s).mkdir(parents=True)
    return root


def deny_listing(ws, folder: Path) -> None:
    """Listing ``folder`` fails as for a folder without read permission (root ignores chmod)."""
    real = Path.iterdir

    def iterdir(self):
        if self == folder:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self)

    ws.faults.setattr(Path, "iterdir", iterdir)


def label_folder_denied(ws) -> Path:
    root = ws.copy("frames")
    deny_listing(ws, root / "s2" / "positive")
    return root


def truncated_jpeg(ws) -> Path:
    root = ws.copy("frames")
    clip = root / "s1" / "negative" / "clip000"
    Image.open(clip / "img1.png").convert("RGB").save(clip / "img1.jpg")
    (clip / "img1.png").unlink()
    data = (clip / "img1.jpg").read_bytes()
    (clip / "img1.jpg").write_bytes(data[: len(data) // 2])
    return root


def loose_images(ws) -> Path:
    root = ws.copy("frames")
    write_frames(root / "s1" / "negative", ["stray1.png"])
    return root


# ---------------------------------------------------------------- checks of good outcomes
def frames_of_clip_differ(ws, out) -> None:
    """The 16-bit clip's embeddings vary over time (all-255 frames would make them equal)."""
    cache = open_cache(ws.path / "c.zarr")
    i = [c.clip_id for c in cache.clips].index("folder/s1/clip000")
    rows = cache.load_all()[i]
    assert np.ptp(rows, axis=0).max() > 1e-3


def embed_rows_as_eight_bit(ws, out) -> None:
    """The 16-bit frames embed as their v / 257 8-bit versions do (not as white frames)."""
    from mer_cache.embed import embed_images

    refs = []
    for f in (1, 2):
        arr = np.asarray(Image.open(ws.path / f"frames/s1/negative/clip000/img{f}.png")).astype(np.uint32)
        refs.append(ws.path / f"ref{f}.png")
        Image.fromarray(((arr + 128) // 257).astype(np.uint8)).save(refs[-1])
    want = embed_images(refs, trunk="tiny-cnn", weights="random")
    np.testing.assert_allclose(np.load(ws.path / "e.npy"), want, rtol=0, atol=1e-6)


def extract(ws, root, dataset="folder", out="c.zarr", more=()):
    return ws.extract_args(root, ws.path / out, dataset=dataset, more=more)


def check(root, dataset="folder", *more):
    return ["datasets", "check", "--dataset", dataset, "--root", root, *more]


CASES = [
    # silent garbage: 16-bit frames are scaled, not clipped to white
    Case("png16-extract", lambda w: extract(w, frames16(w)), 0, "Cache complete: True",
         unchanged=False, check=frames_of_clip_differ),
    Case("png16-check-deep", lambda w: check(frames16(w), "folder", "--deep"), 0, "0 fatal problem(s)"),
    Case("png16-embed", lambda w: ["embed", *sorted((frames16(w) / "s1/negative/clip000").glob("img[12].png")),
                                   "--trunk", "tiny-cnn", "--weights", "random", "--out", w.path / "e.npy"],
         0, "Wrote", unchanged=False, check=embed_rows_as_eight_bit),
    Case("float-tiff-check-deep", lambda w: check(float_tiff(w), "folder", "--deep"), 1, "32-bit float image"),
    Case("float-tiff-extract", lambda w: extract(w, float_tiff(w)), 1, ("32-bit float image", "1 clip(s) failed"),
         unchanged=False),
    # silent garbage: one clip stored twice in one folder
    Case("dup-frames-check", lambda w: check(dup_frames(w)), 1, ("clip000 holds 6 frame number(s) twice", "img1.bmp and img1.png")),
    Case("dup-frames-extract", lambda w: extract(w, dup_frames(w)), 2, "frame number(s) twice"),
    Case("dup-frames-list", lambda w: ["datasets", "list", "--dataset", "folder", "--root", dup_frames(w)], 2, "twice"),
    Case("dup-frames-manifest", lambda w: check(manifest(w, [["s1", "a", "negative", str(dup_frames(w) / "s1/negative/clip000"), "", "", ""]]), "manifest"),
         1, ("line 2", "twice")),
    # silent garbage: two annotation files, the newest is read and named
    Case("casme2-two-xlsx-newest", lambda w: check(casme2_two_files(w), "casme2"), 0,
         ("reading the newest, CASME2-coding-20190701.xlsx", "2 clips")),
    Case("casme2-two-xlsx-undated", lambda w: check(casme2_two_files(w, ("CASME2-coding-a.xlsx", "CASME2-coding-b.xlsx")), "casme2"),
         1, ("no date in their names", "-o annotation=PATH")),
    Case("casme2-two-xlsx-extract-refuses-undated", lambda w: extract(w, casme2_two_files(w, ("CASME2-coding-a.xlsx", "CASME2-coding-b.xlsx")), "casme2"),
         2, "no date in their names"),
    Case("casme2-annotation-file-named", lambda w: check(make_casme2(w.path / "casme2", CASME_ROWS_NEW), "casme2"), 0,
         ("CASME2-coding-test.xlsx: CASME II annotations read from this file",)),
    Case("casme2-annotation-given-missing", lambda w: check(make_casme2(w.path / "casme2", CASME_ROWS_NEW), "casme2", "-o", f"annotation={w.path / 'nope.xlsx'}"),
         1, "nope.xlsx does not exist"),
    Case("casme2-header-only-check", lambda w: check(casme2_header_only(w), "casme2"), 1, "has a header row (row 1 of sheet",
         absent=("frame folders",)),
    Case("casme2-header-only-extract", lambda w: extract(w, casme2_header_only(w), "casme2"), 2, "but no clip rows"),
    # silent garbage: empty manifest cells would invent a subject
    Case("manifest-empty-subject-check", lambda w: check(manifest_with(w, 3, 0, ""), "manifest"), 1,
         "line 3 of manifest.csv: the subject cell(s) are empty"),
    Case("manifest-empty-subject-extract", lambda w: extract(w, manifest_with(w, 3, 0, " "), "manifest"), 2,
         "line 3 of manifest.csv: the subject cell(s) are empty"),
    Case("manifest-empty-clip", lambda w: check(manifest_with(w, 2, 1, ""), "manifest"), 1, "line 2 of manifest.csv: the clip cell(s)"),
    Case("manifest-empty-label", lambda w: check(manifest_with(w, 2, 2, ""), "manifest"), 1, "label '(empty)' is not allowed"),
    Case("manifest-empty-frames-dir", lambda w: check(manifest_with(w, 2, 3, ""), "manifest"), 1, "frames_dir cell(s) are empty"),
    Case("manifest-onset-after-offset", lambda w: check(manifest(w, [r[:4] + ["4", "", "1"] for r in good_rows(w)]), "manifest"), 0,
         "onset 4 is after offset 1"),
    Case("manifest-apex-outside", lambda w: check(manifest(w, [r[:4] + ["1", "5", "3"] for r in good_rows(w)]), "manifest"), 0,
         "apex 5 is outside onset..offset 1..3"),
    Case("manifest-missing-column", lambda w: check(manifest(w, [r[:3] for r in good_rows(w)], header=("subject", "clip", "label")), "manifest"), 1,
         "has no column 'frames_dir'"),
    Case("manifest-fps-not-number", lambda w: check(manifest(w, [r[:4] + ["x"] for r in good_rows(w)], header=("subject", "clip", "label", "frames_dir", "fps")), "manifest"), 1,
         "fps 'x' is not a number"),
    Case("manifest-missing-folder", lambda w: check(manifest_with(w, 2, 3, "nowhere"), "manifest"), 1, "frames_dir does not exist"),
    # zero clips is an error
    Case("zero-clips-extract-video", lambda w: extract(w, w.copy("frames"), "video"), 2, "found 0 clips",
         absent=("Cache complete",)),
    Case("zero-clips-check-video", lambda w: check(w.copy("frames"), "video"), 1, "found 0 clips"),
    Case("zero-clips-check-no-label-folders", lambda w: check(no_label_folders(w)), 1, "found 0 clips"),
    Case("zero-clips-extract-no-label-folders", lambda w: extract(w, no_label_folders(w)), 2, "found 0 clips"),
    Case("zero-clips-extract-flow", lambda w: ["extract", "--features", "flow", "--dataset", "folder", "--root",
                                               no_label_folders(w), "--out", w.path / "f.zarr"], 2,
         "found 0 clips", absent=("complete",)),
    # unreadable folders: a message naming the folder, no traceback
    Case("label-folder-unreadable-check-deep", lambda w: check(label_folder_denied(w), "folder", "--deep"), 1,
         ("Permission denied", "s2/positive")),
    Case("label-folder-unreadable-extract", lambda w: extract(w, label_folder_denied(w)), 2, ("Permission denied", "s2/positive")),
    Case("label-folder-unreadable-list", lambda w: ["datasets", "list", "--dataset", "folder", "--root", label_folder_denied(w)], 2,
         "Permission denied"),
    # roots and options
    Case("root-missing", lambda w: check(w.path / "nope"), 1, "does not exist"),
    Case("root-is-file", lambda w: check(manifest(w, good_rows(w))), 1, "is a file, not a folder"),
    Case("root-empty", lambda w: check(w.path), 1, "is empty"),
    Case("unknown-dataset", lambda w: check(w.path, "smicc"), 2, "Unknown dataset 'smicc'"),
    Case("option-without-equals", lambda w: check(w.copy("frames"), "folder", "-o", "fps"), 2, "expects KEY=VALUE"),
    Case("unknown-loader-option", lambda w: check(w.copy("frames"), "folder", "-o", "colour=1"), 2, "has no option colour"),
    Case("fps-not-positive", lambda w: check(w.copy("frames"), "folder", "-o", "fps=-3"), 2, "not a positive number"),
    Case("truncated-jpeg-check-deep", lambda w: check(truncated_jpeg(w), "folder", "--deep"), 1, "the image cannot be read"),
    Case("truncated-jpeg-extract", lambda w: extract(w, truncated_jpeg(w)), 1, ("Cannot decode frame", "1 clip(s) failed"),
         unchanged=False),
    Case("loose-images-in-label-folder", lambda w: check(loose_images(w)), 1, "sit directly in a label folder"),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bad_dataset_input(case, ws):
    run_case(case, ws)


def test_sixteen_bit_frames_scale_to_eight_bit_not_white(tmp_path):
    """v / 257: the 16-bit ramp keeps its shape in 8 bit (Pillow's own convert clips it to 255)."""
    ramp = np.linspace(0, 65535, 64).astype(np.uint16).reshape(8, 8)
    Image.fromarray(ramp).save(tmp_path / "f.png")
    pre = create_trunk("tiny-cnn", weights="random").preprocessing
    pre = type(pre)(**{**pre.__dict__, "input_size": (8, 8), "channels": "gray"})
    got = load_frame(tmp_path / "f.png", pre)[0]
    np.testing.assert_array_equal(got, ((ramp.astype(np.uint32) + 128) // 257).astype(np.uint8))
