"""CASME (I) loader: the coding xlsx (blank columns, two apex columns), sections A and B."""

from __future__ import annotations

import warnings

import pytest

from catalogue_trees import write_frames
from mer_cache.catalogue import DatasetWarning, load_catalogue
from mer_cache.errors import DatasetError

# the official column order: two blank columns, ApexF1 and ApexF2, AU before Emotion
HEADER = ["Subject", "Filename", None, "OnsetF", "ApexF1", "ApexF2", "OffsetF", None, "AU", "Emotion"]
ROWS = [[1, "EP01_5", None, 2, 4, None, 6, None, "1+2", "surprise"],
        [1, "EP03_1", None, 3, 5, None, 8, None, "R14", "repression"],
        [7, "EP12_4", None, 1, "/", None, 4, None, "4+7", "disgust"],
        [8, "EP05_2", None, 10, 12, 13, 15, None, "12", "happiness"],
        [12, "EP08_6", None, 2, 3, None, 40, None, "L10", "tense"]]  # offset 40 has no file


def build(root, rows=ROWS, *, sections=True, sheets=False):
    from openpyxl import Workbook

    wb = Workbook()
    parts = [("Section A", [r for r in rows if r[0] <= 7]), ("Section B", [r for r in rows if r[0] > 7])]
    for i, (title, part) in enumerate(parts if sheets else [("Sheet1", rows)]):
        ws = wb.active if i == 0 else wb.create_sheet()
        ws.title = title
        ws.append(HEADER)
        for r in part:
            ws.append(r)
    wb.save(root / "CASME-coding-20140508.xlsx")
    for subject, name, *_ in rows:
        where = ("Section A" if subject <= 7 else "Section B") if sections else "CASME_raw_selected"
        write_frames(root / where / f"sub{subject:02d}" / name, [f"img{n}.jpg" for n in range(1, 21)])
    return root


def test_sections_a_and_b_load_as_one_catalogue(tmp_path):
    with pytest.warns(DatasetWarning) as caught:
        clips = load_catalogue("casme", build(tmp_path))
    assert [c.clip_id for c in clips] == ["casme/sub01/EP01_5", "casme/sub01/EP03_1", "casme/sub07/EP12_4",
                                          "casme/sub08/EP05_2", "casme/sub12/EP08_6"]
    assert [c.attrs["section"] for c in clips] == ["A", "A", "A", "B", "B"]
    first = clips[0]
    assert (first.onset, first.apex, first.offset, first.fps) == (1, 3, 5, 60.0)
    assert first.attrs["action_units"] == "1+2" and first.label == "surprise"
    assert clips[3].attrs["apex2_frame"] == 13
    messages = " ".join(str(w.message) for w in caught)
    assert "apex is '/'" in messages and clips[2].apex is None
    assert "offset frame 40 has no file" in messages and clips[4].offset is None


def test_one_folder_for_all_subjects_and_one_sheet_per_section(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DatasetWarning)
        clips = load_catalogue("casme", build(tmp_path, sections=False, sheets=True), frames="onset-offset")
    assert len(clips) == 5 and clips[0].n_frames == 5
    assert [c.subject for c in clips] == ["sub01", "sub01", "sub07", "sub08", "sub12"]


def test_unknown_emotion_and_missing_frames_are_reported(tmp_path):
    rows = [*ROWS[:2], [2, "EP02_1", None, 1, 2, None, 3, None, "4", "joy"]]
    build(tmp_path, rows)
    with pytest.raises(Exception, match="'joy' is not a CASME label"):
        load_catalogue("casme", tmp_path)
    empty = tmp_path / "other"
    empty.mkdir()
    (empty / "CASME-coding.xlsx").write_bytes((tmp_path / "CASME-coding-20140508.xlsx").read_bytes())
    with pytest.raises(DatasetError, match="No CASME frame folders"):
        load_catalogue("casme", empty)
