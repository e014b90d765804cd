"""vggface2-resnet50 / vggface2-senet50: architecture, every weight format, preprocessing.

Synthetic weight files carry the releases' exact names and shapes (tests/vggface2_synthetic.py)
with random values; features from one format are compared with the same weights read
another way, with torchvision's v1.5 ResNet-50, and with the Keras reference network.
"""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch
import torchvision

from mer_cache.errors import TrunkError, UnsafePickleError, WeightsError
from mer_cache.trunks import create_trunk, get_spec
from mer_cache.trunks.checkpoints import save_checkpoint
from mer_cache.trunks.resnet_caffe import CaffeResNet50
from mer_cache.trunks.senet import SEBottleneck
from mer_cache.trunks.weights import sha256_file
from vggface2_synthetic import (keras_layers, pkl_shapes, random_arrays, write_caffe_pth,
                                write_keras_h5, write_pkl)

BGR_MEAN = (91.4953, 103.8827, 131.0912)


@pytest.fixture(scope="module")
def arrays() -> dict[str, np.ndarray]:
    return random_arrays(pkl_shapes(), seed=0)


@pytest.fixture(scope="module")
def wdir(tmp_path_factory):
    return tmp_path_factory.mktemp("weights")


@pytest.fixture(scope="module")
def pkl_path(wdir, arrays):
    return write_pkl(wdir / "resnet50_ft_weight.pkl", arrays)


@pytest.fixture(scope="module")
def pkl_trunk(pkl_path):
    # weights=None reads the default file from the weights directory.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MER_CACHE_WEIGHTS", str(pkl_path.parent))
        return create_trunk("vggface2-resnet50")


@pytest.fixture(scope="module")
def pth_trunk(wdir, arrays):
    return create_trunk("vggface2-resnet50",
                        weights=write_caffe_pth(wdir / "resnet50_ft_dag.pth", arrays))


@pytest.fixture(scope="module")
def h5_trunk(wdir, arrays):
    path = write_keras_h5(wdir / "rcmalli_vggface_tf_resnet50.h5", arrays)
    return create_trunk("vggface2-resnet50", weights=path, layer="logits")


@pytest.fixture(scope="module")
def image() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (1, 3, 224, 224), dtype=torch.uint8, generator=g)


def features(trunk, image: torch.Tensor, layer: str | None = None) -> torch.Tensor:
    """The trunk's embedding of uint8 RGB ``image`` at ``layer`` (default: its own)."""
    with torch.no_grad():
        return trunk.net.forward_features(trunk.normalize(image), layer or trunk.layer)


def assert_close(a: torch.Tensor, b: torch.Tensor) -> None:
    scale = float(b.abs().max())
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * scale)


def state_keys(net) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in net.state_dict().items()
            if not k.endswith("num_batches_tracked")}


# ---- architecture --------------------------------------------------------------------------

def test_resnet_has_exactly_the_pkl_keys_and_shapes():
    assert len(pkl_shapes()) == 267
    assert state_keys(CaffeResNet50(variant="keras")) == pkl_shapes()


def test_senet_has_exactly_the_senet_pkl_keys_and_shapes():
    net = CaffeResNet50(block=SEBottleneck)
    assert state_keys(net) == pkl_shapes(se=True)
    assert net.layer1[0].conv4.weight.shape == (16, 256, 1, 1)  # C -> C/16
    assert net.layer4[2].conv5.bias.shape == (2048,)


def test_stride_sits_on_the_first_1x1_conv(pkl_trunk, h5_trunk):
    net = pkl_trunk.net
    for i in (2, 3, 4):
        block = getattr(net, f"layer{i}")[0]
        assert block.conv1.stride == (2, 2) and block.conv2.stride == (1, 1)
    assert all(m.bias is None for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    assert all(m.eps == 1e-5 for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert all(m.eps == 1e-3 for m in h5_trunk.net.modules()
               if isinstance(m, torch.nn.BatchNorm2d))


@pytest.mark.parametrize(("fixture", "stem_size"), [("pkl_trunk", 56), ("h5_trunk", 55)])
def test_spatial_sizes(request, fixture, stem_size):
    net = request.getfixturevalue(fixture).net
    sizes = {}
    hooks = [m.register_forward_hook(lambda _m, _i, out, name=name: sizes.__setitem__(
        name, tuple(out.shape[1:]))) for name, m in net.cam_modules().items()]
    x = torch.zeros(1, 3, 224, 224)
    with torch.no_grad():
        assert net.stem(x).shape == (1, 64, stem_size, stem_size)
        assert net.forward_features(x, "pool5").shape == (1, 2048)
    for h in hooks:
        h.remove()
    assert sizes == {"layer1": (256, stem_size, stem_size), "layer2": (512, 28, 28),
                     "layer3": (1024, 14, 14), "layer4": (2048, 7, 7)}


def test_spec_describes_layers_files_and_preprocessing():
    spec = get_spec("vggface2-resnet50")
    assert spec.layers == {"pool5": 2048, "layer3": 1024, "logits": 8631}
    assert spec.default_layer == "pool5"
    assert spec.preprocessing.channels == "bgr" and spec.preprocessing.mean == BGR_MEAN
    assert {w.filename for w in spec.weight_files} == {
        "resnet50_ft_weight.pkl", "resnet50_scratch_weight.pkl", "resnet50_ft_dag.pth",
        "rcmalli_vggface_tf_resnet50.h5", "rcmalli_vggface_tf_notop_resnet50.h5"}
    assert all(w.how_to_get and w.sha256 is None for w in spec.weight_files)
    assert [w.filename for w in get_spec("vggface2-senet50").weight_files] == [
        "senet50_ft_weight.pkl"]


# ---- random weights ------------------------------------------------------------------------

def test_random_weights_are_seeded_and_leave_the_global_rng_alone():
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a = create_trunk("vggface2-resnet50", weights="random")
    assert torch.equal(torch.rand(1), expected_next)
    b = create_trunk("vggface2-resnet50", weights="random")
    x = torch.randint(0, 256, (2, 3, 224, 224), dtype=torch.uint8)
    with torch.no_grad():
        fa, fb = a(x), b(x)
    assert fa.shape == (2, 2048) and torch.isfinite(fa).all()
    assert torch.equal(fa, fb)
    assert a.weights_format == "random" and a.weights_sha256 == b.weights_sha256


# ---- the .pkl and the official Caffe-named .pth ---------------------------------------------

def test_pkl_loads_with_bgr_preprocessing(pkl_trunk, pkl_path, arrays, image):
    trunk = pkl_trunk
    assert trunk.weights_format == "pkl"
    assert trunk.weights_sha256 == sha256_file(pkl_path)
    assert trunk.preprocessing.channels == "bgr" and trunk.preprocessing.mean == BGR_MEAN
    assert trunk.preprocessing.std == (1.0, 1.0, 1.0)
    np.testing.assert_array_equal(trunk.net.layer3[4].conv2.weight.detach().numpy(),
                                  arrays["layer3.4.conv2.weight"])
    # Compare with a forward written out here: BGR flip, mean subtraction, no std.
    x = image.float().flip(1) - torch.tensor(BGR_MEAN).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = trunk.net.forward_features(x, "pool5")
        got = trunk(image)
    assert_close(got, expected)
    assert features(trunk, image, "layer3").shape == (1, 1024)


def test_caffe_pth_gives_the_same_features_as_the_pkl(pkl_trunk, pth_trunk, image):
    from_pth = pth_trunk
    assert from_pth.weights_format == "pth-caffe"
    assert from_pth.preprocessing.channels == "rgb"
    assert from_pth.preprocessing.mean == tuple(reversed(BGR_MEAN))
    # RGB input + RGB-ordered first conv == BGR input + BGR-ordered first conv.
    assert_close(features(from_pth, image, "logits"), features(pkl_trunk, image, "logits"))


def test_torchvision_resnet50_gives_different_features_from_the_same_pkl(pkl_trunk, pkl_path,
                                                                        image):
    ours = pkl_trunk
    tv = torchvision.models.resnet50(num_classes=8631).eval()
    state = {k: torch.from_numpy(v) for k, v in
             pickle.loads(pkl_path.read_bytes(), encoding="latin1").items()}
    result = tv.load_state_dict(state, strict=False)  # the silent trap: same key names
    assert not result.unexpected_keys
    assert all(k.endswith("num_batches_tracked") for k in result.missing_keys)
    x = ours.normalize(image)
    with torch.no_grad():
        tv_pool = torch.flatten(tv.avgpool(tv.layer4(tv.layer3(tv.layer2(tv.layer1(
            tv.maxpool(tv.relu(tv.bn1(tv.conv1(x))))))))), 1)
        ours_pool = ours.net.forward_features(x, "pool5")
    assert tv_pool.shape == ours_pool.shape
    diff = (tv_pool - ours_pool).abs().max() / ours_pool.abs().max()
    assert diff > 0.05


def test_pkl_key_problems_are_named(tmp_path, arrays):
    bad = dict(arrays)
    del bad["layer2.1.bn2.running_var"]
    bad["layer5.0.conv1.weight"] = np.zeros((1,), np.float32)
    bad["layer1.0.conv2.weight"] = np.zeros((64, 64, 1, 1), np.float32)
    path = write_pkl(tmp_path / "bad.pkl", bad)
    with pytest.raises(WeightsError, match="bad.pkl") as info:
        create_trunk("vggface2-resnet50", weights=path)
    msg = str(info.value)
    assert "1 missing keys: layer2.1.bn2.running_var" in msg
    assert "1 unexpected keys: layer5.0.conv1.weight" in msg
    assert "layer1.0.conv2.weight (file (64, 64, 1, 1), model (64, 64, 3, 3))" in msg


def test_resnet_pkl_does_not_fit_the_senet(pkl_path):
    with pytest.raises(WeightsError, match=r"64 missing keys: layer1\.0\.conv4\.bias"):
        create_trunk("vggface2-senet50", weights=pkl_path)


def test_senet_pkl_loads_and_uses_its_se_blocks(tmp_path, image):
    arrays = random_arrays(pkl_shapes(se=True), seed=2)
    path = write_pkl(tmp_path / "senet50_ft_weight.pkl", arrays)
    trunk = create_trunk("vggface2-senet50", weights=path)
    assert trunk.weights_format == "pkl" and trunk.preprocessing.channels == "bgr"
    with torch.no_grad():
        before = trunk(image)
    assert before.shape == (1, 2048)
    with torch.no_grad():
        trunk.net.layer4[2].conv5.bias.add_(5.0)  # open that block's gates wider
    assert not torch.allclose(features(trunk, image), before)


def test_unsafe_pickle_is_refused_by_the_trunk(tmp_path):
    marker = tmp_path / "pwned"

    class RunsShell:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "resnet50_ft_weight.pkl"
    path.write_bytes(pickle.dumps({"conv1.weight": RunsShell()}, protocol=2))
    with pytest.raises(UnsafePickleError):
        create_trunk("vggface2-resnet50", weights=path)
    assert not marker.exists()


# ---- the default file ----------------------------------------------------------------------

def test_missing_default_file_says_where_and_how(tmp_path, monkeypatch):
    monkeypatch.setenv("MER_CACHE_WEIGHTS", str(tmp_path / "empty"))
    with pytest.raises(WeightsError) as info:
        create_trunk("vggface2-resnet50")
    msg = str(info.value)
    for needle in ("resnet50_ft_weight.pkl", str(tmp_path / "empty"), "MER_CACHE_WEIGHTS",
                   "--weights PATH", "dead"):
        assert needle in msg
    with pytest.raises(WeightsError, match="does not exist"):
        create_trunk("vggface2-resnet50", weights=tmp_path / "nope.pkl")


def test_default_file_is_read_from_the_weights_dir(pkl_trunk, pkl_path):
    assert pkl_trunk.weights_path == pkl_path and pkl_trunk.weights_format == "pkl"


# ---- our checkpoints -----------------------------------------------------------------------

def test_checkpoint_round_trip_keeps_features_and_preprocessing(pth_trunk, wdir, image):
    src = pth_trunk
    path = wdir / "finetuned.pt"
    save_checkpoint(src, path, trunk="vggface2-resnet50", meta={"epochs": 1})
    back = create_trunk("vggface2-resnet50", weights=path)
    assert back.weights_format == "checkpoint"
    assert back.preprocessing == src.preprocessing  # RGB, from the .pth it started from
    assert_close(features(back, image), features(src, image))
    with pytest.raises(WeightsError, match="saved for trunk 'vggface2-resnet50'"):
        create_trunk("vggface2-senet50", weights=path)


# ---- Keras h5 ------------------------------------------------------------------------------

def keras_reference(arrays: dict[str, np.ndarray]):
    """rcmalli's keras_vggface RESNET50 in Keras 3, outputs (pool5, logits).

    '/' in layer names becomes '_' (Keras 3 forbids it). The head's AveragePooling2D(7) +
    Flatten is written as GlobalAveragePooling2D (equal at 224x224) so the network can be
    compared at small input sizes, which keeps this test fast; softmax is left out.
    """
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras
    from keras import layers

    def conv_bn(x, filters, kernel, name, strides=1, padding="valid"):
        x = layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False,
                          name=name)(x)
        return layers.BatchNormalization(axis=3, name=f"{name}_bn")(x)  # eps 1e-3

    inp = keras.Input((None, None, 3))
    x = conv_bn(inp, 64, 7, "conv1_7x7_s2", strides=2, padding="same")
    x = layers.MaxPooling2D(3, strides=2)(layers.Activation("relu")(x))
    for stage, (planes, n_blocks) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3)), 2):
        for block in range(1, n_blocks + 1):
            name, strides = f"conv{stage}_{block}", 2 if block == 1 and stage > 2 else 1
            y = layers.Activation("relu")(conv_bn(x, planes, 1, f"{name}_1x1_reduce", strides))
            y = layers.Activation("relu")(conv_bn(y, planes, 3, f"{name}_3x3", padding="same"))
            y = conv_bn(y, planes * 4, 1, f"{name}_1x1_increase")
            short = conv_bn(x, planes * 4, 1, f"{name}_1x1_proj", strides) if block == 1 else x
            x = layers.Activation("relu")(layers.add([y, short]))
    pool5 = layers.GlobalAveragePooling2D()(x)
    logits = layers.Dense(8631, name="classifier")(pool5)
    model = keras.Model(inp, [pool5, logits])
    for name, weights in keras_layers(arrays):
        model.get_layer(name.replace("/", "_")).set_weights(list(weights.values()))
    return model


# 64: 'same' stem pads (2, 3); 67: odd size, pads (3, 3); both exercise the valid max-pool.
@pytest.mark.parametrize("size", [64, 67])
def test_keras_h5_matches_the_keras_network(h5_trunk, pkl_trunk, arrays, size):
    trunk = h5_trunk
    assert trunk.weights_format == "keras-h5" and trunk.net.variant == "keras"
    assert trunk.preprocessing.channels == "bgr" and trunk.preprocessing.mean == BGR_MEAN
    g = torch.Generator().manual_seed(size)
    image = torch.randint(0, 256, (1, 3, size, size), dtype=torch.uint8, generator=g)
    # keras_vggface preprocess_input(version=2): RGB -> BGR, subtract the BGR mean.
    bgr = image.permute(0, 2, 3, 1).numpy()[..., ::-1].astype(np.float32) - np.array(
        BGR_MEAN, np.float32)
    with torch.no_grad():
        k_pool5, k_logits = (torch.as_tensor(out).detach().cpu()
                             for out in keras_reference(arrays)(bgr))
    with torch.no_grad():
        logits = trunk(image)
    assert_close(logits, k_logits)
    assert_close(features(trunk, image, "pool5"), k_pool5)
    # The Caffe architecture with the same weights does not match Keras.
    assert not torch.allclose(features(pkl_trunk, image, "logits"), k_logits,
                              rtol=1e-3, atol=1e-3)


def test_keras_notop_h5_has_no_logits(wdir, arrays, image):
    path = write_keras_h5(wdir / "rcmalli_vggface_tf_notop_resnet50.h5", arrays, top=False)
    trunk = create_trunk("vggface2-resnet50", weights=path)
    assert trunk.net.fc is None and trunk.net.variant == "keras"
    with torch.no_grad():
        pool5 = trunk(image)
    assert pool5.shape == (1, 2048)
    with pytest.raises(TrunkError, match="notop"):
        features(trunk, image, "logits")
    ckpt = save_checkpoint(trunk, wdir / "notop.pt", trunk="vggface2-resnet50", meta={})
    back = create_trunk("vggface2-resnet50", weights=wdir / "notop.pt")
    assert back.weights_sha256 == ckpt and back.net.variant == "keras" and back.net.fc is None
    assert_close(features(back, image), pool5)


@pytest.mark.parametrize("size", [(300, 260), (301, 257), (224, 224)])
def test_center_crop_is_torchvision_resize_256_center_crop_224(pkl_trunk, tmp_path, size):
    """The VGGFace2 evaluation crop, on odd margins too, against torchvision's own transforms
    and the reference forward (BGR, mean subtracted) on that crop: < 1e-3 relative error."""
    from dataclasses import replace

    from PIL import Image

    from mer_cache.frames import load_frame

    rng = np.random.default_rng(size[0])
    path = tmp_path / "face.png"
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    pre = replace(pkl_trunk.preprocessing, resize_mode="center-crop")
    ours = load_frame(path, pre)  # (3, 224, 224) uint8
    reference = torchvision.transforms.Compose([torchvision.transforms.Resize(256),
                                                torchvision.transforms.CenterCrop(224)])
    with Image.open(path) as img:
        ref = np.asarray(reference(img.convert("RGB"))).transpose(2, 0, 1)
    np.testing.assert_array_equal(ours, ref)
    x = torch.from_numpy(ref.copy())[None].float().flip(1) - torch.tensor(BGR_MEAN).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = pkl_trunk.net.forward_features(x, "pool5")
        got = pkl_trunk(torch.from_numpy(ours)[None])
    rel = float((got - expected).abs().max() / expected.abs().max())
    assert rel < 1e-3
