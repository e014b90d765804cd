"""Annotation spreadsheet reading: header found by content, quirks warned, columns named."""

from __future__ import annotations

import pytest

from catalogue_trees import SAMM_HEADER, write_xlsx
from mer_cache.catalogue.problems import ANNOTATION_QUIRK, ProblemLog
from mer_cache.catalogue.xlsx import normalise_subject, parse_frame, read_annotation
from mer_cache.errors import DatasetError

COLUMNS = {"subject": ("Subject",), "filename": ("Filename",), "onset": ("Onset Frame", "OnsetFrame")}


@pytest.mark.parametrize("n_preamble", [0, 5, 12])
def test_header_found_after_any_preamble(tmp_path, n_preamble):
    preamble = [[f"note {i}", None, "text"] for i in range(n_preamble)]
    path = write_xlsx(tmp_path / "a.xlsx", SAMM_HEADER, [[6, "006_1_2", 1, 10, 20, 30]], preamble=preamble)
    rows = read_annotation(path, columns=COLUMNS, problems=ProblemLog())
    assert len(rows) == 1
    assert rows[0]["subject"] == 6 and rows[0]["onset"] == 10
    assert rows[0].row == n_preamble + 2


def test_missing_column_names_column_and_file(tmp_path):
    path = write_xlsx(tmp_path / "codes.xlsx", ["Subject", "Filename", "Apex"], [["01", "EP1", 3]])
    with pytest.raises(DatasetError) as err:
        read_annotation(path, columns=COLUMNS, problems=ProblemLog())
    msg = str(err.value)
    assert "'Onset Frame'" in msg and "codes.xlsx" in msg and "'Apex'" in msg


def test_trailing_text_rows_are_warnings(tmp_path):
    rows = [["s01", "s01_ne_01", 5], [None, None, None], ["Note: frames counted from 1", None, None]]
    path = write_xlsx(tmp_path / "e.xlsx", ["Subject", "Filename", "OnsetF"], rows)
    log = ProblemLog()
    got = read_annotation(path, columns={"subject": ("Subject",), "filename": ("Filename",),
                                         "onset": ("OnsetF",)}, problems=log)
    assert [r["filename"] for r in got] == ["s01_ne_01"]
    assert [p.kind for p in log.items] == [ANNOTATION_QUIRK]
    assert "Note: frames counted" in log.items[0].message


def test_not_an_xlsx_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.xlsx"
    path.write_text("not a spreadsheet")
    with pytest.raises(DatasetError, match="bad.xlsx"):
        read_annotation(path, columns=COLUMNS, problems=ProblemLog())


def test_normalise_subject():
    assert normalise_subject(6, width=3) == "006"
    assert normalise_subject(6.0, width=3) == "006"
    assert normalise_subject("01", width=2) == "01"
    assert normalise_subject("spNO.1", width=0) == "spNO.1"


@pytest.mark.parametrize("value,expected,warned", [
    (46, 46, False), ("46", 46, False), (46.0, 46, False), ("/", None, True), (None, None, True),
    (-1, None, True), ("n/a", None, True),
])
def test_parse_frame(tmp_path, value, expected, warned):
    log = ProblemLog()
    assert parse_frame(value, what="apex", path=tmp_path / "x.xlsx", row=3, problems=log) == expected
    assert bool(log.items) is warned
