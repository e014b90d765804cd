"""Typed records that describe a trunk: its preprocessing, its layers, its weight files.

The split of preprocessing keeps the hot path cheap: DataLoader workers only decode and
resize to ``uint8`` (see :mod:`mer_cache.frames`); the trunk itself reorders channels and
subtracts the mean on the device, so the fingerprint of a cache is this record plus the
weights' sha256 and the tapped layer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

ResizeMode = Literal["stretch", "center-crop"]
ChannelOrder = Literal["rgb", "bgr", "gray"]


@dataclass(frozen=True)
class Preprocessing:
    """How frames are turned into the trunk's input.

    ``mean``/``std`` are on the 0..255 scale and in the model's channel order, so the trunk
    computes ``(x[order] - mean) / std`` on a float copy of the uint8 input.
    """

    input_size: tuple[int, int]  # (H, W)
    channels: ChannelOrder
    mean: tuple[float, ...]
    std: tuple[float, ...]
    resize_mode: ResizeMode = "stretch"

    @property
    def n_channels(self) -> int:
        return 1 if self.channels == "gray" else 3

    def to_dict(self) -> dict:
        d = asdict(self)
        d["input_size"] = list(self.input_size)
        d["mean"] = list(self.mean)
        d["std"] = list(self.std)
        return d


@dataclass(frozen=True)
class WeightFile:
    """A known weight file: where it comes from and how to check it."""

    filename: str
    format: Literal["pkl", "pth-caffe", "keras-h5", "hdf5-fer", "checkpoint", "state-dict"]
    sha256: str | None  # None when several conversions circulate with different hashes
    how_to_get: str  # one paragraph shown when the file is missing


@dataclass(frozen=True)
class TrunkSpec:
    """Everything the registry knows about a trunk before it is built."""

    name: str
    description: str
    preprocessing: Preprocessing  # default; a weight format may change channels/mean
    layers: dict[str, int]  # tappable layer name -> embedding size
    default_layer: str
    cam_layers: tuple[str, ...]  # spatial layers Grad-CAM / fine-tuning can start from
    weight_files: tuple[WeightFile, ...] = field(default_factory=tuple)
    weight_formats: tuple[str, ...] = field(default_factory=tuple)
