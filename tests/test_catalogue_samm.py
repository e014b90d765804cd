"""SAMM loader: the official xlsx shape (12 preamble rows, integer subjects) + frame folders."""

from __future__ import annotations

import pytest

from catalogue_trees import SAMM_HEADER, write_frames, write_xlsx
from mer_cache.catalogue import DatasetWarning, load_catalogue
from mer_cache.errors import DatasetError

PREAMBLE = [["SAMM Micro-Movement FACS codes"], ["Version 2"]] + [[f"preamble line {i}"] for i in range(3, 13)]


def make_samm(root, rows, *, preamble=PREAMBLE, name="SAMM_Micro_FACS_Codes_v2.xlsx"):
    write_xlsx(root / name, SAMM_HEADER, rows, preamble=preamble)
    for row in rows:
        subject = f"{int(row[0]):03d}"
        nums = sorted({n for v in row[3:6] if isinstance(v, int) and v >= 0 for n in (v - 1, v, v + 1)})
        write_frames(root / "SAMM" / subject / row[1], [f"{subject}_{n:05d}.jpg" for n in nums])
    return root


ROWS = [[6, "006_1_2", "1_2", 5562, 5588, 5605, 44, "Micro - 1/2", "R14", "Contempt", 7, None],
        [6, "006_1_3", "1_3", 3912, -1, 3980, 69, "Micro - 1/2", "4", "Anger", 3, None],
        [11, "011_2_1", "2_1", 100, 140, 120, 21, "Micro - 1/2", "12", "Happiness", 1, "apex late"]]


def test_samm_layout_and_subject_padding(tmp_path):
    assert len(PREAMBLE) == 12
    make_samm(tmp_path, ROWS)
    with pytest.warns(DatasetWarning) as caught:
        clips = load_catalogue("samm", tmp_path)
    assert [c.clip_id for c in clips] == ["samm/006/006_1_2", "samm/006/006_1_3", "samm/011/011_2_1"]
    assert {c.subject for c in clips} == {"006", "011"}
    first = clips[0]
    assert [p.name for p in first.frames][:2] == ["006_05561.jpg", "006_05562.jpg"]
    assert (first.onset, first.apex, first.offset) == (1, 4, 7) and first.fps == 200.0
    assert first.label == "Contempt" and first.attrs["inducement_code"] == "1_2"
    assert clips[1].apex is None  # SAMM writes -1 for an unknown apex
    messages = " ".join(str(w.message) for w in caught)
    assert "apex is -1" in messages
    assert "apex frame 140 is outside onset..offset 100..120" in messages


def test_samm_root_at_frame_folder_and_missing_column(tmp_path):
    make_samm(tmp_path, ROWS[:1])
    clips = load_catalogue("samm", tmp_path / "SAMM")  # xlsx found in the parent
    assert len(clips) == 1
    write_xlsx(tmp_path / "SAMM_Micro_FACS_Codes_v2.xlsx",
               [h for h in SAMM_HEADER if h != "Estimated Emotion"], [ROWS[0][:9]], preamble=PREAMBLE)
    with pytest.raises(DatasetError) as err:
        load_catalogue("samm", tmp_path)
    assert "'Estimated Emotion'" in str(err.value) and "SAMM_Micro_FACS_Codes_v2.xlsx" in str(err.value)
