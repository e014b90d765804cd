"""Weight-file readers: format detection, the safe unpickler, name mapping, key checks,
the Keras h5 reader and our own checkpoints (mer_cache.trunks.weights, .checkpoints)."""

from __future__ import annotations

import hashlib
import os
import pickle

import h5py
import numpy as np
import pytest
import torch
from torch import nn

from mer_cache.errors import UnsafePickleError, WeightsError
from mer_cache.trunks.checkpoints import (load_checkpoint_into, read_checkpoint,
                                          save_checkpoint)
from mer_cache.trunks.tiny import TinyCNN
from mer_cache.trunks.weights import (check_state_dict, detect_format, load_numpy_pickle,
                                      sha256_file)
from mer_cache.trunks.weights.caffe_names import caffe_module_to_ours, rename_caffe_state_dict
from mer_cache.trunks.weights.keras_h5 import read_keras_h5
from vggface2_synthetic import (caffe_name, pkl_shapes, random_arrays, write_keras_h5,
                                write_pkl)


@pytest.fixture(scope="module")
def arrays() -> dict[str, np.ndarray]:
    return random_arrays(pkl_shapes(), seed=1)


# ---- format detection ------------------------------------------------------------------

def test_detect_format_reads_bytes_not_suffix(tmp_path):
    state = {"w": torch.zeros(2)}
    torch.save(state, tmp_path / "zip.pkl")  # misleading suffix on purpose
    torch.save(state, tmp_path / "legacy.bin", _use_new_zipfile_serialization=False)
    write_pkl(tmp_path / "plain.pth", {"w": np.zeros(2, np.float32)})
    with h5py.File(tmp_path / "k.bin", "w") as f:
        f["x"] = np.zeros(3)
    assert detect_format(tmp_path / "zip.pkl") == "torch-zip"
    assert detect_format(tmp_path / "legacy.bin") == "torch-legacy"
    assert detect_format(tmp_path / "plain.pth") == "pickle"
    assert detect_format(tmp_path / "k.bin") == "hdf5"


def test_detect_format_rejects_unknown_bytes(tmp_path):
    path = tmp_path / "page.pth"
    path.write_bytes(b"<html>404 Not Found</html>")
    with pytest.raises(WeightsError, match="page.pth"):
        detect_format(path)


def test_sha256_file_matches_hashlib(tmp_path):
    path = tmp_path / "blob"
    data = os.urandom(3 * (1 << 20) + 17)  # spans several read chunks
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


# ---- restricted unpickler ----------------------------------------------------------------

@pytest.mark.parametrize("protocol", [2, 4])  # protocol 5 needs _frombuffer: refused
def test_numpy_pickle_round_trip(tmp_path, protocol):
    src = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(4, np.float64)}
    path = tmp_path / "w.pkl"
    path.write_bytes(pickle.dumps(src, protocol=protocol))
    got = load_numpy_pickle(path)
    assert got.keys() == src.keys()
    for k in src:
        np.testing.assert_array_equal(got[k], src[k])
        assert got[k].dtype == src[k].dtype


def test_numpy_pickle_accepts_old_numpy_module_name(tmp_path):
    # Files written by numpy 1.x name numpy.core.multiarray._reconstruct.
    raw = pickle.dumps({"a": np.arange(3, dtype=np.float32)}, protocol=2)
    raw = raw.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
    assert b"numpy.core.multiarray" in raw
    path = tmp_path / "old.pkl"
    path.write_bytes(raw)
    np.testing.assert_array_equal(load_numpy_pickle(path)["a"], np.arange(3))


class _RunsShell:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _Evals:
    def __reduce__(self):
        return (eval, ("__import__('os').getcwd()",))


def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "resnet50_ft_weight.pkl"
    # A real-looking dict with the payload after a legitimate array.
    path.write_bytes(pickle.dumps({"conv1.weight": np.zeros(2), "x": _RunsShell(marker)},
                                  protocol=2))
    with pytest.raises(UnsafePickleError, match=r"(posix|os)\.system") as info:
        load_numpy_pickle(path)
    assert not marker.exists()
    assert "resnet50_ft_weight.pkl" in str(info.value)
    assert isinstance(info.value, WeightsError)  # a typed weights error for the CLI


@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_pickle_naming_builtins_is_refused(tmp_path, protocol):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(_Evals(), protocol=protocol))
    with pytest.raises(UnsafePickleError, match=r"(builtins|__builtin__)\.eval"):
        load_numpy_pickle(path)


def test_pickle_that_is_not_a_dict_of_arrays_is_refused(tmp_path):
    path = tmp_path / "list.pkl"
    path.write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    with pytest.raises(WeightsError, match="dict of parameter name"):
        load_numpy_pickle(path)
    (tmp_path / "cut.pkl").write_bytes(path.read_bytes()[:5])
    with pytest.raises(WeightsError, match="cut.pkl"):
        load_numpy_pickle(tmp_path / "cut.pkl")


# ---- key and shape checks ------------------------------------------------------------------

def test_check_state_dict_names_missing_unexpected_and_misshaped():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4))
    good = {k: v.clone() for k, v in model.state_dict().items()}
    check_state_dict(good, model, source="ok.pth")  # num_batches_tracked included: fine
    del good["1.num_batches_tracked"]
    check_state_dict(good, model, source="ok.pth")  # ... and absent: fine too

    bad = dict(good)
    del bad["1.running_var"]
    bad["2.weight"] = torch.zeros(1)
    bad["0.weight"] = torch.zeros(4, 3, 5, 5)
    with pytest.raises(WeightsError) as info:
        check_state_dict(bad, model, source="bad.pth")
    msg = str(info.value)
    assert "bad.pth" in msg
    assert "1 missing keys: 1.running_var" in msg
    assert "1 unexpected keys: 2.weight" in msg
    assert "0.weight (file (4, 3, 5, 5), model (4, 3, 3, 3))" in msg


def test_check_state_dict_lists_at_most_ten_with_a_count():
    model = nn.Sequential(*[nn.Linear(1, 1) for _ in range(12)])
    with pytest.raises(WeightsError, match=r"24 missing keys: .*\(14 more\)"):
        check_state_dict({}, model, source="empty.pth")


# ---- Caffe names ---------------------------------------------------------------------------

@pytest.mark.parametrize(("caffe", "ours"), [
    ("conv1_7x7_s2", "conv1"),
    ("conv1_7x7_s2_bn", "bn1"),
    ("conv2_1_1x1_reduce", "layer1.0.conv1"),
    ("conv3_1_1x1_reduce_bn", "layer2.0.bn1"),
    ("conv4_6_3x3", "layer3.5.conv2"),
    ("conv5_3_1x1_increase_bn", "layer4.2.bn3"),
    ("conv3_1_1x1_proj", "layer2.0.downsample.0"),
    ("conv3_1_1x1_proj_bn", "layer2.0.downsample.1"),
    ("conv2_2_1x1_down", "layer1.1.conv4"),
    ("conv2_2_1x1_up", "layer1.1.conv5"),
    ("classifier", "fc"),
    ("conv6_1_3x3", None),
    ("pool5_7x7_s1", None),
])
def test_caffe_module_names(caffe, ours):
    assert caffe_module_to_ours(caffe) == ours


def test_rename_caffe_state_dict_is_the_inverse_of_the_release_names(arrays):
    caffe = {caffe_name(k): v for k, v in arrays.items()}
    caffe["classifier.weight"] = caffe["classifier.weight"].reshape(8631, 2048, 1, 1)
    caffe["mystery_layer.weight"] = np.zeros(1)
    ours = rename_caffe_state_dict(caffe)
    assert set(ours) == set(arrays) | {"mystery_layer.weight"}  # unknown keys kept
    assert ours["fc.weight"].shape == (8631, 2048)


# ---- Keras h5 ------------------------------------------------------------------------------

def test_keras_h5_reader_maps_names_and_layouts(tmp_path, arrays):
    got = read_keras_h5(write_keras_h5(tmp_path / "k.h5", arrays))
    assert set(got) == set(arrays)
    for key in ("conv1.weight", "layer2.0.downsample.0.weight", "layer3.4.bn2.running_var",
                "layer4.2.conv2.weight", "fc.weight", "fc.bias"):
        np.testing.assert_array_equal(got[key], arrays[key])


def test_keras_notop_h5_has_no_classifier(tmp_path, arrays):
    got = read_keras_h5(write_keras_h5(tmp_path / "notop.h5", arrays, top=False))
    assert set(got) == {k for k in arrays if not k.startswith("fc.")}


def test_hdf5_without_keras_layout_is_refused(tmp_path):
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(WeightsError, match="not a Keras weight file"):
        read_keras_h5(tmp_path / "other.h5")


# ---- our checkpoints -----------------------------------------------------------------------

def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(3)
    net = TinyCNN()
    path = tmp_path / "sub" / "tiny.pt"
    digest = save_checkpoint(net, path, trunk="tiny-cnn", meta={"epochs": 2})
    assert digest == sha256_file(path)
    fresh = TinyCNN()
    assert load_checkpoint_into(fresh, path, trunk="tiny-cnn") == digest
    for k, v in net.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[k], v)
    ckpt = read_checkpoint(path)
    assert (ckpt.trunk, ckpt.meta) == ("tiny-cnn", {"epochs": 2})


def test_checkpoint_errors(tmp_path):
    net = TinyCNN()
    path = tmp_path / "tiny.pt"
    save_checkpoint(net, path, trunk="tiny-cnn", meta={})
    with pytest.raises(WeightsError, match="saved for trunk 'tiny-cnn'"):
        load_checkpoint_into(net, path, trunk="vggface2-resnet50")
    torch.save(net.state_dict(), tmp_path / "plain.pt")
    with pytest.raises(WeightsError, match="not a mer-cache checkpoint"):
        load_checkpoint_into(net, tmp_path / "plain.pt")
    other = nn.Sequential(nn.Linear(2, 2))
    with pytest.raises(WeightsError, match="missing keys: 0.bias, 0.weight"):
        load_checkpoint_into(other, path)
    with pytest.raises(WeightsError, match="does not exist"):
        load_checkpoint_into(net, tmp_path / "nope.pt")


def test_checkpoint_holding_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"format": "mer-cache-trunk", "x": _RunsShell(marker)}, tmp_path / "evil.pt")
    with pytest.raises(WeightsError, match="weights_only"):
        load_checkpoint_into(TinyCNN(), tmp_path / "evil.pt")
    assert not marker.exists()
