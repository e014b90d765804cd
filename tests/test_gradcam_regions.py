"""Moving regions: the library's default resolves from the clips as the CLI's does, and a
fine-tuning run keeps one kind of regions for all its folds."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from conftest import make_clips
from mer_cache.catalogue import load_catalogue
from mer_cache.cli.app import app
from mer_cache.errors import ConfigError, DatasetError
from mer_cache.finetune import FinetuneConfig
from mer_cache.gradcam import run_gradcam as draw
from mer_cache.gradcam import suggest_layer
from mer_cache.pipelines import finetune, regions_for_clips, run_gradcam
from mer_cache.synth import SynthConfig, generate_dataset
from mer_cache.trunks import create_trunk

# Exp-I on 8 synthetic clips of 2 subjects; everything else as the CLI's defaults
AUTO = FinetuneConfig(trunk="tiny-cnn", weights="random", from_layer="auto", folds=2, epochs=1,
                      batch_size=8, workers=0)


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("syn") / "data"
    generate_dataset(root, config=SynthConfig(subjects=2, clips_per_class=1, max_frames=14))
    return root


def _flat(text: str) -> str:
    return " ".join(text.split())  # rich wraps long lines


def test_default_regions_are_synths_ground_truth_on_synthetic_data(synth_root, tmp_path):
    clips = load_catalogue("smic", synth_root)
    assert regions_for_clips("auto", clips).kind == "synth"
    assert regions_for_clips(None, clips).kind == "synth"
    assert regions_for_clips("diff", clips).kind == "diff"
    # the mechanisms under the job API default to the same
    trunk = create_trunk("tiny-cnn", weights="random")
    assert draw(clips, trunk=trunk, out=tmp_path / "cam", layers=["layer4"]).regions == "synth"
    scores = {r: suggest_layer(clips, trunk=trunk, regions=r, layers=["layer3", "layer4"])
              for r in ("auto", "synth", "diff")}
    assert scores["auto"] == scores["synth"] != scores["diff"]


def test_default_regions_are_frame_differences_elsewhere(tmp_path):
    clips = make_clips(tmp_path / "f", [6] * 4, subjects=2)
    assert regions_for_clips("auto", clips).kind == "diff"
    report = run_gradcam(clips, trunk=create_trunk("tiny-cnn", weights="random"),
                         out=tmp_path / "cam", layers=["layer4"], n_clips=2)
    assert report.regions == "diff"
    with pytest.raises(DatasetError, match="synth.json"):
        regions_for_clips("synth", clips)


def test_cli_and_library_choose_the_same_clips_scores_and_layer(synth_root, tmp_path):
    res = CliRunner().invoke(app, [
        "gradcam", "-d", "smic", "-r", str(synth_root), "--trunk", "tiny-cnn", "--weights",
        "random", "--suggest-layer", "--out", str(tmp_path / "cli")])
    assert res.exit_code == 0, res.output
    assert "regions: synth" in _flat(res.output)
    report = run_gradcam(load_catalogue("smic", synth_root),
                         trunk=create_trunk("tiny-cnn", weights="random"), out=tmp_path / "lib")
    assert report.regions == "synth"
    cli = json.loads((tmp_path / "cli" / "focus.json").read_text())
    lib = json.loads((tmp_path / "lib" / "focus.json").read_text())
    for key in ("regions", "clips", "ranking"):
        assert cli[key] == lib[key], key


def test_a_finetune_run_keeps_its_regions(synth_root, tmp_path):
    clips = load_catalogue("smic", synth_root)
    run = finetune(clips, config=AUTO, out=tmp_path / "run")
    assert run.regions == "synth"
    assert json.loads((run.out / "run.json").read_text())["regions"]["kind"] == "synth"
    assert finetune(clips, config=AUTO, out=run.out).skipped == [0, 1]
    with pytest.raises(ConfigError) as err:
        finetune(clips, config=AUTO, out=run.out, regions="diff")
    message = str(err.value)
    assert "synth regions and this run on diff regions" in message
    assert "--regions synth" in message and "config." not in message
    # the CLI passes --regions through to the same check
    res = CliRunner().invoke(app, [
        "finetune", "-d", "smic", "-r", str(synth_root), "--trunk", "tiny-cnn", "--weights",
        "random", "--from-layer", "auto", "--folds", "2", "--epochs", "1", "--batch-size", "8",
        "--regions", "diff", "--out", str(run.out)])
    assert res.exit_code == 2 and "--regions synth to resume it" in _flat(res.output)
