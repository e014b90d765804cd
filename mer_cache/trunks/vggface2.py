"""Load VGGFace2 weights in any of their formats into a (SE-)ResNet-50 and pick its input.

One builder serves ``vggface2-resnet50`` and ``vggface2-senet50``. The format is read from
the file's bytes (:func:`~mer_cache.trunks.weights.formats.detect_format`), and the format
decides the preprocessing, because the releases disagree on channel order:

- ``.pkl`` (PyTorch conversion) and Keras ``.h5``: BGR, mean ``(91.4953, 103.8827,
  131.0912)`` (VGGFace2 Caffe mean, BGR order), no std division;
- official Caffe-named ``.pth`` (``*_dag``): its first conv was permuted to RGB, so RGB with
  the same mean in RGB order ``(131.0912, 103.8827, 91.4953)``;
- our checkpoints: what the checkpoint recorded.

Weights are never downloaded: the official links are dead and users hold copies.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable, Mapping

import torch
from torch import nn

from mer_cache.errors import WeightsError
from mer_cache.paths import weights_dir
from mer_cache.trunks.registry import BuiltNet
from mer_cache.trunks.spec import Preprocessing, TrunkSpec
from mer_cache.trunks.weights.caffe_names import is_caffe_named, rename_caffe_state_dict
from mer_cache.trunks.weights.checks import load_checked_state_dict
from mer_cache.trunks.weights.formats import detect_format, read_torch_file
from mer_cache.trunks.weights.hashing import sha256_file
from mer_cache.trunks.weights.keras_h5 import read_keras_h5
from mer_cache.trunks.weights.pickle_safe import load_numpy_pickle

INPUT_SIZE = (224, 224)
BGR_MEAN = (91.4953, 103.8827, 131.0912)  # VGGFace2 Caffe mean, BGR order
RGB_MEAN = BGR_MEAN[::-1]  # the same mean in the RGB order of the *_dag.pth release
BGR_PREPROCESSING = Preprocessing(INPUT_SIZE, "bgr", BGR_MEAN, (1.0, 1.0, 1.0))
RGB_PREPROCESSING = Preprocessing(INPUT_SIZE, "rgb", RGB_MEAN, (1.0, 1.0, 1.0))

HOW_TO_GET = (
    "The official Oxford VGG download links are dead and mer-cache never downloads "
    "weights: copy the file from a colleague or an archive you trust into the weights "
    "directory (default data/weights/, or the folder named by MER_CACHE_WEIGHTS), or pass "
    "its path with --weights PATH; `mer-cache weights list` shows what is present."
)

# make_net(variant, with_classifier) -> a network with forward_features/cam_modules
MakeNet = Callable[[str, bool], nn.Module]


def _random_net(spec: TrunkSpec, make_net: MakeNet) -> BuiltNet:
    # Seeded so two runs with --weights random give the same features; the global RNG is
    # restored so building a trunk does not change the caller's random stream.
    state = torch.random.get_rng_state()
    torch.manual_seed(0)
    try:
        net = make_net("caffe", True)
    finally:
        torch.random.set_rng_state(state)
    digest = hashlib.sha256(f"{spec.name}-random-seed-0".encode()).hexdigest()
    return BuiltNet(net, spec.preprocessing, digest, "random")


def _resolve_path(weights: Path | str | None, *, spec: TrunkSpec, default_file: str) -> Path:
    if weights is None:
        path = weights_dir() / default_file
        if not path.is_file():
            others = ", ".join(w.filename for w in spec.weight_files if w.filename != default_file)
            raise WeightsError(
                f"Trunk '{spec.name}' needs weights and its default file {default_file} is "
                f"not in the weights directory {weights_dir()}. {HOW_TO_GET} Other files "
                f"this trunk reads: {others or 'none'}. Use --weights random for untrained "
                "weights (smoke tests only)."
            )
        return path
    path = Path(weights)
    if not path.is_file():
        raise WeightsError(
            f"Weight file {path} does not exist (trunk '{spec.name}', expected e.g. "
            f"{default_file}). {HOW_TO_GET}"
        )
    return path


def _read_torch_weights(path: Path, spec: TrunkSpec
                        ) -> tuple[Mapping[str, object], str, str, Preprocessing]:
    """A torch file -> (state dict in our names, format, variant, preprocessing)."""
    from mer_cache.trunks.checkpoints import is_checkpoint

    obj = read_torch_file(path)
    if is_checkpoint(obj):
        if obj.get("trunk") != spec.name:
            raise WeightsError(
                f"Checkpoint {path} was saved for trunk '{obj.get('trunk')}', not "
                f"'{spec.name}'. Pass --trunk {obj.get('trunk')} or another checkpoint."
            )
        meta = obj.get("meta") or {}
        pre = meta.get("preprocessing")
        pre = (Preprocessing(tuple(pre["input_size"]), pre["channels"], tuple(pre["mean"]),
                             tuple(pre["std"])) if pre else spec.preprocessing)
        return obj["state_dict"], "checkpoint", meta.get("variant", "caffe"), pre
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor)
                                               for v in obj.values()):
        raise WeightsError(
            f"{path} is a torch file but holds neither a state dict (name -> tensor) nor a "
            f"mer-cache checkpoint, so it cannot be loaded into '{spec.name}'."
        )
    if is_caffe_named(obj):
        return rename_caffe_state_dict(obj), "pth-caffe", "caffe", RGB_PREPROCESSING
    # Our (torchvision-like) names: a re-saved .pkl, so the .pkl's BGR input.
    return obj, "state-dict", "caffe", BGR_PREPROCESSING


def build_vggface2(weights: Path | str | None, *, spec: TrunkSpec, make_net: MakeNet,
                   default_file: str, keras_variant: bool) -> BuiltNet:
    """Build a VGGFace2 network from weights in any supported format.

    Parameters
    ----------
    weights : Path, str, "random" or None
        A weight file (format detected from its bytes), ``"random"`` for seeded untrained
        weights, or None for ``default_file`` in the weights directory.
    spec : TrunkSpec
        The trunk being built (names it in errors; its default preprocessing).
    make_net : callable
        ``make_net(variant, with_classifier)`` -> network.
    default_file : str
        File name looked up in :func:`mer_cache.paths.weights_dir` when ``weights`` is None.
    keras_variant : bool
        Whether a Keras ``.h5`` can be read (only the ResNet-50 has a Keras variant here).

    Raises
    ------
    WeightsError
        Missing file, unknown or unsafe format, or weights that do not fit the network.
    """
    if weights == "random":
        return _random_net(spec, make_net)
    path = _resolve_path(weights, spec=spec, default_file=default_file)
    container = detect_format(path)
    with_classifier = True  # a missing classifier is an error, except where it is optional
    if container == "pickle":
        state, fmt, variant, pre = load_numpy_pickle(path), "pkl", "caffe", BGR_PREPROCESSING
    elif container == "hdf5":
        if not keras_variant:
            raise WeightsError(
                f"{path} is an HDF5 (Keras) file, but '{spec.name}' reads only .pkl, "
                "Caffe-named .pth and mer-cache checkpoints."
            )
        state, fmt, variant, pre = read_keras_h5(path), "keras-h5", "keras", BGR_PREPROCESSING
        with_classifier = "fc.weight" in state or "fc.bias" in state  # "notop" files
    else:
        state, fmt, variant, pre = _read_torch_weights(path, spec)
        with_classifier = fmt != "checkpoint" or "fc.weight" in state or "fc.bias" in state
    net = make_net(variant, with_classifier)
    load_checked_state_dict(net, state, source=path)
    return BuiltNet(net, pre, sha256_file(path), fmt, path)
