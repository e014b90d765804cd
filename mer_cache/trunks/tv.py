"""``tv:<name>``: any torchvision classification model as a trunk, for experiments.

Weights are ``"random"`` (seeded) or a torchvision state dict file; torchvision's own
pretrained weights are never downloaded (nothing is, implicitly). Layers: ``pool`` (the
penultimate features: the input of the last ``Linear``, or for a model without one, the
global-average-pooled input of its last conv) and ``logits``. The spec's sizes come from a
forward pass on the ``meta`` device, which costs no memory and no compute.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision
from torch import nn

from mer_cache.errors import TrunkError, WeightsError
from mer_cache.trunks.built import BuiltNet
from mer_cache.trunks.spec import Preprocessing, TrunkSpec
from mer_cache.trunks.weights.checks import load_checked_state_dict
from mer_cache.trunks.weights.formats import read_torch_file
from mer_cache.trunks.weights.hashing import sha256_file

# torchvision's ImageNet normalization, on the 0..255 scale the Trunk works in.
IMAGENET_PREPROCESSING = Preprocessing(
    (224, 224), "rgb", (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)
)
_PREFIX = "tv:"
_N_CAM_LAYERS = 4


@dataclass(frozen=True)
class _Probe:
    pool_dim: int
    num_classes: int
    tap: str  # module whose input is the `pool` embedding
    cam_layers: tuple[str, ...]


def _model_name(name: str) -> str:
    model = name.removeprefix(_PREFIX)
    known = torchvision.models.list_models(module=torchvision.models)
    if model not in known:
        close = difflib.get_close_matches(model, known, n=5, cutoff=0.5)
        hint = f" Close matches: {', '.join(_PREFIX + c for c in close)}." if close else ""
        raise TrunkError(
            f"'{model}' is not a torchvision classification model.{hint} "
            "Any name from torchvision.models.list_models(module=torchvision.models) works, "
            "e.g. tv:resnet18, tv:mobilenet_v3_small."
        )
    return model


def _construct(model: str) -> nn.Module:
    with warnings.catch_warnings():
        # googlenet/inception_v3 warn about a future default of init_weights
        warnings.simplefilter("ignore", FutureWarning)
        return torchvision.models.get_model(model).eval()


def _cam_candidates(model: nn.Module, tap: str) -> list[str]:
    if all(hasattr(model, f"layer{i}") for i in range(1, 5)):
        return [f"layer{i}" for i in range(1, 5)]  # ResNet-like
    for container in ("features", "layers", "blocks", "trunk_output"):
        if isinstance(getattr(model, container, None), nn.Module):
            return [f"{container}.{n}" for n, _ in getattr(model, container).named_children()]
    head = tap.split(".")[0]
    return [n for n, child in model.named_children()
            if n != head and "aux" not in n.lower() and any(True for _ in child.parameters())]


def _inspect(model: nn.Module, device: str) -> _Probe:
    modules = dict(model.named_modules())
    linears = [n for n, m in modules.items() if isinstance(m, nn.Linear)]
    convs = [n for n, m in modules.items() if isinstance(m, nn.Conv2d)]
    tap = (linears or convs)[-1]  # registered last = the classifier, in every torchvision model
    seen: dict[str, torch.Tensor] = {}
    handles = [modules[tap].register_forward_pre_hook(lambda _m, a: seen.setdefault("pool", a[0]))]
    candidates = _cam_candidates(model, tap)
    for name in candidates:
        handles.append(modules[name].register_forward_hook(
            lambda _m, _a, out, name=name: seen.setdefault(name, out)))
    try:
        with torch.no_grad():
            out = model(torch.zeros(1, 3, *IMAGENET_PREPROCESSING.input_size, device=device))
    finally:
        for h in handles:
            h.remove()
    out = out if isinstance(out, torch.Tensor) else out[0]
    spatial = [n for n in candidates if isinstance(seen.get(n), torch.Tensor) and seen[n].ndim == 4]
    return _Probe(_pool(seen["pool"]).shape[1], out.shape[1], tap, tuple(spatial[-_N_CAM_LAYERS:]))


@functools.lru_cache(maxsize=None)
def _probe(model: str) -> _Probe:
    try:
        with torch.device("meta"):  # shapes only: no weights allocated, nothing computed
            return _inspect(_construct(model), "meta")
    except (NotImplementedError, RuntimeError):  # e.g. RegNet's init copies real data
        return _inspect(_construct(model), "cpu")


def _pool(x: torch.Tensor) -> torch.Tensor:
    if x.ndim == 4:
        return x.mean(dim=(2, 3))  # a conv classifier's input (SqueezeNet): GAP -> (B, C)
    return x.flatten(1)  # (B, D)


class TorchvisionNet(nn.Module):
    """A torchvision classifier with a ``pool`` tap on its classifier's input."""

    def __init__(self, model: nn.Module, probe: _Probe) -> None:
        super().__init__()
        self.model = model
        self.probe = probe

    def forward_features(self, x: torch.Tensor, layer: str) -> torch.Tensor:
        if layer not in ("pool", "logits"):
            raise TrunkError(f"torchvision trunks have layers 'pool' and 'logits', not '{layer}'.")
        seen: list[torch.Tensor] = []
        tap = self.model.get_submodule(self.probe.tap)
        handle = tap.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
        try:
            out = self.model(x)  # (B, K)
        finally:
            handle.remove()
        if layer == "logits":
            return out if isinstance(out, torch.Tensor) else out[0]
        return _pool(seen[0])  # (B, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x, "logits")

    def cam_modules(self) -> dict[str, nn.Module]:
        return {n: self.model.get_submodule(n) for n in self.probe.cam_layers}


def tv_spec(name: str) -> TrunkSpec:
    """The spec of ``tv:<model>`` (sizes found by a forward pass on the meta device).

    Raises
    ------
    TrunkError
        When ``<model>`` is not a torchvision classification model (close matches listed).
    """
    model = _model_name(name)
    probe = _probe(model)
    return TrunkSpec(
        name=_PREFIX + model,
        description=f"torchvision {model} (224x224 RGB, ImageNet normalization, {probe.pool_dim}-d).",
        preprocessing=IMAGENET_PREPROCESSING,
        layers={"pool": probe.pool_dim, "logits": probe.num_classes},
        default_layer="pool",
        cam_layers=probe.cam_layers,
        weight_formats=("random", "state-dict"),
    )


def load_state_dict_file(model: nn.Module, path: Path) -> None:
    """Load a state dict file into ``model``, naming every missing, unexpected or mis-shaped key."""
    state = read_torch_file(path)  # torch.load(weights_only=True): tensors only, no code
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path} holds a {type(state).__name__}, not a state dict of tensors. "
                           "Save it with torch.save(model.state_dict(), path); the keys must be "
                           "this exact torchvision model's (no 'module.' prefix).")
    load_checked_state_dict(model, state, source=path)


def build_tv(name: str, weights: Path | str | None) -> BuiltNet:
    """Build ``tv:<model>`` with ``"random"`` (seeded) weights or a state dict file.

    Raises
    ------
    WeightsError
        When ``weights`` is None (tv trunks have no default file), missing, or does not fit.
    """
    model_name = _model_name(name)
    if weights is None:
        raise WeightsError(
            f"{name} has no default weight file and torchvision weights are never downloaded. "
            "Pass --weights random, or --weights PATH to a state dict saved with "
            "torch.save(model.state_dict(), PATH)."
        )
    rng_state = torch.random.get_rng_state()
    torch.manual_seed(0)  # "random" weights are a deterministic function of seed 0
    model = _construct(model_name)
    torch.random.set_rng_state(rng_state)
    net = TorchvisionNet(model, _probe(model_name))
    if weights == "random":
        digest = hashlib.sha256(f"{_PREFIX}{model_name}-seed-0".encode()).hexdigest()
        return BuiltNet(net, IMAGENET_PREPROCESSING, digest, "random")
    path = Path(weights)
    if not path.is_file():
        raise WeightsError(f"Weight file {path} does not exist. Pass a state dict file or 'random'.")
    load_state_dict_file(model, path)
    return BuiltNet(net, IMAGENET_PREPROCESSING, sha256_file(path), "state-dict", path)
