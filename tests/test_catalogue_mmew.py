"""MMEW loader: clips filed by emotion folder, not by subject."""

from __future__ import annotations

import pytest

from catalogue_trees import write_frames, write_xlsx
from mer_cache.catalogue import DatasetWarning, load_catalogue
from mer_cache.catalogue.problems import UNANNOTATED_FOLDER
from mer_cache.catalogue.registry import scan_dataset
from mer_cache.errors import DatasetError

HEADER = ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units",
          "Estimated Emotion", "remarks"]
ROWS = [["S01", "S01_0101", 2, 4, 6, "AU6+AU12", "happiness", None],
        ["S01", "S01_0203", 1, 3, 5, "AU4", "disgust", None],
        ["S02", "S02_0102", 1, 12, 5, "AU1+AU2", "surprise", "apex after offset"],
        ["S03", "S03_0104", 3, 4, 7, "AU14", "others", None]]


def build(root, rows=ROWS):
    write_xlsx(root / "MMEW_Micro_Exp.xlsx", HEADER, rows)
    for _, name, *rest in rows:
        emotion = rest[4]
        write_frames(root / "Micro_Expression" / emotion.capitalize() / name, [f"{n}.jpg" for n in range(1, 9)])
    return root


def test_emotion_folders_hold_the_clips(tmp_path):
    with pytest.warns(DatasetWarning, match="apex frame 12 is outside onset..offset"):
        clips = load_catalogue("mmew", build(tmp_path))
    assert [c.clip_id for c in clips] == ["mmew/S01/S01_0101", "mmew/S01/S01_0203", "mmew/S02/S02_0102",
                                          "mmew/S03/S03_0104"]
    assert clips[0].frames[0].parent.name == "S01_0101"
    assert clips[0].frames[0].parent.parent.name == "Happiness"  # emotion folder, any case
    assert (clips[0].onset, clips[0].apex, clips[0].offset, clips[0].fps) == (1, 3, 5, 90.0)
    assert clips[2].attrs["remarks"] == "apex after offset"


def test_unannotated_clip_folder_is_a_warning_and_no_emotion_folder_an_error(tmp_path):
    build(tmp_path)
    write_frames(tmp_path / "Micro_Expression" / "Fear" / "S09_0101", ["1.jpg"])
    _, problems = scan_dataset("mmew", tmp_path)
    assert [p.path.name for p in problems if p.kind == UNANNOTATED_FOLDER] == ["S09_0101"]
    bare = tmp_path / "bare"
    write_xlsx(bare / "MMEW_Micro_Exp.xlsx", HEADER, ROWS)
    with pytest.raises(DatasetError, match="No MMEW emotion folders"):
        load_catalogue("mmew", bare)
