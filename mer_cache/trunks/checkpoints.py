"""Our own trunk checkpoints: a torch file with a format tag, the trunk name and metadata.

Layout (``torch.save`` of a plain dict, so ``torch.load(weights_only=True)`` reads it)::

    {"format": "mer-cache-trunk", "trunk": "<registered name>",
     "state_dict": {name: tensor}, "meta": {...}}

``meta`` is free-form JSON-like data; builders read a few keys from it: ``variant`` (the
architecture variant, e.g. ``"keras"``) and ``preprocessing`` (a
:meth:`Preprocessing.to_dict`), both written automatically when a :class:`Trunk` is saved.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from mer_cache.errors import ConfigError, WeightsError
from mer_cache.trunks.weights.checks import load_checked_state_dict
from mer_cache.trunks.weights.formats import detect_format, read_torch_file
from mer_cache.trunks.weights.hashing import sha256_file

CHECKPOINT_FORMAT = "mer-cache-trunk"


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint as read from disk."""

    trunk: str
    state_dict: dict[str, torch.Tensor]
    meta: dict
    sha256: str


def is_checkpoint(obj: object) -> bool:
    """True for a loaded object in our checkpoint layout."""
    return isinstance(obj, dict) and obj.get("format") == CHECKPOINT_FORMAT


def save_checkpoint(net: nn.Module, path: Path | str, *, trunk: str, meta: dict) -> str:
    """Write ``net``'s weights as a mer-cache checkpoint and return its sha256.

    Parameters
    ----------
    net : torch.nn.Module
        The bare network, or a :class:`~mer_cache.trunks.base.Trunk` (then its network is
        saved and its preprocessing is recorded in ``meta["preprocessing"]``).
    path : Path or str
        Destination file (parent folders are created).
    trunk : str
        The registered trunk name the weights belong to.
    meta : dict
        Extra JSON-like data (training settings, source weights...). The network's
        ``variant`` attribute, when it has one, is recorded as ``meta["variant"]``.
    """
    from mer_cache.trunks.base import Trunk

    meta = dict(meta)
    if isinstance(net, Trunk):
        meta.setdefault("preprocessing", net.preprocessing.to_dict())
        net = net.net
    if hasattr(net, "variant"):
        meta.setdefault("variant", net.variant)
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": CHECKPOINT_FORMAT, "trunk": trunk, "state_dict": state,
                "meta": meta}, path)
    return sha256_file(path)


def read_checkpoint(path: Path | str) -> Checkpoint:
    """Read a mer-cache checkpoint without loading it into a network.

    Raises
    ------
    WeightsError
        When the file is missing or is not a mer-cache checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"Checkpoint {path} does not exist{' (it is a folder)' if path.is_dir() else ''}. "
                           "Check the path.")
    detect_format(path)  # a text file or an HTML page is named as such, not unpickled
    obj = read_torch_file(path)
    if not is_checkpoint(obj):
        raise WeightsError(
            f"{path} is not a mer-cache checkpoint (no 'format': '{CHECKPOINT_FORMAT}' "
            "entry). Checkpoints are written by mer-cache itself; a foreign weight file "
            "must be passed to a trunk that reads its format."
        )
    return Checkpoint(trunk=str(obj.get("trunk")), state_dict=dict(obj["state_dict"]),
                      meta=dict(obj.get("meta") or {}), sha256=sha256_file(path))


def load_checkpoint_into(net: nn.Module, path: Path | str, *,
                         trunk: str | None = None) -> str:
    """Load a mer-cache checkpoint into ``net`` after checking every key and shape.

    Parameters
    ----------
    net : torch.nn.Module
        The network to fill.
    path : Path or str
        The checkpoint file.
    trunk : str, optional
        When given, the checkpoint must have been saved for this trunk name.

    Returns
    -------
    str
        The checkpoint file's sha256.

    Raises
    ------
    WeightsError
        When the file is not a checkpoint, belongs to another trunk, or does not fit.
    """
    ckpt = read_checkpoint(path)
    if trunk is not None and ckpt.trunk != trunk:
        raise WeightsError(
            f"Checkpoint {path} was saved for trunk '{ckpt.trunk}', not '{trunk}'. Pass "
            f"--trunk {ckpt.trunk}, or a checkpoint of '{trunk}'."
        )
    load_checked_state_dict(net, ckpt.state_dict, source=path)
    return ckpt.sha256


# What a checkpoint's metadata says about the data its weights were trained on (written by
# `mer-cache finetune`); a cache embedded with it records this as fingerprint["finetune"].
TRAINING_RECORD_KEYS = ("fold", "n_folds", "protocol", "folds", "seed", "labels", "trunk",
                        "from_layer", "base_weights_sha256", "train_subjects", "val_subjects",
                        "test_subjects", "assignment", "assignment_sha256", "catalogue_sha256")


def training_record(path: Path | str) -> dict | None:
    """The subjects (and folds) a checkpoint's weights were trained on, or None for a
    checkpoint that records none.

    Whatever route a fine-tuned checkpoint takes into extraction (``--finetuned-run``,
    ``--weights fold3.pt``, a notebook), the cache records this, so the leakage guard of head
    training can refuse a fold whose test subjects the trunk saw. ``face`` (the face stage
    its training frames went through, None for whole frames) is there when the checkpoint
    says, so extraction can feed the trunk the same crops; older checkpoints do not say.
    """
    ckpt = read_checkpoint(path)
    if "train_subjects" not in ckpt.meta:
        return None
    face = {"face": ckpt.meta["face"]} if "face" in ckpt.meta else {}
    return {"checkpoint": Path(path).name, "checkpoint_sha256": ckpt.sha256,
            **{k: ckpt.meta.get(k) for k in TRAINING_RECORD_KEYS}, **face}


def check_trained_face(finetune: dict | None, face: dict | None, *,
                       command: str = "extract") -> None:
    """A fine-tuned trunk embeds the kind of frames it was trained on, or nothing.

    ``finetune``: :func:`training_record` of the trunk's checkpoint; ``face``: the face
    stage identity the frames will go through (None: whole frames).
    """
    if finetune is None or "face" not in finetune or finetune["face"] == face:
        return
    if finetune["face"] and face:  # crops both ways, made differently
        keys = sorted(k for k in set(finetune["face"]) | set(face)
                      if finetune["face"].get(k) != face.get(k))
        if keys == ["stabilise"] and command == "extract":
            todo = (f"run extract {'with' if finetune['face'].get('stabilise') else 'without'} "
                    "--face-stabilise, as it was trained")
        else:
            todo = "fine-tune it again with this version (its crops were made by another one)"
        raise ConfigError(f"{finetune.get('checkpoint')} was fine-tuned on aligned face crops "
                          f"made with other face-stage settings ({', '.join(keys)}) than this "
                          f"{command} would use, and crops made another way are other inputs: "
                          f"{todo}.")
    want = "aligned face crops" if finetune["face"] else "whole frames"
    got = "aligned face crops" if face else "whole frames"
    flag = "--face align" if finetune["face"] else "--face none"
    hint = (" (or with --finetuned-run, which uses the run's own face stage)"
            if command == "extract" else "")
    raise ConfigError(f"{finetune.get('checkpoint')} was fine-tuned on {want}, but this "
                      f"{command} would feed it {got}. Run {command} with "
                      f"{flag}{hint}.")
