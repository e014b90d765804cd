"""CASME II loader: the official xlsx layout, frame-number -> index conversion, options, errors."""

from __future__ import annotations

import warnings
from collections import Counter

import pytest

from casme2_coding import write_coding_xlsx
from catalogue_trees import make_casme2, official_casme2_rows, write_frames
from mer_cache.catalogue import DatasetWarning, load_catalogue
from mer_cache.errors import DatasetError, LabelError


@pytest.fixture(scope="module")
def official_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("casme2")
    rows = official_casme2_rows()
    make_casme2(root, rows)
    (root / "CASME2-coding-test.xlsx").unlink()
    # the official file's layout and quirks, generated (the real file is not redistributable)
    write_coding_xlsx(root / "CASME2-coding-20190701.xlsx", rows)
    return root


def test_official_layout_loads_all_clips(official_tree):
    with pytest.warns(DatasetWarning) as caught:
        clips = load_catalogue("casme2", official_tree)
    assert len(clips) == 255
    assert len({c.subject for c in clips}) == 26
    assert Counter(c.label for c in clips) == {"others": 99, "disgust": 63, "happiness": 32,
                                               "surprise": 28, "repression": 27, "sadness": 4, "fear": 2}
    # the apex written '/' (sub04 EP12_01f) is a warning and an unannotated apex, not a crash
    assert any("apex is '/'" in str(w.message) for w in caught)
    odd = next(c for c in clips if c.clip_id == "casme2/sub04/EP12_01f")
    assert odd.apex is None and odd.onset is not None
    # so is an empty apex cell
    assert sum("apex is empty" in str(w.message) for w in caught) == 2
    empty = next(c for c in clips if c.clip_id == "casme2/sub05/EP05_02")
    assert empty.apex is None and empty.offset is not None
    # the blank columns C and G are skipped by name; AU cells are integers or text
    aus = {c.clip_id: c.attrs["action_units"] for c in clips}
    assert aus["casme2/sub01/EP02_01f"] == 12 and {"4+7", "L12", "R4+R10"} <= set(aus.values())
    first = next(c for c in clips if c.clip_id == "casme2/sub01/EP02_01f")
    # xlsx: onset 46, apex 59, offset 86; frames written: 45,46,47,58,59,60,85,86,87
    assert [p.name for p in first.frames][:3] == ["img45.jpg", "img46.jpg", "img47.jpg"]
    assert (first.onset, first.apex, first.offset) == (1, 4, 7)
    assert first.attrs["apex_frame"] == 59 and first.fps == 200.0
    assert first.label == "happiness" and first.attrs["annotation_subject"] == "01"


def test_onset_offset_option_keeps_only_annotated_span(official_tree):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DatasetWarning)
        clips = load_catalogue("casme2", official_tree, frames="onset-offset")
    first = next(c for c in clips if c.clip_id == "casme2/sub01/EP02_01f")
    assert [p.name for p in first.frames] == [f"img{n}.jpg" for n in (46, 47, 58, 59, 60, 85, 86)]
    assert (first.onset, first.apex, first.offset) == (0, 3, 6)


ROWS = [["01", "EP02_01f", None, 2, 10, 11, None, "12", "happiness", 1],
        ["01", "EP03_02", None, 1, 2, 3, None, "18", "others", 7],
        ["02", "EP01_11f", None, 5, None, 9, None, "4", "disgust", 3]]


def test_cropped_layout_and_natural_order(tmp_path):
    make_casme2(tmp_path, ROWS, folder="Cropped", prefix="reg_img")
    with pytest.warns(DatasetWarning, match="apex is empty"):
        clips = load_catalogue("casme2", tmp_path, cropped=True)
    clip = clips[0]
    assert [p.name for p in clip.frames] == [f"reg_img{n}.jpg" for n in (1, 2, 3, 9, 10, 11, 12)]
    assert (clip.onset, clip.apex, clip.offset) == (1, 4, 5)
    with pytest.raises(DatasetError, match="CASME2_RAW_selected/sub01"):
        load_catalogue("casme2", tmp_path)  # raw layout asked for, only Cropped/ present


def test_missing_folder_raises_listing_rows_unless_skip(tmp_path):
    make_casme2(tmp_path, ROWS, skip={("sub01", "EP03_02")})
    with pytest.raises(DatasetError) as err, warnings.catch_warnings():
        warnings.simplefilter("ignore", DatasetWarning)
        load_catalogue("casme2", tmp_path)
    msg = str(err.value)
    assert "row 3 of CASME2-coding-test.xlsx" in msg and "casme2/sub01/EP03_02" in msg
    assert "on_missing='skip'" in msg
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DatasetWarning)
        clips = load_catalogue("casme2", tmp_path, on_missing="skip")
    assert any("has no frame folder" in str(w.message) and "(skipped)" in str(w.message) for w in caught)
    assert [c.clip_id for c in clips] == ["casme2/sub01/EP02_01f", "casme2/sub02/EP01_11f"]


def test_clip_folder_without_frames(tmp_path):
    make_casme2(tmp_path, ROWS)
    for f in (tmp_path / "CASME2_RAW_selected/sub02/EP01_11f").iterdir():
        f.unlink()
    with pytest.raises(DatasetError, match="holds no image"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DatasetWarning)
        load_catalogue("casme2", tmp_path)


def test_unknown_label_is_a_label_error(tmp_path):
    rows = [r[:] for r in ROWS]
    rows[1][8] = "joy"
    make_casme2(tmp_path, rows)
    with pytest.raises(LabelError) as err, warnings.catch_warnings():
        warnings.simplefilter("ignore", DatasetWarning)
        load_catalogue("casme2", tmp_path)
    assert "'joy'" in str(err.value) and "row 3 of CASME2-coding-test.xlsx" in str(err.value)


def test_annotation_found_by_option_and_frames_root(tmp_path):
    make_casme2(tmp_path, ROWS)
    xlsx = tmp_path / "CASME2-coding-test.xlsx"
    moved = tmp_path.parent / f"{tmp_path.name}-codes.xlsx"
    xlsx.rename(moved)
    write_frames(tmp_path / "CASME2_RAW_selected/sub02/EP99", ["img1.jpg"])  # not annotated
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DatasetWarning)
        clips = load_catalogue("casme2", tmp_path / "CASME2_RAW_selected", annotation=moved)
    assert len(clips) == 3
    with pytest.raises(DatasetError, match="annotation=PATH"):
        load_catalogue("casme2", tmp_path / "CASME2_RAW_selected")


def test_the_annotation_file_read_is_always_named(official_tree, tmp_path):
    from mer_cache.catalogue.problems import AnnotationFileNote

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_catalogue("casme2", official_tree)
    notes = [str(w.message) for w in caught if w.category is AnnotationFileNote]
    assert len(notes) == 1 and "CASME2-coding-20190701.xlsx" in notes[0]
