"""The action-unit detection task of train-head: targets, training, scores, run outputs."""

import csv
import json

import numpy as np
import pytest

from heads_synth import make_arrays, write_cache
from mer_cache.cache import open_cache
from mer_cache.errors import ConfigError, LabelError
from mer_cache.heads.au import choose_au_targets, positive_weights
from mer_cache.heads.config import HeadConfig
from mer_cache.heads.data import load_sequences, sequences_from_arrays
from mer_cache.pipelines import train_head
from mer_cache.protocol.au_metrics import au_scores, au_subject_bootstrap

SMALL = dict(proj_dims=(32, 16), hidden=16, fc=16, window=9, batch_size=16, lr=3e-3, task="au",
             balance="loss", labels="emotion", au_min_clips=5)


@pytest.fixture(scope="module")
def seqs():
    # classes code AU4+15, AU6+12, AU1+2 and none (heads_synth.RAW_AUS), in the temporal change
    return sequences_from_arrays(**make_arrays(n_subjects=6, clips_per_class=3, dim=16), scheme="emotion")


def test_au_set_is_every_au_coded_often_enough_or_the_one_asked_for(seqs):
    t = choose_au_targets(seqs, HeadConfig(**SMALL))
    assert t.names == ("AU1", "AU2", "AU4", "AU6", "AU12", "AU15")  # side and intensity dropped
    assert t.y.sum(axis=0).tolist() == [18] * 6  # 6 subjects x 3 clips of the coding class
    assert choose_au_targets(seqs, HeadConfig(**{**SMALL, "aus": ("12", "AU4")})).names == ("AU12", "AU4")
    assert choose_au_targets(seqs, HeadConfig(**{**SMALL, "aus": ("casme2",)})).names[:3] == ("AU1", "AU2", "AU4")
    with pytest.raises(LabelError, match="No action unit is coded in at least 19 of the 72 clips"):
        choose_au_targets(seqs, HeadConfig(**{**SMALL, "au_min_clips": 19}))
    bare = sequences_from_arrays(**{**make_arrays(n_subjects=2, clips_per_class=1, dim=4),
                                    "action_units": None}, scheme="smic4")
    with pytest.raises(LabelError, match="holds no action-unit annotation.*extract it again"):
        choose_au_targets(bare, HeadConfig(**SMALL))


def test_au_options_are_validated_once():
    with pytest.raises(ConfigError, match="task 'x' is unknown"):
        HeadConfig(task="x")
    with pytest.raises(ConfigError, match="balance 'windows' draws equal windows per class"):
        HeadConfig(task="au")
    with pytest.raises(ConfigError, match="side and intensity are dropped.*write AU12"):
        HeadConfig(**{**SMALL, "aus": ("R12",)})
    with pytest.raises(ConfigError, match="'nope' is neither an action unit"):
        HeadConfig(**{**SMALL, "aus": ("nope",)})


def test_positive_weights_are_negatives_over_positives():
    y = np.array([[1, 0, 0], [0, 0, 1], [0, 0, 1], [0, 0, 1]])
    assert positive_weights(y).tolist() == pytest.approx([3.0, 1.0, 1 / 3])


def test_au_head_learns_the_planted_action_units_well_above_chance(seqs):
    res = train_head(seqs, HeadConfig(**SMALL, arch="gru", folds=3, epochs=6, windows_per_clip=4))
    m = res.metrics
    # chance: each AU codes 1 clip in 4; always answering "present" scores F1 2p/(1+p) = 0.4
    assert m["pooled"]["mean_f1"] > 0.7, m["pooled"]
    assert m["task"] == "au" and m["pooled"]["n"] == len(seqs) and len(m["folds"]) == 3
    lo, hi = m["pooled_ci95"]["mean_f1"]
    assert lo <= m["pooled"]["mean_f1"] <= hi


def test_au_scores_cover_the_chosen_set_only(seqs, tmp_path):
    config = HeadConfig(**{**SMALL, "aus": ("AU12", "AU4")}, arch="mean", folds=2, epochs=1)
    res = train_head(seqs, config, out=tmp_path / "run")
    m = json.loads((tmp_path / "run/metrics.json").read_text())
    assert m["aus"] == ["AU12", "AU4"]
    assert list(m["pooled"]["f1"]) == ["AU12", "AU4"] and list(m["folds"][0]["f1"]) == ["AU12", "AU4"]
    # the other coded AUs are counted as left out of the set, not silently scored
    assert any("AUs outside the chosen set" in n and "AU15 x18" in n for n in m["notes"])
    rows = list(csv.DictReader(open(tmp_path / "run/predictions.csv")))
    assert [k for k in rows[0] if k.startswith("p_")] == ["p_AU12", "p_AU4"]
    # the pooled scores are those of the rows' own truth and predictions
    true = np.array([[n in r["true"].split("+") for n in ("AU12", "AU4")] for r in rows], np.uint8)
    pred = np.array([[float(r[f"p_{n}"]) > 0.5 for n in ("AU12", "AU4")] for r in rows], np.uint8)
    assert au_scores(true, pred, names=("AU12", "AU4"))["mean_f1"] == m["pooled"]["mean_f1"]
    assert true.sum(0).tolist() == [18, 18] and res.metrics == m


def test_early_stopping_reads_the_validation_subjects_mean_au_f1(seqs):
    res = train_head(seqs, HeadConfig(**SMALL, arch="mean", folds=3, epochs=3, val_subjects=1, patience=1))
    for rec, detail in zip(res.folds, res.metrics["fold_details"]):
        assert len(detail["val_subjects"]) == 1 and not set(detail["val_subjects"]) & set(detail["test_subjects"])
        assert len(rec["val_mean_f1_history"]) == rec["epochs_run"] and 1 <= rec["best_epoch"] <= rec["epochs_run"]


def test_lodo_reports_au_scores_per_dataset():
    a = make_arrays(n_subjects=3, clips_per_class=1, dim=8, dataset="casme2", seed=0)
    b = make_arrays(n_subjects=3, clips_per_class=1, dim=8, dataset="samm", seed=1)
    seqs = sequences_from_arrays(**{k: [*a[k], *b[k]] for k in a}, scheme="emotion")
    res = train_head(seqs, HeadConfig(**{**SMALL, "au_min_clips": 3}, arch="mean", protocol="lodo", epochs=1))
    assert set(res.metrics["per_dataset"]) == {"casme2", "samm"}
    assert res.metrics["per_dataset"]["samm"]["n"] == 12


def test_subject_bootstrap_of_mean_f1_brackets_and_resamples_subjects():
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]] * 3)
    subjects = np.repeat(["a", "b", "c"], 4)
    assert au_subject_bootstrap(y, y, subjects) == [1.0, 1.0]  # perfect on every resample
    wrong = y.copy()
    wrong[subjects == "a"] = 1 - wrong[subjects == "a"]  # one subject all wrong
    lo, hi = au_subject_bootstrap(y, wrong, subjects, seed=0)
    assert lo < au_scores(y, wrong, names=("x", "y"))["mean_f1"] < hi == 1.0


def test_cache_stores_each_clips_au_cell_and_older_caches_read_none(tmp_path):
    path = tmp_path / "c.zarr"
    arrays = write_cache(path, n_subjects=2, clips_per_class=1)
    assert [c.action_units for c in open_cache(path).clips] == arrays["action_units"]
    assert load_sequences(path, labels="smic4").action_units == tuple(arrays["action_units"])
    import zarr  # an older cache: its clip table has no action_units column

    root = zarr.open_group(str(path), mode="r+")
    attrs = dict(root.attrs["mer_cache"])
    attrs["clips"] = {k: v for k, v in attrs["clips"].items() if k != "action_units"}
    root.attrs["mer_cache"] = attrs
    assert {c.action_units for c in open_cache(path).clips} == {""}


@pytest.fixture(scope="module")
def synth_cache(tmp_path_factory):
    """`mer-cache synth --layout casme2` (its coding xlsx codes each clip's AUs) -> tiny-cnn cache."""
    from typer.testing import CliRunner

    from mer_cache.cli.app import app

    base = tmp_path_factory.mktemp("synth-au")
    for args in (["synth", "--out", base / "d", "--subjects", "3", "--clips-per-class", "1",
                  "--layout", "casme2"],
                 ["extract", "--dataset", "casme2", "--root", base / "d", "--trunk", "tiny-cnn",
                  "--weights", "random", "--out", base / "c.zarr", "--workers", "0", "--batch-size", "16"]):
        res = CliRunner().invoke(app, [str(a) for a in args])
        assert res.exit_code == 0, res.output
    return base


def test_train_head_task_au_runs_on_the_builtin_synthetic_data(synth_cache):
    from typer.testing import CliRunner

    from mer_cache.cli.app import app

    out = synth_cache / "run"
    args = ["train-head", "--task", "au", "--cache", synth_cache / "c.zarr", "--out", out, "--arch", "mean",
            "--folds", "3", "--epochs", "1", "--window", "5", "--batch-size", "8", "--au-min-clips", "3"]
    res = CliRunner().invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "AU detection" in text and "mean F1" in text and "95 % interval" in text
    truth = json.loads((synth_cache / "d/synth.json").read_text())
    coded = sorted({int(au) for c in truth["clips"] for au in c["action_units"]})
    m = json.loads((out / "metrics.json").read_text())
    assert m["task"] == "au" and m["aus"] == [f"AU{n}" for n in coded]  # 1, 2, 4, 6, 12, 15, 26
    assert m["pooled"]["support"] == {f"AU{n}": 3 for n in coded}  # one clip per subject and class
    config = json.loads((out / "config.json").read_text())["config"]
    assert (config["labels"], config["balance"]) == ("emotion", "loss")  # the AU task's defaults
    rows = list(csv.DictReader(open(out / "predictions.csv")))
    assert len(rows) == 12 and {r["au_annotation"] for r in rows} == {"1+2+26", "4+15", "6+12", ""}
    seeds = CliRunner().invoke(app, [str(a) for a in args + ["--seeds", "0,1"]])
    assert seeds.exit_code == 2 and "task 'au' is not supported" in " ".join(seeds.output.split())


def test_task_au_on_a_cache_without_aus_is_one_message(tmp_path):
    from typer.testing import CliRunner

    from mer_cache.cli.app import app

    path = tmp_path / "c.zarr"
    write_cache(path, n_subjects=3, clips_per_class=1)
    root = __import__("zarr").open_group(str(path), mode="r+")  # as a cache of SMIC (no AUs) reads
    attrs = dict(root.attrs["mer_cache"])
    attrs["clips"] = {**attrs["clips"], "action_units": [""] * len(attrs["clips"]["clip_id"])}
    root.attrs["mer_cache"] = attrs
    res = CliRunner().invoke(app, ["train-head", "--task", "au", "--cache", str(path), "--out",
                                   str(tmp_path / "r"), "--epochs", "1", "--window", "9"])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "holds no action-unit annotation" in " ".join(res.output.split())


def test_au_validation_score_reads_only_the_validation_clips():
    from mer_cache.protocol.epochs import au_validation_scorer
    from mer_cache.protocol.folds import Fold

    targets = np.array([[1, 0], [0, 1], [1, 1], [0, 0], [1, 0]])
    fold = Fold(index=0, train=np.array([0, 1]), test=np.array([2, 3]), val=np.array([4]))
    asked = []

    def predict(positions):
        asked.append(positions.tolist())
        return np.where(targets[positions] == 1, 5.0, -5.0)  # logits of a perfect head

    score = au_validation_scorer(fold, targets, names=("AU1", "AU2"), predict=predict)
    assert score() == 0.5  # AU1 right (F1 1); AU2 has no positive in val (F1 0 by zero_division)
    assert asked == [[4]]
    no_val = Fold(index=0, train=np.array([0, 1]), test=np.array([2, 3]), val=np.empty(0, np.int64))
    assert au_validation_scorer(no_val, targets, names=("AU1", "AU2"), predict=predict) is None


def test_au_run_resumes_and_refuses_another_au_set(seqs, tmp_path):
    config = HeadConfig(**SMALL, arch="mean", folds=2, epochs=1)
    first = train_head(seqs, config, out=tmp_path / "run")
    (tmp_path / "run/fold1.json").unlink()  # an interrupted run: fold 1 is trained again
    again = train_head(seqs, config, out=tmp_path / "run")
    assert again.metrics == first.metrics
    with pytest.raises(ConfigError, match="config.aus"):
        train_head(seqs, HeadConfig(**{**SMALL, "aus": ("AU4",)}, arch="mean", folds=2, epochs=1),
                   out=tmp_path / "run")
