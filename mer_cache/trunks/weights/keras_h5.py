"""Read the Keras VGGFace2 ResNet-50 (``rcmalli_vggface_tf_*resnet50.h5``) with h5py.

Keras saves weights per layer: ``f.attrs["layer_names"]`` lists the layers in order and each
layer's group lists its arrays in ``attrs["weight_names"]``. Layer names contain ``/``
(``conv1/7x7_s2/bn``), so h5py nests the groups; indexing by the stored names follows the
nesting for us. Kernels are stored ``(H, W, Cin, Cout)`` and become torch's
``(Cout, Cin, H, W)``; the dense classifier ``(2048, 8631)`` is transposed; BatchNorm
arrays are gamma, beta, moving_mean, moving_variance. The "notop" file has no classifier.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mer_cache.errors import WeightsError
from mer_cache.trunks.weights.caffe_names import caffe_module_to_ours

# Keras weight name (after the last "/" and before ":0") -> torch parameter name
_ROLE_TO_PARAM = {
    "kernel": "weight",
    "bias": "bias",
    "gamma": "weight",
    "beta": "bias",
    "moving_mean": "running_mean",
    "moving_variance": "running_var",
}


def _text(value: object) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def _to_torch_layout(role: str, array: np.ndarray) -> np.ndarray:
    if role == "kernel" and array.ndim == 4:
        return array.transpose(3, 2, 0, 1)  # (H, W, Cin, Cout) -> (Cout, Cin, H, W)
    if role == "kernel" and array.ndim == 2:
        return array.T  # Dense (Cin, Cout) -> Linear (Cout, Cin)
    return array


def read_keras_h5(path: Path) -> dict[str, np.ndarray]:
    """Read a Keras VGGFace2 ResNet-50 weight file into our parameter names.

    Parameters
    ----------
    path : Path
        ``rcmalli_vggface_tf_resnet50.h5`` or ``rcmalli_vggface_tf_notop_resnet50.h5`` (a
        weights-only file, or a full model file with a ``model_weights`` group).

    Returns
    -------
    dict[str, numpy.ndarray]
        Our names (``conv1.weight``, ``layer1.0.bn1.running_var``, ``fc.weight``...).
        Arrays of layers it does not recognize keep their Keras name, so the key check
        reports them as unexpected.

    Raises
    ------
    WeightsError
        When the file is not a Keras weight file.
    """
    import h5py

    out: dict[str, np.ndarray] = {}
    try:
        with h5py.File(path, "r") as f:
            root = f["model_weights"] if "model_weights" in f else f
            if "layer_names" not in root.attrs:
                raise WeightsError(
                    f"{path} is an HDF5 file but not a Keras weight file (no 'layer_names' "
                    "attribute). The Keras VGGFace2 ResNet-50 is "
                    "rcmalli_vggface_tf_resnet50.h5 (or its _notop_ variant)."
                )
            for layer in map(_text, root.attrs["layer_names"]):
                group = root[layer]
                ours = caffe_module_to_ours(layer.replace("/", "_"))
                for weight_name in map(_text, group.attrs.get("weight_names", [])):
                    role = weight_name.rsplit("/", 1)[-1].split(":")[0]
                    array = np.asarray(group[weight_name])
                    if ours is None or role not in _ROLE_TO_PARAM:
                        out[f"{layer}/{role}"] = array  # reported as unexpected
                        continue
                    out[f"{ours}.{_ROLE_TO_PARAM[role]}"] = _to_torch_layout(role, array)
    except (OSError, KeyError) as exc:
        raise WeightsError(
            f"Cannot read the Keras weight file {path}: {exc}. The file is truncated or "
            "its layout is not Keras' (layer_names / weight_names)."
        ) from None
    return out
