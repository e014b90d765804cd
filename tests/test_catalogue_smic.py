"""SMIC loader: raw and cropped layouts, modalities, non-micro clips, label folders."""

from __future__ import annotations

import pytest

from catalogue_trees import make_smic, write_frames
from mer_cache.catalogue import load_catalogue
from mer_cache.errors import ConfigError, DatasetError, LabelError


def test_raw_layout_hs(tmp_path):
    make_smic(tmp_path)
    clips = load_catalogue("smic", tmp_path)
    assert [c.clip_id for c in clips] == ["smic/s1/s1_ne_01", "smic/s1/s1_po_01", "smic/s1/s1_no_01",
                                          "smic/s2/s2_sur_01"]
    assert [c.label for c in clips] == ["negative", "positive", "non_micro", "surprise"]
    assert all(c.fps == 100.0 and c.n_frames == 3 and c.dataset == "smic" for c in clips)
    assert clips[0].onset is None  # SMIC clips carry no onset/apex annotation
    assert len(load_catalogue("smic", tmp_path, include_non_micro=False)) == 3


@pytest.mark.parametrize("wrapper,root_sub", [("SMIC_all_cropped", ""), ("SMIC_all_cropped", "SMIC_all_cropped"),
                                             (None, "HS")])
def test_cropped_layout_and_root_variants(tmp_path, wrapper, root_sub):
    make_smic(tmp_path, wrapper=wrapper)
    clips = load_catalogue("smic", tmp_path / root_sub if root_sub else tmp_path)
    assert len(clips) == 4


def test_vis_modality_fps_and_ids(tmp_path):
    make_smic(tmp_path, modality="VIS")
    clips = load_catalogue("smic", tmp_path, modality="VIS")
    assert clips[0].fps == 25.0 and clips[0].clip_id == "smic/s1/s1_ne_01_vis"
    with pytest.raises(DatasetError, match="No SMIC HS subject folders"):
        load_catalogue("smic", tmp_path)  # only VIS present
    with pytest.raises(ConfigError, match="modality"):
        load_catalogue("smic", tmp_path, modality="RGB")


def test_natural_frame_order(tmp_path):
    make_smic(tmp_path, clips={"s1": [("negative", "s1_ne_01")]})
    folder = tmp_path / "HS/s1/micro/negative/s1_ne_01"
    for f in folder.iterdir():
        f.unlink()
    write_frames(folder, ["img10.bmp", "img2.bmp", "img1.bmp", ".hidden.bmp"])
    (folder / "notes.txt").write_text("not a frame")
    clip = load_catalogue("smic", tmp_path)[0]
    assert [p.name for p in clip.frames] == ["img1.bmp", "img2.bmp", "img10.bmp"]


def test_unknown_label_folder(tmp_path):
    make_smic(tmp_path, clips={"s1": [("negative", "s1_ne_01"), ("happy", "s1_ha_01")]})
    with pytest.raises(LabelError) as err:
        load_catalogue("smic", tmp_path)
    assert "'happy'" in str(err.value) and "micro/happy" in str(err.value)


def test_empty_and_wrong_root(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="is empty"):
        load_catalogue("smic", tmp_path / "empty")
    with pytest.raises(DatasetError, match="does not exist"):
        load_catalogue("smic", tmp_path / "nowhere")
    write_frames(tmp_path / "wrong/photos", ["a.jpg"])
    with pytest.raises(DatasetError) as err:
        load_catalogue("smic", tmp_path / "wrong")
    assert "HS/s1/micro/negative/s1_ne_01" in str(err.value)


def test_unknown_dataset_and_option(tmp_path):
    with pytest.raises(DatasetError, match="Known datasets: smic, casme2"):
        load_catalogue("casme9", tmp_path)
    make_smic(tmp_path)
    with pytest.raises(ConfigError, match="no option modalty"):
        load_catalogue("smic", tmp_path, modalty="HS")
