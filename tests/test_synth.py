"""Tests of the synthetic micro-expression generator (mer_cache.synth) and `mer-cache synth`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from openpyxl import load_workbook
from PIL import Image
from typer.testing import CliRunner

from mer_cache.catalogue.clip import frame_number, list_frames
from mer_cache.catalogue.registry import load_catalogue
from mer_cache.cli import app
from mer_cache.errors import ConfigError
from mer_cache.synth import SynthConfig, generate_dataset
from mer_cache.synth.actions import ACTION_UNITS, CLASS_ACTION_UNITS, CLASSES, expression_field
from mer_cache.synth.face import CROP_PX, build_face, sample_geometry
from mer_cache.synth.layouts import CASME2_HEADER, CASME2_XLSX
from mer_cache.synth.render import plan_clip, render_clip

SMALL = dict(subjects=2, clips_per_class=1, max_frames=16)


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _frames(root: Path, clip: dict) -> np.ndarray:
    paths = list_frames(root / clip["path"])
    return np.stack([np.asarray(Image.open(p).convert("RGB"), np.float32) for p in paths])


@pytest.fixture(scope="module")
def smic_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("smic")
    generate_dataset(root, config=SynthConfig(subjects=2, clips_per_class=2))
    return root


@pytest.fixture(scope="module")
def clean_root(tmp_path_factory) -> Path:
    """No nuisances: the only change over time is the expression."""
    root = tmp_path_factory.mktemp("clean")
    generate_dataset(root, config=SynthConfig(subjects=2, clips_per_class=1, nuisances=False))
    return root


def _manifest(root: Path) -> dict:
    return json.loads((root / "synth.json").read_text())


@pytest.mark.parametrize("layout", ["smic", "casme2"])
def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, layout):
    a = generate_dataset(tmp_path / "a", config=SynthConfig(**SMALL, layout=layout))
    b = generate_dataset(tmp_path / "b", config=SynthConfig(**SMALL, layout=layout))
    c = generate_dataset(tmp_path / "c", config=SynthConfig(**SMALL, layout=layout, seed=1))
    ha, hb, hc = _hashes(a.root), _hashes(b.root), _hashes(c.root)
    assert ha == hb  # names and bytes, the xlsx included
    assert len(ha) > 8 * 11
    shared = set(ha) & set(hc)
    assert all(ha[k] != hc[k] for k in shared if not k.endswith(".xlsx"))
    assert ha != hc


def test_ground_truth_is_consistent(smic_root):
    m = _manifest(smic_root)
    assert m["version"] and m["config"]["seed"] == 0 and m["fps"] == 100.0
    assert len(m["clips"]) == 2 * 2 * 4
    for clip in m["clips"]:
        n = clip["n_frames"]
        assert 11 <= n <= 50
        frames = list_frames(smic_root / clip["path"])
        assert len(frames) == n
        numbers = [frame_number(p) for p in frames]
        assert numbers == list(range(numbers[0], numbers[0] + n))
        assert frames[0].name == clip["first_frame"] and frames[-1].name == clip["last_frame"]
        assert clip["action_units"] == list(CLASS_ACTION_UNITS[clip["class"]])
        if clip["class"] == "non_micro":
            assert clip["onset"] is None and clip["au_regions"] == {}
            continue
        assert 0 <= clip["onset"] < clip["apex"] < clip["offset"] <= n - 1
        for key in ("onset", "apex", "offset"):
            assert clip[f"{key}_frame"] == numbers[clip[key]]
        assert clip["amplitude_px"] >= 1.5 and clip["amplitude_px"] <= 3.0
        assert set(clip["au_regions"]) == set(clip["action_units"])
        for x0, y0, x1, y1 in clip["au_regions"].values():
            assert 0 <= x0 < x1 <= CROP_PX and 0 <= y0 < y1 <= CROP_PX


def test_classes_are_balanced_per_subject(smic_root):
    clips = _manifest(smic_root)["clips"]
    for subject in {c["subject"] for c in clips}:
        counts = [sum(c["subject"] == subject and c["class"] == k for c in clips) for k in CLASSES]
        assert counts == [2, 2, 2, 2]


def test_smic_layout_paths(smic_root):
    assert sorted(p.name for p in (smic_root / "HS").iterdir()) == ["s1", "s2"]
    for clip in _manifest(smic_root)["clips"]:
        sid, name = clip["subject"], clip["clip_id"].split("/")[-1]
        assert clip["clip_id"] == f"smic/{sid}/{name}"
        group = "non_micro" if clip["class"] == "non_micro" else f"micro/{clip['class']}"
        assert clip["path"] == f"HS/{sid}/{group}/{name}"
        assert clip["label"] == clip["class"]
        code = {"negative": "ne", "positive": "po", "surprise": "sur", "non_micro": "no"}
        assert name.startswith(f"{sid}_{code[clip['class']]}_")
        first = smic_root / clip["path"] / clip["first_frame"]
        assert first.suffix == ".bmp" and len(first.stem) == len("image") + 6
        with Image.open(first) as img:
            assert img.size == (CROP_PX, CROP_PX) and img.mode == "RGB"


def test_casme2_layout_and_workbook(tmp_path):
    s = generate_dataset(tmp_path, config=SynthConfig(**SMALL, layout="casme2"))
    m = _manifest(s.root)
    rows = list(load_workbook(tmp_path / CASME2_XLSX)["Sheet1"].iter_rows(values_only=True))
    assert rows[0] == CASME2_HEADER
    by_key = {(r[0], r[1]): r for r in rows[1:]}
    assert len(by_key) == len(m["clips"]) == 8
    words = {"negative": {"disgust", "repression"}, "positive": {"happiness"},
             "surprise": {"surprise"}, "non_micro": {"others"}}
    for clip in m["clips"]:
        sub, name = clip["clip_id"].split("/")[1:]
        assert clip["path"] == f"CASME2_RAW_selected/{sub}/{name}" and sub == clip["subject"]
        row = by_key[(clip["annotation_subject"], name)]
        assert isinstance(row[0], str) and len(row[0]) == 2
        assert row[8] == clip["label"] and row[8] in words[clip["class"]]
        assert isinstance(row[9], int)
        assert clip["first_frame"].startswith("img") and clip["first_frame"].endswith(".jpg")
        if clip["class"] != "non_micro":
            assert row[3:6] == (clip["onset_frame"], clip["apex_frame"], clip["offset_frame"])
            assert row[7] == clip["au_string"] == "+".join(CLASS_ACTION_UNITS[clip["class"]])


def test_micro_clips_start_and_end_neutral_except_nuisances():
    rng = np.random.default_rng(5)
    face = build_face(sample_geometry(rng), rng)
    for label in ("negative", "positive", "surprise"):
        plan = plan_clip(np.random.default_rng(7), label, min_frames=11, max_frames=50,
                         amplitude_px=(1.5, 3.0), blink_prob=1.0, nuisances=True, fps=100.0)
        moving = render_clip(face, plan).astype(np.float32)
        still = render_clip(face, plan, expression=False).astype(np.float32)
        diff = np.abs(moving - still).reshape(plan.n_frames, -1).max(axis=1)
        # same nuisances and noise: identical up to onset and from offset on
        assert (diff[: plan.onset + 1] == 0).all() and (diff[plan.offset:] == 0).all()
        assert diff[plan.apex] > 20


def test_clean_clips_first_and_last_frames_equal_on_disk(clean_root):
    for clip in _manifest(clean_root)["clips"]:
        frames = _frames(clean_root, clip)
        assert np.abs(frames[0] - frames[-1]).max() <= 1  # JPEG-free BMP, same neutral face


def test_apex_change_lies_inside_au_regions(clean_root):
    for clip in _manifest(clean_root)["clips"]:
        frames = _frames(clean_root, clip)
        if clip["class"] == "non_micro":
            assert np.abs(frames - frames[0]).max() <= 1
            continue
        change = np.abs(frames[clip["apex"]] - frames[clip["onset"]]).sum(axis=2)
        inside = np.zeros(change.shape, bool)
        for x0, y0, x1, y1 in clip["au_regions"].values():
            inside[y0:y1, x0:x1] = True
        assert change.sum() > 500  # the expression is visible
        assert change[inside].sum() / change.sum() > 0.9
        assert inside.mean() < 0.6  # and the regions are local


def test_displacement_never_exceeds_amplitude():
    for i in range(6):
        g = sample_geometry(np.random.default_rng(i))
        for label in ("negative", "positive", "surprise"):
            weights = {au: 1.0 for au in CLASS_ACTION_UNITS[label]}
            disp, fold, _ = expression_field(g, weights, amplitude_px=3.0, side_gain=(0.8, 1.0))
            peak = np.hypot(disp[0], disp[1]).max()
            assert 2.99 < peak <= 3.0 + 1e-4
            assert fold.max() < 0.2


def test_subjects_differ_more_than_expressions_move(clean_root):
    landmarks = [sample_geometry(np.random.default_rng([3, i])).landmarks() for i in range(24)]
    spreads = []
    for name in landmarks[0]:
        pts = np.array([lm[name] for lm in landmarks])
        spreads.append(np.sqrt(((pts - pts.mean(0)) ** 2).sum(1).mean()))
    assert min(spreads) > 3.0  # every landmark varies more than the 3 px apex bound
    # the same holds for pixels: two subjects' neutral frames vs one clip's onset -> apex
    clips = _manifest(clean_root)["clips"]
    by_subject = {}
    for clip in clips:
        by_subject.setdefault(clip["subject"], []).append(clip)
    s1, s2 = sorted(by_subject)
    a, b = _frames(clean_root, by_subject[s1][0])[0], _frames(clean_root, by_subject[s2][0])[0]
    between = np.abs(a - b).mean()
    within = max(np.abs(f[c["apex"]] - f[c["onset"]]).mean()
                 for c in clips if c["onset"] is not None for f in [_frames(clean_root, c)])
    assert between > 5 * within


def test_config_is_validated():
    with pytest.raises(ConfigError, match="layout"):
        SynthConfig(layout="samm")
    with pytest.raises(ConfigError, match="3.0"):
        SynthConfig(amplitude_px=(1.0, 5.0))
    with pytest.raises(ConfigError, match="subjects"):
        SynthConfig(subjects=0)


def test_out_folder_rules(tmp_path):
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="synth.json"):
        generate_dataset(tmp_path / "foreign", config=SynthConfig(**SMALL))
    first = generate_dataset(tmp_path / "d", config=SynthConfig(**SMALL))
    again = generate_dataset(tmp_path / "d", config=SynthConfig(**SMALL))
    assert again.reused and not first.reused
    with pytest.raises(ConfigError, match="--overwrite"):
        generate_dataset(tmp_path / "d", config=SynthConfig(**{**SMALL, "subjects": 1}))
    replaced = generate_dataset(tmp_path / "d", config=SynthConfig(**{**SMALL, "subjects": 1}),
                                overwrite=True)
    assert replaced.n_subjects == 1 and not (tmp_path / "d" / "HS" / "s2").exists()


def test_cli_writes_dataset_and_contact_sheet(tmp_path):
    out, png = tmp_path / "synth", tmp_path / "sheet.png"
    result = CliRunner().invoke(app, ["synth", "--out", str(out), "--subjects", "1",
                                      "--clips-per-class", "1", "--seed", "2",
                                      "--contact-sheet", str(png)])
    assert result.exit_code == 0, result.output
    assert "clips" in result.output and "ground truth" in result.output
    assert (out / "synth.json").is_file() and (out / "HS" / "s1" / "non_micro").is_dir()
    with Image.open(png) as img:
        assert img.size[0] > 300
    bad = CliRunner().invoke(app, ["synth", "--out", str(out), "--layout", "samm"])
    assert bad.exit_code == 2 and "samm" in bad.output


def test_action_unit_table_covers_every_class():
    used = {au for aus in CLASS_ACTION_UNITS.values() for au in aus}
    assert used == set(ACTION_UNITS)


@pytest.mark.parametrize("layout", ["smic", "casme2"])
def test_real_loaders_read_the_synthetic_layouts(tmp_path, layout):
    generate_dataset(tmp_path, config=SynthConfig(**SMALL, layout=layout))
    truth = {c["clip_id"]: c for c in _manifest(tmp_path)["clips"]}
    clips = load_catalogue(layout, tmp_path)
    assert sorted(c.clip_id for c in clips) == sorted(truth)
    for clip in clips:
        gt = truth[clip.clip_id]
        assert clip.label == gt["label"] and clip.subject == gt["subject"]
        assert [p.name for p in clip.frames] == [p.name for p in list_frames(tmp_path / gt["path"])]
        if gt["onset"] is not None:
            assert frame_number(clip.frames[gt["apex"]]) == gt["apex_frame"]
        if layout == "smic":
            assert clip.onset is None  # SMIC-HS folders carry no onset/apex/offset
        elif gt["onset"] is not None:
            assert (clip.onset, clip.apex, clip.offset) == (gt["onset"], gt["apex"], gt["offset"])
        else:  # non_micro rows carry the nominal whole-clip window
            assert (clip.onset, clip.offset) == (0, gt["n_frames"] - 1)


def test_contact_sheet_without_matplotlib(clean_root, tmp_path, monkeypatch):
    import sys

    from mer_cache.synth.contact_sheet import write_contact_sheet

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import now raises ImportError
    png = write_contact_sheet(clean_root, tmp_path / "sheet.png", n_clips=4)
    with Image.open(png) as img:
        assert img.size[1] > 4 * 128
