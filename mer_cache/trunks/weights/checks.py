"""Check a foreign state dict against a model: the full key set and every shape.

``load_state_dict(strict=False)`` (or a torchvision model with the same key names) loads
wrong weights silently; here every missing, unexpected or mis-shaped key is named before
anything is copied. ``num_batches_tracked`` is ignored on both sides: the VGGFace2
conversions do not have it, and it does not change inference.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import torch
from torch import nn

from mer_cache.errors import WeightsError

_MAX_LISTED = 10  # keys listed per category; the count says how many there are


def _shape(value: object) -> tuple[int, ...]:
    return tuple(int(d) for d in getattr(value, "shape", ()))


def _listing(title: str, items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    more = f", ... ({len(items) - _MAX_LISTED} more)" if len(items) > _MAX_LISTED else ""
    return f"{len(items)} {title}: {shown}{more}"


def _ignored(key: str) -> bool:
    return key.endswith("num_batches_tracked")


def check_state_dict(state_dict: Mapping[str, object], model: nn.Module, *,
                     source: Path | str) -> None:
    """Raise unless ``state_dict`` has exactly the model's keys, each with its shape.

    Parameters
    ----------
    state_dict : Mapping[str, array or tensor]
        Parameters in the model's names (after any renaming).
    model : torch.nn.Module
        The model the parameters are meant for.
    source : Path or str
        The weight file they came from, named in the error.

    Raises
    ------
    WeightsError
        Naming the missing, unexpected and mis-shaped keys (up to 10 each, with counts).
    """
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items() if not _ignored(k)}
    given = {k: _shape(v) for k, v in state_dict.items() if not _ignored(k)}
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    misshaped = sorted(
        f"{k} (file {given[k]}, model {expected[k]})"
        for k in set(expected) & set(given) if given[k] != expected[k]
    )
    if not (missing or unexpected or misshaped):
        return
    parts = [_listing(title, keys) for title, keys in (
        ("missing keys", missing), ("unexpected keys", unexpected),
        ("mis-shaped keys", misshaped)) if keys]
    raise WeightsError(
        f"The weights in {source} do not fit {type(model).__name__} "
        f"({len(given)} keys in the file, {len(expected)} in the model): "
        + "; ".join(parts) + ". The file is probably for another architecture or variant "
        "(e.g. SE-ResNet-50 vs ResNet-50, a 128-d/256-d model, or a checkpoint of another "
        "trunk); pass a weight file made for this trunk."
    )


def load_checked_state_dict(model: nn.Module, state_dict: Mapping[str, object], *,
                            source: Path | str) -> None:
    """Check with :func:`check_state_dict`, then copy the arrays into ``model``.

    Parameters
    ----------
    model : torch.nn.Module
        Receives the parameters (dtype is converted to the model's).
    state_dict : Mapping[str, numpy.ndarray or torch.Tensor]
        Parameters in the model's names.
    source : Path or str
        The weight file, named in errors.
    """
    check_state_dict(state_dict, model, source=source)
    tensors = {
        k: torch.from_numpy(np.ascontiguousarray(v)) if isinstance(v, np.ndarray) else v
        for k, v in state_dict.items() if not _ignored(k)
    }
    # strict=False only because num_batches_tracked is absent; the check above is strict.
    model.load_state_dict(tensors, strict=False)
