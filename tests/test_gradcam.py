"""Grad-CAM: maps peak on a planted signal, hooks are released, layer names are checked, figures."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from typer.testing import CliRunner

from conftest import make_clips
from mer_cache.errors import TrunkError
from mer_cache.gradcam import (
    ClassLogitTarget, EmbeddingNormTarget, GradCAM, RegionSource, focus_score, resolve_regions,
    run_gradcam, suggest_layer,
)
from mer_cache.gradcam.focus import region_mask
from mer_cache.trunks import create_trunk
from mer_cache.trunks.base import Trunk
from mer_cache.trunks.spec import Preprocessing, TrunkSpec

PRE = Preprocessing((32, 32), "rgb", (0.0,) * 3, (255.0,) * 3)




class ColourNet(nn.Module):
    """Channel 0 sees red, channel 1 sees green; the embedding is their spatial mean."""

    def __init__(self) -> None:
        super().__init__()
        self.layer1 = nn.Sequential(nn.Conv2d(3, 2, 1, bias=False), nn.ReLU())
        self.layer2 = nn.Sequential(nn.Conv2d(2, 2, 3, padding=1, bias=False), nn.ReLU())
        with torch.no_grad():
            self.layer1[0].weight.copy_(torch.tensor([[1.0, -1, 0], [-1, 1, 0]]).view(2, 3, 1, 1))
            self.layer2[0].weight.zero_()
            self.layer2[0].weight[0, 0, 1, 1] = self.layer2[0].weight[1, 1, 1, 1] = 1.0

    def forward_features(self, x, layer):
        return self.layer2(self.layer1(x)).mean(dim=(2, 3))  # (B, 2)

    def cam_modules(self):
        return {"layer1": self.layer1, "layer2": self.layer2}


def colour_trunk() -> Trunk:
    spec = TrunkSpec("colour", "test net", PRE, {"pool": 2}, "pool", ("layer1", "layer2"))
    return Trunk(spec, ColourNet(), preprocessing=PRE).eval()


RED, GREEN = (4, 4, 12, 12), (18, 18, 28, 28)  # x0, y0, x1, y1


def two_squares() -> torch.Tensor:
    img = torch.zeros(1, 3, 32, 32, dtype=torch.uint8)
    img[0, 0, RED[1]:RED[3], RED[0]:RED[2]] = 255
    img[0, 1, GREEN[1]:GREEN[3], GREEN[0]:GREEN[2]] = 255
    return img


def box_mask(box) -> np.ndarray:
    m = np.zeros((32, 32), bool)
    m[box[1]:box[3], box[0]:box[2]] = True
    return m


@pytest.mark.parametrize("channel, inside, outside", [(0, RED, GREEN), (1, GREEN, RED)])
def test_cam_peaks_where_the_planted_signal_is(channel, inside, outside):
    trunk = colour_trunk()
    classifier = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        classifier.weight.copy_(torch.eye(2))
    with GradCAM(trunk, ["layer1", "layer2"]) as cam:
        maps = cam(two_squares(), ClassLogitTarget(classifier, class_index=channel))
    for name in ("layer1", "layer2"):
        m = maps[name][0].numpy()  # (32, 32)
        assert m.shape == (32, 32)
        y, x = np.unravel_index(np.argmax(m), m.shape)
        assert inside[1] <= y < inside[3] and inside[0] <= x < inside[2]
        assert focus_score(m, box_mask(inside)) > 0.9
        assert focus_score(m, box_mask(outside)) < 0.05


def test_hooks_are_released_after_the_with_block():
    trunk = create_trunk("tiny-cnn", weights="random")
    modules = trunk.cam_modules()
    cam = GradCAM(trunk, ["layer2", "layer4"])
    with cam:
        assert len(modules["layer2"]._forward_hooks) == 1
        maps = cam(torch.randint(0, 255, (2, 3, 64, 64), dtype=torch.uint8), EmbeddingNormTarget())
    assert maps["layer4"].shape == (2, 64, 64) and (maps["layer4"] >= 0).all()
    assert all(not m._forward_hooks and not m._backward_hooks for m in modules.values())
    assert not cam._handles and not cam._grad_handles
    assert all(p.grad is None for p in trunk.parameters())  # no parameter gradients touched
    with pytest.raises(RuntimeError, match="with"):
        cam(torch.zeros(1, 3, 64, 64, dtype=torch.uint8), EmbeddingNormTarget())


def test_unknown_layer_lists_the_valid_names():
    trunk = create_trunk("tiny-cnn", weights="random")
    with pytest.raises(TrunkError, match="layer1, layer2, layer3, layer4") as err:
        GradCAM(trunk, ["layer2", "conv5"])
    assert "conv5" in str(err.value)


def moving_clips(root):
    """Clips whose apex frame differs from the onset inside one known box."""
    clips = make_clips(root, [6] * 8, subjects=4)
    for c in clips:
        apex = np.asarray(Image.open(c.frames[c.apex])).copy()
        apex[4:10, 12:20] = 255  # rows 4..10, columns 12..20 of the 24-px frame
        Image.fromarray(apex).save(c.frames[c.apex])
    return clips


def test_diff_regions_find_the_moving_patch(tmp_path):
    clips = moving_clips(tmp_path / "f")
    pre = create_trunk("tiny-cnn", weights="random").preprocessing
    from mer_cache.frames import load_frame

    c = clips[0]
    mask = region_mask(c, RegionSource("diff"), pre, onset_frame=load_frame(c.frames[0], pre),
                       apex_frame=load_frame(c.frames[c.apex], pre))
    ys, xs = np.nonzero(mask)  # 24 -> 64 px: the patch is rows ~11..27, columns ~32..53
    assert 8 <= ys.mean() <= 30 and 28 <= xs.mean() <= 56


def test_synth_boxes_are_scaled_to_the_input(tmp_path):
    clips = moving_clips(tmp_path / "f")
    manifest = {"clips": [{"clip_id": c.clip_id, "au_regions": {"12": [12, 4, 20, 10]},
                           "onset": 0, "apex": c.apex} for c in clips]}
    (tmp_path / "f" / "synth.json").write_text(json.dumps(manifest))
    source = resolve_regions("auto", tmp_path / "f")
    assert source.kind == "synth"
    trunk = create_trunk("tiny-cnn", weights="random")
    from mer_cache.frames import load_frame

    frame = load_frame(clips[0].frames[0], trunk.preprocessing)
    mask = region_mask(clips[0], source, trunk.preprocessing, onset_frame=frame, apex_frame=frame)
    ys, xs = np.nonzero(mask)
    scale = 64 / 24
    assert xs.min() == round(12 * scale) and xs.max() == round(20 * scale) - 1
    assert ys.min() == round(4 * scale) and ys.max() + 1 == pytest.approx(10 * scale, abs=1)


def test_suggest_layer_ranks_every_layer_and_is_seeded(tmp_path):
    clips = moving_clips(tmp_path / "f")
    trunk = create_trunk("tiny-cnn", weights="random")
    a = suggest_layer(clips, trunk=trunk, n_clips=4, seed=1)
    b = suggest_layer(clips, trunk=trunk, n_clips=4, seed=1)
    assert [r["layer"] for r in a] == [r["layer"] for r in b]
    assert sorted(r["layer"] for r in a) == ["layer1", "layer2", "layer3", "layer4"]
    assert a[0]["focus"] >= a[-1]["focus"] and a[0]["n_clips"] == 4


def test_figures_before_and_after_finetuning(tmp_path):
    from mer_cache.finetune import FinetuneConfig
    from mer_cache.pipelines import finetune, run_gradcam

    clips = moving_clips(tmp_path / "f")
    run = finetune(clips, config=FinetuneConfig(trunk="tiny-cnn", weights="random",
                                                from_layer="layer3", folds=2, epochs=1,
                                                batch_size=8, fc_dims=(8,), workers=0),
                   out=tmp_path / "run")
    trunk = create_trunk("tiny-cnn", weights="random")
    report = run_gradcam(clips, trunk=trunk, out=tmp_path / "cam", layers=["layer3", "layer4"],
                         n_clips=3, checkpoint=run.out / "fold0.pt")
    assert len(report.pngs) == 1
    with Image.open(report.pngs[0]) as img:
        assert img.width == (1 + 2 * 2) * 128  # frame + 2 layers before + 2 layers after
    saved = json.loads((tmp_path / "cam" / "focus.json").read_text())
    assert {r["layer"] for r in saved["ranking_after"]} == {"layer3", "layer4"}
    assert "classifier" in saved["targets"]["after"]
    assert len(saved["clips"]) == 3


def test_cli_gradcam_suggests_a_layer_and_names_valid_layers(tmp_path):
    from mer_cache.cli.app import app

    moving_clips(tmp_path / "data")
    args = ["gradcam", "--dataset", "folder", "--root", str(tmp_path / "data"), "--trunk",
            "tiny-cnn", "--weights", "random", "--clips", "2", "--out", str(tmp_path / "cam")]
    res = CliRunner().invoke(app, [*args, "--suggest-layer"])
    assert res.exit_code == 0, res.output
    assert "Suggested l_s" in res.output
    bad = CliRunner().invoke(app, [*args, "--layers", "layer2,pool9"])
    assert bad.exit_code == 2 and "layer1, layer2, layer3, layer4" in bad.output


def test_video_clips_are_refused_with_what_to_do(tmp_path):
    """Grad-CAM reads frame files: video clips used to be skipped silently, ending in "no
    clip has a moving region"."""
    from mer_cache.catalogue.clip import Clip
    from mer_cache.errors import DatasetError
    from mer_cache.gradcam.focus import RegionSource
    from mer_cache.gradcam.suggest import pick_clips

    clips = [Clip(dataset="video", subject="s1", clip_id=f"video/s1/c{k}", label="x", frames=(),
                  fps=30.0, video=tmp_path / f"c{k}.mp4") for k in range(2)]
    with pytest.raises(DatasetError, match="video files.*--dataset folder"):
        pick_clips(clips, RegionSource("diff"), n_clips=2, seed=0)
