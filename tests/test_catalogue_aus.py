"""AU strings of every dataset -> multi-label targets, side and intensity kept or dropped."""

from __future__ import annotations

import pytest

from mer_cache.catalogue.aus import AU_SETS, ActionUnit, au_targets, normalise_au_name, parse_aus
from mer_cache.errors import LabelError

# the shapes of the real annotation cells (REFERENCE.md sections 5 and 11)
SHAPES = {
    12: [ActionUnit(12)],  # CASME II stores single AUs as integers
    "4+7": [ActionUnit(4), ActionUnit(7)],
    "L12": [ActionUnit(12, "L")],
    "1+R2+25": [ActionUnit(1), ActionUnit(2, "R"), ActionUnit(25)],
    "R14A": [ActionUnit(14, "R", "A")],  # SAMM: side and intensity
    "12B": [ActionUnit(12, None, "B")],
    "R12 + R15": [ActionUnit(12, "R"), ActionUnit(15, "R")],
    "AU12": [ActionUnit(12)],
    "AU4+AU7(k)": [ActionUnit(4), ActionUnit(7, flag="k")],  # 4DME
    "R4+L10": [ActionUnit(4, "R"), ActionUnit(10, "L")],
    "4,7": [ActionUnit(4), ActionUnit(7)],  # CAS(ME)^3 part C
    "L12，R14": [ActionUnit(12, "L"), ActionUnit(14, "R")],  # its one full-width comma
}


@pytest.mark.parametrize("cell", list(SHAPES), ids=[repr(c) for c in SHAPES])
def test_every_dataset_shape_parses(cell):
    parsed = parse_aus(cell)
    assert list(parsed.units) == SHAPES[cell] and parsed.unparsed == ()


def test_float_cell_from_a_spreadsheet_is_an_integer_au():
    assert parse_aus(12.0).units == (ActionUnit(12),)


@pytest.mark.parametrize("cell", [None, "", "  ", "/"])
def test_empty_cells_have_no_aus(cell):
    assert parse_aus(cell).units == () and parse_aus(cell).unparsed == ()


def test_ambiguous_or_garbled_tokens_are_returned_not_guessed():
    parsed = parse_aus("4+R12 or R15+xyz")
    assert parsed.units == (ActionUnit(4),)
    assert parsed.unparsed == ("R12 or R15", "xyz")


CELLS = ["4+7", "R12", "L12B", 12, "AU4(k)", "R12 or R15"]


def test_targets_drop_side_and_intensity_by_default():
    t = au_targets(CELLS)
    assert t.names == ("AU4", "AU7", "AU12")
    assert t.y.tolist() == [[1, 1, 0], [0, 0, 1], [0, 0, 1], [0, 0, 1], [1, 0, 0], [0, 0, 0]]
    assert dict(t.unparsed) == {"R12 or R15": 1} and not t.outside
    assert "'R12 or R15' x1" in t.summary()


def test_targets_keep_side_and_intensity_on_request():
    t = au_targets(CELLS, side=True, intensity=True)
    assert t.names == ("AU4", "AU7", "AU12", "AUL12B", "AUR12")
    assert t.y[:, t.names.index("AUL12B")].tolist() == [0, 0, 1, 0, 0, 0]
    sided = au_targets(CELLS, side=True)
    assert sided.names == ("AU4", "AU7", "AU12", "AUL12", "AUR12")


def test_chosen_set_counts_what_falls_outside():
    t = au_targets(CELLS, aus=[4, "AU12"])
    assert t.names == ("AU4", "AU12") and t.y.shape == (6, 2)
    assert dict(t.outside) == {"AU7": 1}
    cross = au_targets(CELLS, aus="cross")
    assert cross.names == AU_SETS["cross"] and cross.y[:, cross.names.index("AU12")].sum() == 3


def test_bad_au_set_or_name_is_a_label_error():
    with pytest.raises(LabelError, match="Unknown AU set 'nope'"):
        au_targets(CELLS, aus="nope")
    with pytest.raises(LabelError, match="'smile' is not an action unit"):
        normalise_au_name("smile")
    with pytest.raises(LabelError, match="No action unit"):
        au_targets([None, ""])
    assert normalise_au_name("r12") == "AUR12" and normalise_au_name(" au04 ") == "AU4"
