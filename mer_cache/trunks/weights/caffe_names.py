"""Map the VGGFace2 Caffe layer names onto our (torchvision-like) parameter names.

The official PyTorch release (``resnet50_ft_dag.pth``, converted from MatConvNet/Caffe)
names modules after the Caffe prototxt: ``conv1_7x7_s2`` (+``_bn``), then per block
``conv{stage}_{block}_1x1_reduce``, ``_3x3``, ``_1x1_increase``, ``_1x1_proj`` (each with
a ``_bn``), SE blocks add ``_1x1_down``/``_1x1_up``, and the head is ``classifier``, a
1x1 conv with bias. Caffe stage N is our ``layer{N-1}`` and blocks are 1-based there. The
Keras release (:mod:`.keras_h5`) uses the same names with ``/`` instead of ``_`` before
``7x7_s2`` and ``bn``, so both readers share :func:`caffe_module_to_ours`.
"""

from __future__ import annotations

import re
from typing import Mapping

# Caffe block part -> (our conv, our bn) inside layerL.B
_BLOCK_PARTS = {
    "1x1_reduce": ("conv1", "bn1"),
    "3x3": ("conv2", "bn2"),
    "1x1_increase": ("conv3", "bn3"),
    "1x1_proj": ("downsample.0", "downsample.1"),
    "1x1_down": ("conv4", None),  # SE squeeze, C -> C/16, with bias
    "1x1_up": ("conv5", None),  # SE excitation, C/16 -> C, with bias
}
_BLOCK_RE = re.compile(r"^conv(\d)_(\d+)_(" + "|".join(_BLOCK_PARTS) + r")(_bn)?$")
_PARAMS = {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}


def caffe_module_to_ours(module: str) -> str | None:
    """``conv3_2_1x1_reduce_bn`` -> ``layer2.1.bn1``; None for a name it does not know.

    Parameters
    ----------
    module : str
        A Caffe module name with ``_`` separators (``conv1_7x7_s2_bn``, ``classifier``).
    """
    if module in ("conv1_7x7_s2", "conv1_7x7_s2_bn"):
        return "bn1" if module.endswith("_bn") else "conv1"
    if module == "classifier":
        return "fc"
    m = _BLOCK_RE.match(module)
    if m is None:
        return None
    stage, block, part, bn = int(m[1]), int(m[2]), m[3], m[4]
    conv_name, bn_name = _BLOCK_PARTS[part]
    if bn and bn_name is None or not 2 <= stage <= 5 or block < 1:
        return None
    return f"layer{stage - 1}.{block - 1}.{bn_name if bn else conv_name}"


def rename_caffe_state_dict(state_dict: Mapping[str, object]) -> dict[str, object]:
    """Rename a Caffe-named state dict to our names.

    Keys it does not recognize keep their name, so the shape/key check reports them as
    unexpected rather than dropping them silently. The ``classifier`` 1x1 conv weight
    ``(8631, 2048, 1, 1)`` becomes the ``fc`` weight ``(8631, 2048)``.
    """
    out: dict[str, object] = {}
    for key, value in state_dict.items():
        module, _, param = key.rpartition(".")
        ours = caffe_module_to_ours(module) if param in _PARAMS else None
        if ours is None:
            out[key] = value
            continue
        if ours == "fc" and param == "weight" and len(getattr(value, "shape", ())) == 4:
            value = value.reshape(value.shape[0], value.shape[1])  # 1x1 conv == linear
        out[f"{ours}.{param}"] = value
    return out


def is_caffe_named(state_dict: Mapping[str, object]) -> bool:
    """True when the keys look like the official Caffe-named release."""
    return any(k.startswith("conv1_7x7_s2") for k in state_dict)

