"""CAS(ME)^3 part C (AUs only, no apex) and parts A + C together."""

from __future__ import annotations

import warnings

import pytest

from catalogue_trees import write_frames, write_xlsx
from mer_cache.catalogue import DatasetWarning, load_catalogue
from mer_cache.catalogue.labels import apply_scheme, get_scheme
from test_catalogue_casme3 import HEADER as A_HEADER

C_HEADER = ["sub", "count", "au", "onset", "offset"]
C_ROWS = [[1, 1, "4,7", 3, 9], [1, 2, "12", 2, 5], [2, 1, "L12，R14", 1, 4]]  # full-width comma as shipped
A_ROWS = [["spNO.1", "a", 3, 5, 7, "L12", 1, "happy"],
          ["spNO.1", "a", 12, 13, 15, "4", 3, "sad"],
          ["spNO.2", "b", 1, 2, 4, "1+2", 5, "others"]]


def build_c(root):
    write_xlsx(root / "CAS(ME)3_part_C_ME.xlsx", C_HEADER, C_ROWS)
    for sub, count, *_ in C_ROWS:
        folder = root / "ME_C" / f"{sub:02d}" / str(count)
        write_frames(folder / "color", [f"{n}.jpg" for n in range(1, 11)])
        write_frames(folder / "depth", ["1.png"])
    return root


def build_a(root):
    write_xlsx(root / "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx", A_HEADER, A_ROWS)
    base = root / "part_A" / "data" / "part_A"
    write_frames(base / "spNO.1/a/color", [f"{n}.jpg" for n in range(1, 21)])
    write_frames(base / "spNO.2/b/color", [f"{n}.jpg" for n in range(1, 6)])
    return root


def test_part_c_rows_are_unlabelled_au_clips_without_apex(tmp_path):
    clips = load_catalogue("casme3c", build_c(tmp_path))
    assert [c.clip_id for c in clips] == ["casme3c/01/1", "casme3c/01/2", "casme3c/02/1"]
    first = clips[0]
    assert [p.name for p in first.frames] == [f"{n}.jpg" for n in range(3, 10)]
    assert (first.onset, first.apex, first.offset, first.fps) == (0, None, 6, 30.0)
    assert first.label == "unlabelled" and first.attrs["action_units"] == "4,7"
    middle = load_catalogue("casme3c", tmp_path, apex="middle")
    assert middle[0].apex == 3 and middle[0].attrs["apex_estimated"]  # frame 6 of 3..9


def test_parts_a_and_c_load_together_and_part_c_is_counted_out_of_emotion_schemes(tmp_path):
    build_c(build_a(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DatasetWarning)
        clips = load_catalogue("casme3-ac", tmp_path)
    assert [c.dataset for c in clips] == ["casme3"] * 3 + ["casme3c"] * 3
    res = apply_scheme(get_scheme("megc3"), [c.dataset for c in clips], [c.label for c in clips])
    assert res.mapped[:3] == ["positive", "negative", None]
    assert dict(res.unmapped) == {("casme3", "others"): 1, ("casme3c", "unlabelled"): 3}
    split = load_catalogue("casme3-ac", None, part_a_root=tmp_path, part_c_root=tmp_path)
    assert len(split) == 6


def test_casme3_ac_without_roots_names_the_options(tmp_path):
    from mer_cache.errors import DatasetError

    with pytest.raises(DatasetError, match="part_a_root=PATH"):
        load_catalogue("casme3-ac", None)
