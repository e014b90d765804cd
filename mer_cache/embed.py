"""Embed a few image files with a trunk: one vector per image, for checking a trunk by hand.

The extractor (``mer-cache extract``) is the batch path for whole datasets; this is the
small, direct one behind ``mer-cache embed``: decode -> resize (``stretch`` or
``center-crop``) -> trunk -> ``(N, D)`` float32.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import numpy as np
import torch

from mer_cache.errors import ConfigError
from mer_cache.frames import load_frame
from mer_cache.trunks import create_trunk
from mer_cache.trunks.checkpoints import check_trained_face, training_record
from mer_cache.trunks.spec import ResizeMode

NO_FACE_ADVICE = ("`embed --face align` needs a usable face in every image it is given and "
                  "embedded none of them: remove this image from the list, or embed whole "
                  "images with --face none.")


def embed_images(
    paths: Sequence[Path | str],
    *,
    trunk: str,
    weights: Path | str | None = None,
    layer: str | None = None,
    resize_mode: ResizeMode = "stretch",
    batch_size: int = 64,
    device: str = "cpu",
    progress: Callable[[int, int], None] | None = None,
    face: Literal["align", "none"] = "none",
) -> np.ndarray:
    """Embed image files with a trunk.

    Parameters
    ----------
    paths : sequence of Path
        Image files (anything PIL reads); the output rows follow this order.
    trunk : str
        Trunk name (see :func:`mer_cache.trunks.trunk_names`) or ``tv:<name>``.
    weights : Path, "random" or None
        As for :func:`mer_cache.trunks.create_trunk`.
    layer : str, optional
        Layer to tap; default the trunk's embedding layer.
    resize_mode : {"stretch", "center-crop"}
        ``stretch`` resizes the whole image to the input size; ``center-crop`` is the
        VGGFace2 evaluation transform (shorter side to 256/224 of it, centre crop).
    batch_size : int
        Images per forward pass.
    device : str
        Torch device, e.g. ``"cpu"`` or ``"cuda"``.
    progress : callable, optional
        Called as ``progress(done, total)`` after each batch.
    face : {"none", "align"}
        ``align``: detect the face of each image and warp it to the canonical crop
        (:mod:`mer_cache.faces`) before the resize.

    Returns
    -------
    np.ndarray
        ``(N, D)`` float32, one row per image.

    Raises
    ------
    ConfigError
        When no paths are given or ``batch_size`` < 1, or when ``weights`` is a fine-tuned
        checkpoint trained on the other kind of frames (aligned crops or whole frames).
    FrameDecodeError
        When an image cannot be read (names the file).
    FaceError
        With ``face="align"``, when an image holds no usable face (names the file). The
        whole call stops there: the output's rows carry no names, so skipping an image
        would silently shift every later row onto the wrong image.
    """
    if not paths:
        raise ConfigError("No images to embed: pass at least one image file.")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}.")
    if face not in ("align", "none"):
        raise ConfigError(f"--face must be align or none, got {face!r}.")
    model = create_trunk(trunk, weights=weights, layer=layer, resize_mode=resize_mode).to(device)
    if model.weights_format == "checkpoint" and model.weights_path:
        # a fine-tuned trunk gets the kind of frames it was trained on (each image is its
        # own one-frame clip here, aligned with the default face stage)
        from mer_cache.faces import FaceStage

        check_trained_face(training_record(model.weights_path),
                           FaceStage().identity() if face == "align" else None, command="embed")
    pre = model.preprocessing
    load = lambda p: load_frame(p, pre)  # noqa: E731
    if face == "align":
        from mer_cache.faces.stage import image_input_loader  # the frames-level face stage

        load = image_input_loader(pre, advice=NO_FACE_ADVICE)
    out = np.empty((len(paths), model.dim), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(paths), batch_size):
            chunk = paths[start:start + batch_size]
            frames = np.stack([load(Path(p)) for p in chunk])  # (b, C, H, W) uint8
            emb = model(torch.from_numpy(frames).to(device))  # (b, D)
            out[start:start + len(chunk)] = emb.float().cpu().numpy()
            if progress is not None:
                progress(start + len(chunk), len(paths))
    return out


def embed_to_npy(paths: Sequence[Path | str], *, out: Path | str, **options: Any) -> np.ndarray:
    """Embed image files (:func:`embed_images`) and write the ``(N, D)`` rows to ``out``.

    What ``mer-cache embed`` runs. ``out`` is checked before the trunk is built or any image
    decoded, so a folder there costs no embedding work.

    Parameters
    ----------
    paths : sequence of Path
        Image files; the rows follow this order.
    out : Path
        The ``.npy`` file to write (its folder is created).
    **options
        As for :func:`embed_images` (``trunk`` is required).

    Returns
    -------
    np.ndarray
        The embeddings written, ``(N, D)`` float32.

    Raises
    ------
    ConfigError
        When ``out`` is a folder, and as :func:`embed_images`.
    """
    out = check_npy_out(out)
    emb = embed_images(paths, **options)
    save_npy(out, emb)
    return emb


def check_npy_out(out: Path | str) -> Path:
    """``out`` as a Path; a ConfigError when it is an existing folder, not a file to write."""
    out = Path(out)
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; pass the .npy file to write, e.g. "
                          f"--out {out / 'embeddings.npy'}.")
    return out


def save_npy(out: Path | str, emb: np.ndarray) -> Path:
    """Write ``emb`` to exactly ``out`` (``np.save`` would append ``.npy`` to a bare name),
    through a temp file renamed into place, so a full disk never leaves half a file."""
    out = check_npy_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.partial")
    try:
        with open(tmp, "wb") as fh:
            np.save(fh, emb)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out
