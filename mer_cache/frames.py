"""Decode frames and bring them to a trunk's input size as ``uint8`` arrays.

Runs in DataLoader workers, so it stays numpy/PIL only: the float conversion and the
mean/std normalization happen on the device inside :class:`~mer_cache.trunks.Trunk`.

Pillow decodes. ``torchvision.io.decode_image`` was measured against it
(``benchmarks/frame_decode.py``): on JPEG it decodes alone ~1.2x faster with identical
pixels, but its tensor must go back to Pillow for the resize, and the whole
:func:`load_frame` came out no faster (2286 vs 2338 frames/s); it reads no BMP (SMIC).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from mer_cache.errors import DatasetError
from mer_cache.trunks.spec import Preprocessing


class FrameDecodeError(DatasetError):
    """One frame could not be read; the extractor fails only that frame's clip."""


def resize_image(img: Image.Image, pre: Preprocessing) -> Image.Image:
    """Resize per ``pre.resize_mode``.

    ``stretch`` maps the whole frame to the input size (the paper's no-crop choice).
    ``center-crop`` is the VGGFace2 evaluation transform: shorter side to 256/224 of the
    input size, then a centred crop of the input size.
    """
    h, w = pre.input_size
    if pre.resize_mode == "stretch":
        return img.resize((w, h), Image.BILINEAR)
    short = round(min(h, w) * 256 / 224)
    iw, ih = img.size
    scale = short / min(iw, ih)
    nw, nh = max(w, round(iw * scale)), max(h, round(ih * scale))
    img = img.resize((nw, nh), Image.BILINEAR)
    left, top = (nw - w) // 2, (nh - h) // 2
    return img.crop((left, top, left + w, top + h))


def load_frame(path: Path, pre: Preprocessing) -> np.ndarray:
    """Read one image file -> ``uint8`` array ``(C, H, W)`` (RGB, or 1 channel for gray).

    Raises
    ------
    FrameDecodeError
        When the file is missing, truncated or not an image.
    """
    try:
        with Image.open(path) as img:
            img = img.convert("L" if pre.channels == "gray" else "RGB")
            img = resize_image(img, pre)
            arr = np.array(img, dtype=np.uint8)  # writable: torch.from_numpy needs it
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise FrameDecodeError(
            f"Cannot decode frame {path}: {exc}. Replace or remove the file, then rerun."
        ) from None
    if arr.ndim == 2:
        arr = arr[None]  # (1, H, W)
    else:
        arr = arr.transpose(2, 0, 1)  # (3, H, W)
    return np.ascontiguousarray(arr)


def array_to_input(rgb: np.ndarray, pre: Preprocessing) -> np.ndarray:
    """An in-memory ``(H, W, 3)`` uint8 RGB frame -> ``(C, H, W)`` uint8 trunk input."""
    img = Image.fromarray(rgb)
    img = img.convert("L" if pre.channels == "gray" else "RGB")
    arr = np.array(resize_image(img, pre), dtype=np.uint8)
    return np.ascontiguousarray(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1))
