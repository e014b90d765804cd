"""Synthetic VGGFace2 weight files with the exact names and shapes of the real releases.

The names and shapes are written out here from the release descriptions (pkl: 267
torchvision-like keys; official .pth: Caffe names; Keras .h5: rcmalli layer names), not
derived from mer-cache's model, so a wrong name or shape in the model makes tests fail.
Values are random but scaled so activations stay finite through 50 layers.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import h5py
import numpy as np
import torch

BLOCKS = (3, 4, 6, 3)
PLANES = (64, 128, 256, 512)
N_CLASSES = 8631
BN_PARAMS = ("weight", "bias", "running_mean", "running_var")


def pkl_shapes(*, se: bool = False) -> dict[str, tuple[int, ...]]:
    """Keys and shapes of ``resnet50_ft_weight.pkl`` (``senet50_ft_weight.pkl`` if se)."""
    shapes: dict[str, tuple[int, ...]] = {"conv1.weight": (64, 3, 7, 7)}
    shapes.update({f"bn1.{p}": (64,) for p in BN_PARAMS})
    inplanes = 64
    for layer, (planes, n_blocks) in enumerate(zip(PLANES, BLOCKS), start=1):
        for b in range(n_blocks):
            pre = f"layer{layer}.{b}."
            cin = inplanes if b == 0 else planes * 4
            convs = {"conv1": (planes, cin, 1, 1), "conv2": (planes, planes, 3, 3),
                     "conv3": (planes * 4, planes, 1, 1)}
            for i, (conv, shape) in enumerate(convs.items(), start=1):
                shapes[f"{pre}{conv}.weight"] = shape
                shapes.update({f"{pre}bn{i}.{p}": (shape[0],) for p in BN_PARAMS})
            if se:
                c, r = planes * 4, planes * 4 // 16
                shapes.update({f"{pre}conv4.weight": (r, c, 1, 1), f"{pre}conv4.bias": (r,),
                               f"{pre}conv5.weight": (c, r, 1, 1), f"{pre}conv5.bias": (c,)})
            if b == 0:
                shapes[f"{pre}downsample.0.weight"] = (planes * 4, cin, 1, 1)
                shapes.update({f"{pre}downsample.1.{p}": (planes * 4,) for p in BN_PARAMS})
        inplanes = planes * 4
    shapes["fc.weight"] = (N_CLASSES, 2048)
    shapes["fc.bias"] = (N_CLASSES,)
    return shapes


def random_arrays(shapes: dict[str, tuple[int, ...]], *, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    f32 = np.float32
    out = {}
    for key, shape in shapes.items():
        if key.endswith("running_var"):
            a = 0.5 + rng.random(shape, dtype=f32)
        elif key.endswith("weight") and len(shape) == 1:  # BN gamma
            a = 0.5 + 0.5 * rng.random(shape, dtype=f32)
        elif len(shape) > 1:  # conv / fc weight, scaled by fan-in
            a = rng.standard_normal(shape, dtype=f32) / f32(np.sqrt(np.prod(shape[1:])))
        else:  # BN beta, running_mean, biases
            a = 0.1 * rng.standard_normal(shape, dtype=f32)
        out[key] = a
    return out


def write_pkl(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """A real pickle of ``dict[str, ndarray]``, protocol 2 (uses ``_codecs.encode``)."""
    with open(path, "wb") as fh:
        pickle.dump(arrays, fh, protocol=2)
    return path


# our block part -> Caffe name part (REFERENCE 3b)
_CAFFE_PART = {"conv1": "1x1_reduce", "bn1": "1x1_reduce_bn", "conv2": "3x3", "bn2": "3x3_bn",
               "conv3": "1x1_increase", "bn3": "1x1_increase_bn", "downsample.0": "1x1_proj",
               "downsample.1": "1x1_proj_bn", "conv4": "1x1_down", "conv5": "1x1_up"}


def caffe_name(key: str) -> str:
    """Our key -> the official release's Caffe key (``layer2.0.bn1.weight`` ->
    ``conv3_1_1x1_reduce_bn.weight``)."""
    module, _, param = key.rpartition(".")
    if module == "conv1":
        return f"conv1_7x7_s2.{param}"
    if module == "bn1":
        return f"conv1_7x7_s2_bn.{param}"
    if module == "fc":
        return f"classifier.{param}"
    layer, block, part = module.split(".", 2)
    stage = int(layer.removeprefix("layer")) + 1
    return f"conv{stage}_{int(block) + 1}_{_CAFFE_PART[part]}.{param}"


def write_caffe_pth(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """The official ``resnet50_ft_dag.pth`` layout for the same network as ``arrays``.

    That release takes RGB input, so its first conv is ours with the input channels
    reversed; the classifier is a 1x1 conv.
    """
    state = {}
    for key, a in arrays.items():
        if key == "conv1.weight":
            a = a[:, ::-1]
        if key == "fc.weight":
            a = a.reshape(*a.shape, 1, 1)
        state[caffe_name(key)] = torch.from_numpy(np.ascontiguousarray(a))
    torch.save(state, path)
    return path


def keras_layers(arrays: dict[str, np.ndarray]) -> list[tuple[str, dict[str, np.ndarray]]]:
    """(rcmalli layer name, {role: Keras-layout array}) in model order, weighted layers only."""
    def bn(pre: str) -> dict[str, np.ndarray]:
        return {"gamma": arrays[f"{pre}.weight"], "beta": arrays[f"{pre}.bias"],
                "moving_mean": arrays[f"{pre}.running_mean"],
                "moving_variance": arrays[f"{pre}.running_var"]}

    def kernel(key: str) -> dict[str, np.ndarray]:
        return {"kernel": arrays[key].transpose(2, 3, 1, 0)}  # (Cout,Cin,H,W) -> (H,W,Cin,Cout)

    out = [("conv1/7x7_s2", kernel("conv1.weight")), ("conv1/7x7_s2/bn", bn("bn1"))]
    for layer, n_blocks in enumerate(BLOCKS, start=1):
        for b in range(n_blocks):
            pre, name = f"layer{layer}.{b}", f"conv{layer + 1}_{b + 1}"
            parts = [("conv1", "bn1", "1x1_reduce"), ("conv2", "bn2", "3x3"),
                     ("conv3", "bn3", "1x1_increase")]
            if b == 0:
                parts.append(("downsample.0", "downsample.1", "1x1_proj"))
            for conv, bnorm, part in parts:
                out.append((f"{name}_{part}", kernel(f"{pre}.{conv}.weight")))
                out.append((f"{name}_{part}/bn", bn(f"{pre}.{bnorm}")))
    if "fc.weight" in arrays:
        out.append(("classifier", {"kernel": arrays["fc.weight"].T, "bias": arrays["fc.bias"]}))
    return out


def write_keras_h5(path: Path, arrays: dict[str, np.ndarray], *, top: bool = True) -> Path:
    """The rcmalli Keras 2 ``save_weights`` layout: nested groups, layer/weight names."""
    if not top:
        arrays = {k: v for k, v in arrays.items() if not k.startswith("fc.")}
    layers = [("input_1", {})] + keras_layers(arrays) + [("avg_pool", {}), ("flatten_1", {})]
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([name.encode() for name, _ in layers])
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.1.5"
        for name, weights in layers:
            group = f.require_group(name)
            names = [f"{name}/{role}:0" for role in weights]
            group.attrs["weight_names"] = np.array([n.encode() for n in names], dtype="S")
            for n, a in zip(names, weights.values()):
                group.create_dataset(n, data=a)
    return path
