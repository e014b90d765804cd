"""Decode frames and bring them to a trunk's input size as ``uint8`` arrays.

Runs in DataLoader workers on uint8 PIL images (geometry by torchvision's transforms): the
float conversion and the mean/std normalization happen on the device inside
:class:`~mer_cache.trunks.Trunk`.

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
    """Resize per ``pre.resize_mode``, with torchvision's own transforms (on the PIL image).

    ``stretch`` maps the whole frame to the input size (the paper's no-crop choice).
    ``center-crop`` is the VGGFace2 evaluation transform, ``Resize(256) + CenterCrop(224)``
    scaled to the input size: torchvision's geometry exactly (its crop offset rounds, where
    a hand-written floor would shift odd margins by a pixel).
    """
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    h, w = pre.input_size
    if pre.resize_mode == "stretch":
        return TF.resize(img, [h, w], interpolation=InterpolationMode.BILINEAR)
    short = round(min(h, w) * 256 / 224)
    img = TF.resize(img, short, interpolation=InterpolationMode.BILINEAR)
    return TF.center_crop(img, [h, w])


# Pillow opens 16-bit grayscale PNG/TIFF as "I;16*"; its convert("L") clips every value
# above 255 to 255, so a whole clip would read as identical white frames.
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")
# 32-bit integer and float images carry no fixed range to scale from.
_NO_RANGE = {"I": "32-bit integer", "F": "32-bit float"}


def to_8bit(img: Image.Image, path: Path) -> Image.Image:
    """16-bit grayscale scaled to 8 bit (v / 257, rounded); other modes unchanged.

    Raises
    ------
    FrameDecodeError
        For 32-bit integer or float images, whose value range is unknown.
    """
    if img.mode in _SIXTEEN_BIT:
        arr = np.asarray(img).astype(np.uint32)  # (H, W) 0..65535
        return Image.fromarray(((arr + 128) // 257).astype(np.uint8), "L")
    if img.mode in _NO_RANGE:
        raise FrameDecodeError(
            f"Frame {path} is a {_NO_RANGE[img.mode]} image (Pillow mode {img.mode}), whose value "
            "range is unknown, so it cannot be brought to 8 bit faithfully. Convert the frames "
            "to 8-bit (or 16-bit) PNG/JPEG, then rerun.")
    return img


def load_frame(path: Path, pre: Preprocessing) -> np.ndarray:
    """Read one image file -> ``uint8`` array ``(C, H, W)`` (RGB, or 1 channel for gray).

    Raises
    ------
    FrameDecodeError
        When the file is missing, truncated, not an image, or a 32-bit image.
    """
    try:
        with Image.open(path) as img:
            img = to_8bit(img, path).convert("L" if pre.channels == "gray" else "RGB")
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
