"""MEGC2019 composite: the shipped list, and the join of SMIC HS + CASME II + SAMM roots."""

from __future__ import annotations

import warnings
from collections import Counter

import pytest

from catalogue_trees import make_casme2, make_smic
from mer_cache.catalogue import DatasetWarning, load_catalogue
from mer_cache.catalogue.megc2019 import read_composite
from mer_cache.errors import DatasetError
from test_catalogue_samm import ROWS as SAMM_ROWS, make_samm

CASME2_ROWS = [["01", "EP02_01f", None, 2, 10, 11, None, "12", "happiness", 1],
               ["01", "EP03_02", None, 1, 2, 3, None, "18", "others", 7],
               ["02", "EP01_11f", None, 5, 7, 9, None, "4", "disgust", 3]]

COMPOSITE = """dataset,sub,filename_o,label,apex,imagename,sub_filename
smic,s01,s01_ne_01,0,,s01_s1_ne_01.jpg,
smic,s02,s02_sur_01,2,,s02_s2_sur_01.jpg,
casme2,sub01,EP02_01f,1,,sub01_EP02_01f.jpg,
casme2,02,EP01_11f,0,,sub02_EP01_11f.jpg,
samm,006,006_1_2,0,,006_006_1_2.jpg,
"""


def test_shipped_list_matches_published_counts():
    entries = read_composite()
    assert len(entries) == 442
    counts = Counter((e.dataset, e.label) for e in entries)
    assert [counts[("smic", k)] for k in "012"] == [70, 51, 43]
    assert [counts[("casme2", k)] for k in "012"] == [88, 32, 25]
    assert [counts[("samm", k)] for k in "012"] == [92, 26, 15]
    assert len({(e.dataset, e.subject) for e in entries}) == 68


@pytest.fixture
def parts(tmp_path):
    make_smic(tmp_path / "SMIC", clips={"s1": [("negative", "s1_ne_01"), ("positive", "s1_po_01")],
                                        "s2": [("surprise", "s2_sur_01")]})
    # EP03_02 (others) is not in the composite: its missing folder must not matter
    make_casme2(tmp_path / "CASME2", CASME2_ROWS, skip={("sub01", "EP03_02")})
    make_samm(tmp_path / "SAMM_data", SAMM_ROWS)
    (tmp_path / "composite.csv").write_text(COMPOSITE)
    return tmp_path


def test_join_by_composite_list(parts):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DatasetWarning)
        clips = load_catalogue("megc2019", parts, composite=parts / "composite.csv")
    assert [c.clip_id for c in clips] == ["smic/s1/s1_ne_01", "smic/s2/s2_sur_01", "casme2/sub01/EP02_01f",
                                          "casme2/sub02/EP01_11f", "samm/006/006_1_2"]
    assert [c.label for c in clips] == ["negative", "surprise", "positive", "negative", "negative"]
    assert [c.dataset for c in clips] == ["smic", "smic", "casme2", "casme2", "samm"]
    assert all(c.attrs["composite"] == "megc2019" for c in clips)
    assert clips[4].attrs["source_label"] == "Contempt" and clips[4].fps == 200.0
    assert clips[0].fps == 100.0 and clips[2].onset == 1  # source annotations kept


def test_explicit_roots_and_missing_entry(parts, tmp_path):
    with open(parts / "composite.csv", "a") as fh:
        fh.write("smic,s03,s03_po_01,1,,,\n")
    with pytest.raises(DatasetError) as err, warnings.catch_warnings():
        warnings.simplefilter("ignore", DatasetWarning)
        load_catalogue("megc2019", tmp_path / "unused", composite=parts / "composite.csv",
                       smic_root=parts / "SMIC", casme2_root=parts / "CASME2", samm_root=parts / "SAMM_data")
    assert "line 7 of composite.csv (smic s03 s03_po_01)" in str(err.value)


def test_missing_part_root_names_option(tmp_path):
    make_smic(tmp_path / "SMIC")
    with pytest.raises(DatasetError, match="casme2_root=PATH"):
        load_catalogue("megc2019", tmp_path)


def test_headerless_copy_of_the_list_reads_like_the_headed_one(tmp_path):
    headed = tmp_path / "headed.csv"
    headed.write_text(COMPOSITE)
    bare = tmp_path / "bare.csv"
    bare.write_text(COMPOSITE.split("\n", 1)[1])  # the widespread copy has no header row
    a, b = read_composite(headed), read_composite(bare)
    assert [(e.dataset, e.subject, e.filename, e.label) for e in a] == \
        [(e.dataset, e.subject, e.filename, e.label) for e in b]
    assert len(b) == 5 and b[0].line == 1 and a[0].line == 2


def test_list_without_header_or_known_first_column_is_refused(tmp_path):
    odd = tmp_path / "odd.csv"
    odd.write_text("ds,who,clip,y\nsmic,s01,s01_ne_01,0\n")
    with pytest.raises(DatasetError, match="needs the columns dataset, sub, filename_o, label"):
        read_composite(odd)
    short = tmp_path / "short.csv"
    short.write_text("smic,s01,s01_ne_01,0\ncasme2,sub01\n")
    with pytest.raises(DatasetError, match="line 2 has fewer than the 4 columns"):
        read_composite(short)
