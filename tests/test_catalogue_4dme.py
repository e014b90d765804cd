"""4DME loader: sub_ID/fold_name rows, float frame numbers, combined emotions."""

from __future__ import annotations

import pytest

from catalogue_trees import write_frames, write_xlsx
from mer_cache.catalogue import load_catalogue
from mer_cache.catalogue.labels import apply_scheme, get_scheme
from mer_cache.errors import LabelError

HEADER = ["sub_ID", "fold_name", "Emotion", "Onset", "Apex", "Offset", "AUs"]
ROWS = [["S01", "S01_0101", "Positive", 3.0, 5.0, 9.0, "AU6+AU12"],
        ["S01", "S01_0203", "Negative+Surprise", 2, 4, 6, "AU4+AU7(k)"],
        ["S02", "S02_0102", "Surprise", 1, 2, 3, "AU1+AU2"],
        ["S03", "S03_0401", "Repression", 4, 6, 8, "AU14"]]


def build(root, rows=ROWS, folder="gray_micro"):
    write_xlsx(root / "4DME_Labelling_Micro_release v1.xlsx", HEADER, rows)
    for sub, name, *_ in rows:
        write_frames(root / folder / sub / name, [f"{n}.jpg" for n in range(1, 11)])
    return root


def test_rows_become_clips_with_integer_frames(tmp_path):
    clips = load_catalogue("4dme", build(tmp_path))
    assert [c.clip_id for c in clips] == ["4dme/S01/S01_0101", "4dme/S01/S01_0203", "4dme/S02/S02_0102",
                                          "4dme/S03/S03_0401"]
    first = clips[0]
    assert (first.onset, first.apex, first.offset, first.fps) == (2, 4, 8, 60.0)
    assert first.attrs["onset_frame"] == 3 and first.attrs["action_units"] == "AU6+AU12"
    assert clips[1].label == "Negative+Surprise"
    cropped = load_catalogue("4dme", build(tmp_path / "c", folder="gray_micro_crop"), cropped=True)
    assert len(cropped) == 4


def test_combined_emotion_is_counted_when_a_scheme_leaves_it_out(tmp_path):
    clips = load_catalogue("4dme", build(tmp_path))
    res = apply_scheme(get_scheme("megc3"), [c.dataset for c in clips], [c.label for c in clips])
    assert res.mapped == ["positive", None, "surprise", "negative"]
    assert dict(res.unmapped) == {("4dme", "Negative+Surprise"): 1}


def test_unknown_emotion_is_a_label_error(tmp_path):
    build(tmp_path, [*ROWS, ["S04", "S04_0101", "Happy-ish", 1, 2, 3, "AU12"]])
    with pytest.raises(LabelError, match="'Happy-ish' is not a 4DME emotion"):
        load_catalogue("4dme", tmp_path)
