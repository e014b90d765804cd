"""``--protocol lodo``: train on the other datasets, test on one, scores per dataset."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

import mer_cache.pipelines.inputs as pipeline_inputs
from heads_synth import make_arrays
from mer_cache.cli.app import app
from mer_cache.errors import ProtocolError
from mer_cache.heads.data import sequences_from_arrays
from mer_cache.heads.config import HeadConfig
from mer_cache.pipelines import train_head

SMALL = dict(proj_dims=(16, 16, 8), hidden=8, fc=8, window=9, batch_size=20, epochs=2)


def _two_datasets(**kw):
    a = make_arrays(n_subjects=3, clips_per_class=1, dim=8, dataset="casme2", seed=0, **kw)
    b = make_arrays(n_subjects=3, clips_per_class=1, dim=8, dataset="samm", seed=1, **kw)
    return {k: [*a[k], *b[k]] for k in a}


def test_lodo_tests_each_dataset_once_and_scores_it():
    seqs = sequences_from_arrays(**_two_datasets(), scheme="smic4")
    res = train_head(seqs, HeadConfig(**SMALL, arch="mean", protocol="lodo"))
    assert len(res.metrics["folds"]) == 2
    assert set(res.metrics["per_dataset"]) == {"casme2", "samm"}
    assert res.metrics["per_dataset"]["samm"]["n"] == res.metrics["per_dataset"]["casme2"]["n"] == 12


def test_lodo_on_one_dataset_is_a_protocol_error():
    seqs = sequences_from_arrays(**make_arrays(n_subjects=3, clips_per_class=1, dim=8), scheme="smic4")
    with pytest.raises(ProtocolError, match="at least 2 datasets"):
        train_head(seqs, HeadConfig(**SMALL, arch="mean", protocol="lodo"))


def test_train_head_cli_runs_lodo(tmp_path, monkeypatch):
    arrays = _two_datasets()
    monkeypatch.setattr(pipeline_inputs, "load_sequences",
                        lambda path, labels: sequences_from_arrays(**arrays, scheme=labels))
    res = CliRunner().invoke(app, ["train-head", "--cache", str(tmp_path), "--protocol", "lodo",
                                   "--arch", "mean", "--epochs", "1", "--window", "9",
                                   "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "pooled casme2" in text and "pooled samm" in text
    assert np.isfinite(float(text.split("pooled samm")[1].split()[1]))
