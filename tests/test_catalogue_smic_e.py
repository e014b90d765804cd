"""SMIC-E loader: long videos, trailing text rows, 6-digit frame names, FirstF checked."""

from __future__ import annotations

import pytest

from catalogue_trees import write_frames, write_xlsx
from mer_cache.catalogue import DatasetWarning, load_catalogue
from mer_cache.catalogue.registry import scan_dataset

HEADER = ["Subject", "Filename", "OnsetF", "OffsetF", "Emotion", "FirstF"]
ROWS = [[1, "s1_ne_01", 105, 110, "negative", 101],
        [1, "s1_po_02", 203, 207, "positive", 201],
        [2, "s2_sur_01", 12, 15, "surprise", 10]]
NOTES = [[None], ["Note: OnsetF and OffsetF are frame numbers of the long video."]]


def build(root, rows=ROWS):
    write_xlsx(root / "SMIC-HS-E_annotation.xlsx", HEADER, [*rows, *NOTES])
    for sub, name, onset, offset, _, first in rows:
        write_frames(root / "SMIC-HS-E" / f"s{sub:02d}" / name,
                     [f"image{n:06d}.jpg" for n in range(first, offset + 4)])
    return root


def test_long_videos_with_onset_offset_inside(tmp_path):
    with pytest.warns(DatasetWarning, match="is not a clip row"):
        clips = load_catalogue("smic-e", build(tmp_path))
    assert [c.clip_id for c in clips] == ["smic-e/s01/s1_ne_01", "smic-e/s01/s1_po_02", "smic-e/s02/s2_sur_01"]
    first = clips[0]
    assert first.frames[0].name == "image000101.jpg" and first.n_frames == 13
    assert (first.onset, first.apex, first.offset, first.fps) == (4, None, 9, 100.0)
    assert first.attrs["first_frame"] == 101
    span = load_catalogue("smic-e", tmp_path, frames="onset-offset")
    assert span[0].n_frames == 6


def test_firstf_that_disagrees_with_the_folder_is_a_warning(tmp_path):
    build(tmp_path)
    rows = [[1, "s1_ne_01", 105, 110, "negative", 1]]
    write_xlsx(tmp_path / "SMIC-HS-E_annotation.xlsx", HEADER, rows)
    _, problems = scan_dataset("smic-e", tmp_path)
    assert any("FirstF is 1 but the video's first image is image000101.jpg" in p.message for p in problems)


def test_two_rows_in_one_video_become_two_clips(tmp_path):
    build(tmp_path, [ROWS[0], [1, "s1_ne_01", 102, 104, "negative", 101]])
    clips = load_catalogue("smic-e", tmp_path)
    assert [c.clip_id for c in clips] == ["smic-e/s01/s1_ne_01_105", "smic-e/s01/s1_ne_01_102"]
