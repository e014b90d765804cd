"""CAS(ME)^3 part A loader: several micro-expressions per recording folder."""

from __future__ import annotations

from catalogue_trees import write_frames, write_xlsx
from mer_cache.catalogue import load_catalogue

HEADER = ["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion"]


def test_part_a_rows_become_onset_offset_clips(tmp_path):
    rows = [["spNO.1", "a", 3, 5, 7, "L12", 1, "happy"],
            ["spNO.1", "a", 12, 13, 15, "4", 3, "disgust"],
            ["spNO.2", "b", 1, 2, 4, "1+2", 5, "surprise"]]
    write_xlsx(tmp_path / "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx", HEADER, rows)
    base = tmp_path / "part_A" / "data" / "part_A"
    write_frames(base / "spNO.1/a/color", [f"{n}.jpg" for n in range(1, 21)])
    write_frames(base / "spNO.1/a/depth", ["1.png"])
    write_frames(base / "spNO.2/b/color", [f"{n}.jpg" for n in range(1, 6)])
    clips = load_catalogue("casme3", tmp_path)
    assert [c.clip_id for c in clips] == ["casme3/spNO.1/a_3", "casme3/spNO.1/a_12", "casme3/spNO.2/b_1"]
    a3 = clips[0]
    assert [p.name for p in a3.frames] == ["3.jpg", "4.jpg", "5.jpg", "6.jpg", "7.jpg"]
    assert (a3.onset, a3.apex, a3.offset, a3.fps) == (0, 2, 4, 30.0)
    full = load_catalogue("casme3", tmp_path, frames="all")
    assert full[1].n_frames == 20 and (full[1].onset, full[1].apex) == (11, 12)
