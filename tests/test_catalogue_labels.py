"""Label schemes: CAS(ME)^3's own words map under megc3, and every unmapped label is counted."""

from __future__ import annotations

import re

import numpy as np
import pytest
from typer.testing import CliRunner

import mer_cache.pipelines.inputs as pipeline_inputs
from mer_cache.catalogue.labels import UnmappedLabelWarning, apply_scheme, get_scheme
from mer_cache.cli.app import app
from mer_cache.heads.data import sequences_from_arrays

# CAS(ME)^3 part A's lower-case labels (REFERENCE.md section 11) and its own 3-class column
CASME3_TO_3 = {"happy": "positive", "sad": "negative", "anger": "negative", "disgust": "negative",
               "fear": "negative", "surprise": "surprise", "others": None}


@pytest.mark.parametrize("raw,expected", sorted(CASME3_TO_3.items()))
def test_megc3_maps_casme3_labels_by_its_own_three_classes(raw, expected):
    assert get_scheme("megc3").map("casme3", raw) == expected


def test_apply_scheme_counts_every_unmapped_label_per_dataset():
    sch = get_scheme("megc3")
    datasets = ["casme3"] * 4 + ["casme2"] * 3
    raw = ["happy", "sad", "others", "others", "others", "fear", "Tense"]
    res = apply_scheme(sch, datasets, raw)
    assert res.mapped == ["positive", "negative", None, None, None, "negative", None]
    assert dict(res.unmapped) == {("casme3", "others"): 2, ("casme2", "others"): 1, ("casme2", "Tense"): 1}
    line = res.summary("megc3")
    assert "left out 4 of 7 clips" in line and "casme3 'others' x2" in line and "casme2 'Tense' x1" in line
    assert apply_scheme(sch, ["smic"], ["positive"]).summary("megc3") == ""


def _arrays(labels):
    n = len(labels)
    return dict(embeddings=[np.ones((3, 2), np.float32) * i for i in range(n)],
                clip_ids=[f"casme3/s{i}/c" for i in range(n)], subjects=[f"s{i}" for i in range(n)],
                datasets=["casme3"] * n, labels=labels)


def test_sequences_keep_casme3_happy_and_sad_and_warn_with_counts():
    labels = ["happy", "sad", "surprise", "others", "others", "happy"]
    with pytest.warns(UnmappedLabelWarning, match=r"left out 2 of 6 clips.*casme3 'others' x2"):
        seqs = sequences_from_arrays(**_arrays(labels), scheme="megc3")
    assert len(seqs) == 4 and seqs.classes == ("negative", "positive", "surprise")
    assert seqs.dropped == {"casme3/others": 2}


def test_train_head_cli_prints_the_unmapped_label_counts(tmp_path, monkeypatch):
    from heads_synth import make_arrays

    arrays = make_arrays(n_subjects=4, clips_per_class=1, dim=4)
    with pytest.warns(UnmappedLabelWarning):
        seqs = sequences_from_arrays(**arrays, scheme="megc3")
    monkeypatch.setattr(pipeline_inputs, "load_sequences", lambda path, labels: (
        sequences_from_arrays(**arrays, scheme=labels)))
    res = CliRunner().invoke(app, ["train-head", "--cache", str(tmp_path), "--labels", "megc3",
                                   "--arch", "mean", "--epochs", "1", "--window", "9", "--folds", "2",
                                   "--out", str(tmp_path / "r")])
    text = " ".join(res.output.split())
    assert "Warning: label scheme 'megc3' left out 4 of 16 clips" in text
    assert "smic 'non_micro' x4" in text
    assert len(seqs) == 12


def test_megc3_help_says_the_composite_is_the_megc2019_dataset():
    res = CliRunner().invoke(app, ["train-head", "--help"])
    text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", res.output).split())  # rich's help box
    assert "megc2019" in text and "not the MEGC2019 list" in text
