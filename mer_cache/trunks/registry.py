"""Name -> trunk factory registry (one :class:`TrunkSpec` and one builder per name).

A builder turns a weights argument into ``(net, preprocessing, sha256, format)``;
:func:`create_trunk` is the one constructor everyone calls. ``tv:<name>`` builds any
torchvision classification model.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable


from mer_cache.errors import TrunkError
from mer_cache.trunks.base import Trunk
from mer_cache.trunks.built import BuiltNet
from mer_cache.trunks.spec import Preprocessing, ResizeMode, TrunkSpec


# builder(weights) where weights is a Path, "random", or None (= the spec's default file)
Builder = Callable[[Path | str | None], BuiltNet]

_REGISTRY: dict[str, tuple[TrunkSpec, Builder]] = {}


def register_trunk(spec: TrunkSpec, builder: Builder) -> None:
    _REGISTRY[spec.name] = (spec, builder)


_BUILTIN_MODULES = ("tiny", "resnet_caffe", "senet", "minixception")


def _ensure_builtin() -> None:
    # Importing the model modules registers them; kept lazy so `import mer_cache` is cheap.
    import importlib

    for mod in _BUILTIN_MODULES:
        importlib.import_module(f"mer_cache.trunks.{mod}")


def trunk_names() -> list[str]:
    _ensure_builtin()
    return sorted(_REGISTRY)


def get_spec(name: str) -> TrunkSpec:
    _ensure_builtin()
    if name.startswith("tv:"):
        from mer_cache.trunks.tv import tv_spec

        return tv_spec(name)
    if name not in _REGISTRY:
        raise TrunkError(
            f"Unknown trunk '{name}'. Known trunks: {', '.join(sorted(_REGISTRY))}, "
            "or tv:<torchvision model name> (e.g. tv:resnet18)."
        )
    return _REGISTRY[name][0]


def create_trunk(
    name: str,
    *,
    weights: Path | str | None = None,
    layer: str | None = None,
    resize_mode: ResizeMode = "stretch",
) -> Trunk:
    """Build a trunk by name, load its weights and wrap it with its preprocessing.

    Parameters
    ----------
    name : str
        A registered name (see :func:`trunk_names`) or ``tv:<torchvision name>``.
    weights : Path, "random" or None
        A weight file (its format is detected), ``"random"`` for untrained weights, or
        None for the spec's default file in the weights directory.
    layer : str, optional
        Layer whose output is the embedding; default: the spec's ``default_layer``.
    resize_mode : {"stretch", "center-crop"}
        How frames are brought to the input size (recorded in the preprocessing).
    """
    spec = get_spec(name)
    if name.startswith("tv:"):
        from mer_cache.trunks.tv import build_tv

        built = build_tv(name, weights)
    else:
        built = _REGISTRY[name][1](weights)
    pre = replace(built.preprocessing, resize_mode=resize_mode)
    trunk = Trunk(
        spec,
        built.net,
        preprocessing=pre,
        layer=layer,
        weights_sha256=built.weights_sha256,
        weights_path=built.weights_path,
        weights_format=built.weights_format,
    )
    return trunk.eval()
