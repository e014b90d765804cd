"""What a fine-tuning run leaves per fold, and how to load it back.

- ``fold{k}.pt``: the trunk as a mer-cache checkpoint (:mod:`mer_cache.trunks.checkpoints`),
  so ``create_trunk(name, weights="fold{k}.pt")`` and ``extract`` read it like any weights;
  its ``meta`` says where it came from and which subjects it saw (:func:`fold_meta`).
- ``fold{k}.head.pt``: the fc1 -> fc2 -> fc3 classifier (state dict, widths, classes), which
  Grad-CAM uses as the target after fine-tuning.
- ``fold{k}.json``: the fold's record (subjects, losses, frame-level scores, predictions);
  written last, so its presence (with a matching checkpoint hash) marks the fold done.
- ``faces.json`` (runs with ``face="align"``): the face stage's identity and each clip's
  alignment (transform, or the reason it failed), estimated once per run; a resumed run,
  the fold caches and Grad-CAM warp with these very transforms.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from mer_cache.cache.fingerprint import catalogue_sha256
from mer_cache.catalogue.clip import Clip
from mer_cache.errors import WeightsError
from mer_cache.faces.stage import StoredFaceStage, config_from_identity
from mer_cache.finetune.model import make_classifier
from mer_cache.trunks import create_trunk
from mer_cache.trunks.base import Trunk
from mer_cache.trunks.checkpoints import read_checkpoint, save_checkpoint
from mer_cache.trunks.weights.hashing import sha256_file

FOLD_META_KIND = "mer-cache-finetune-fold"
FACES_FILE = "faces.json"


def checkpoint_path(run_dir: Path, k: int) -> Path:
    return Path(run_dir) / f"fold{k}.pt"


def head_path(checkpoint: Path) -> Path:
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.stem + ".head.pt")


def record_path(run_dir: Path, k: int) -> Path:
    return Path(run_dir) / f"fold{k}.json"


def save_face_alignments(run_dir: Path, clips: list[Clip], column: list[dict],
                         identity: dict) -> None:
    """Write ``faces.json``: the face stage's ``identity`` and ``column[i]`` (a
    ``ClipAlignment.to_json()``) of each clip, with the clip's catalogue row hash."""
    write_json(Path(run_dir) / FACES_FILE, {"face": identity, "clips": {
        c.clip_id: {"clip_sha256": catalogue_sha256([c]), "alignment": a}
        for c, a in zip(clips, column)}})


def stored_face_alignments(run_dir: Path, clips: list[Clip], identity: dict) -> dict[str, dict]:
    """Clip id -> stored alignment, for the ``clips`` that ``run_dir/faces.json`` holds with
    the same face ``identity`` and the same catalogue row (ids, labels, frame names);
    ``{}`` when there is no such file."""
    path = Path(run_dir) / FACES_FILE
    if not path.is_file():
        return {}
    saved = json.loads(path.read_text())
    if saved.get("face") != identity:
        return {}
    stored = saved.get("clips", {})
    return {c.clip_id: stored[c.clip_id]["alignment"] for c in clips
            if c.clip_id in stored and stored[c.clip_id]["clip_sha256"] == catalogue_sha256([c])}


def write_json(path: Path, data: dict) -> None:
    """Write atomically, so a crash never leaves a half record that looks finished."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def save_fold(model, run_dir: Path, k: int, *, meta: dict, classes: tuple[str, ...],
              fc_dims: tuple[int, ...], dropout: float) -> str:
    """Write ``fold{k}.pt`` (trunk) and ``fold{k}.head.pt`` (classifier); return the trunk's sha256."""
    ckpt = checkpoint_path(run_dir, k)
    digest = save_checkpoint(model.trunk, ckpt, trunk=model.trunk.name, meta=meta)
    torch.save({"state_dict": {k2: v.detach().cpu() for k2, v in model.classifier.state_dict().items()},
                "dim": model.trunk.dim, "fc_dims": list(fc_dims), "dropout": dropout,
                "classes": list(classes), "checkpoint_sha256": digest}, head_path(ckpt))
    return digest


def fold_checkpoint_meta(path: Path | str) -> dict:
    """The fine-tuning metadata of a ``fold{k}.pt`` (raises WeightsError if it has none)."""
    meta = read_checkpoint(path).meta
    if meta.get("kind") != FOLD_META_KIND:
        raise WeightsError(f"{path} is a trunk checkpoint but not one written by `mer-cache "
                           "finetune` (no fold metadata). Pass a fold{k}.pt of a fine-tuning run.")
    return meta


def load_fold_model(checkpoint: Path | str, *, layer: str | None = None,
                    resize_mode: str = "stretch") -> tuple[Trunk, torch.nn.Module | None, dict]:
    """A fine-tuned trunk, its classifier (None if ``fold{k}.head.pt`` is absent) and its meta."""
    checkpoint = Path(checkpoint)
    meta = fold_checkpoint_meta(checkpoint)
    trunk = create_trunk(meta["trunk"], weights=checkpoint, layer=layer or meta.get("layer"),
                         resize_mode=resize_mode)  # type: ignore[arg-type]
    head_file = head_path(checkpoint)
    if not head_file.is_file():
        return trunk, None, meta
    saved = torch.load(head_file, map_location="cpu", weights_only=True)
    if saved.get("checkpoint_sha256") != sha256_file(checkpoint):
        raise WeightsError(f"{head_file} belongs to another version of {checkpoint} (sha256 "
                           "differs). Keep the files of one fine-tuning run together.")
    head = make_classifier(int(saved["dim"]), tuple(saved["fc_dims"]), len(saved["classes"]),
                           dropout=float(saved["dropout"]))
    head.load_state_dict(saved["state_dict"])
    return trunk, head.eval(), meta


def run_face_stage(run_dir: Path, meta: dict, clips: list[Clip]) -> StoredFaceStage | None:
    """The face stage a fold checkpoint's training frames went through (None: whole
    frames), holding the transforms ``run_dir/faces.json`` stores for ``clips``.

    ``meta`` is the checkpoint's (:func:`fold_checkpoint_meta`); checkpoints written before
    fine-tuning had a face stage have no ``face`` entry and were trained on whole frames.
    """
    face = meta.get("face")
    if face is None:
        return None
    return StoredFaceStage(config_from_identity(face), stored_face_alignments(run_dir, clips, face))
