"""Where the face moves, and how much of a CAM falls there (the focus score).

The focus score of a layer is the share of CAM mass inside the moving face regions,
``sum(CAM * mask) / sum(CAM)``, averaged over clips; a uniform map scores the mask's area.
Regions come from one of three sources:

- ``synth``: the synthetic data's ground truth (``synth.json``: per clip, the bounding box
  of the face region each action unit moves, in frame pixels; and the apex frame);
- ``boxes``: a user JSON file ``{clip_id: [[x0, y0, x1, y1], ...]}`` in frame pixels;
- ``diff``: real data without boxes: the onset-to-apex frame difference, smoothed, and its
  top 10 % pixels.

Boxes are mapped to the trunk's input exactly as the frame is: through the clip's face
alignment when frames are aligned (:mod:`mer_cache.faces`), then the stretch or centre crop.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from mer_cache.catalogue.clip import Clip
from mer_cache.errors import ConfigError, DatasetError
from mer_cache.faces import ClipAlignment
from mer_cache.faces.defaults import synth_manifest
from mer_cache.frames import load_frame
from mer_cache.trunks.spec import Preprocessing

FrameLoader = Callable[[Path], np.ndarray]  # frame path -> (C, H, W) uint8 trunk input

DIFF_TOP_SHARE = 0.10  # the diff mask keeps the 10 % most-changed pixels
DIFF_SMOOTH_PX = 5  # box filter that joins speckle noise into regions


@dataclass(frozen=True)
class RegionSource:
    """Where moving regions (and apex frames) come from; see the module docstring."""

    kind: str  # "synth", "boxes" or "diff"
    boxes: dict[str, list[list[float]]] = field(default_factory=dict)  # clip_id -> boxes
    apex: dict[str, int] = field(default_factory=dict)  # clip_id -> apex index (synth)
    onset: dict[str, int] = field(default_factory=dict)
    origin: str = ""  # the file the regions were read from, for messages

    def has_regions(self, clip: Clip) -> bool:
        return self.kind == "diff" or bool(self.boxes.get(clip.clip_id))

    def identity(self) -> dict:
        """The kind and a digest of the boxes and apex frames (None for diff): what a
        fine-tuning run records, so its folds all choose l_s against the same regions."""
        if self.kind == "diff":
            return {"kind": "diff", "sha256": None}
        blob = json.dumps([self.boxes, self.apex, self.onset], sort_keys=True).encode()
        return {"kind": self.kind, "sha256": hashlib.sha256(blob).hexdigest()}


def synth_regions(root: Path | str) -> RegionSource:
    """The action-unit boxes and apex frames of a synthetic dataset (``root/synth.json``)."""
    path = Path(root) / "synth.json"
    if not path.is_file():
        raise DatasetError(f"{root} has no synth.json, so it has no ground-truth regions. Use "
                           "--regions diff (frame differences) or a boxes JSON file.")
    manifest = json.loads(path.read_text())
    boxes, apex, onset = {}, {}, {}
    for c in manifest["clips"]:
        boxes[c["clip_id"]] = [_in_raw_frame(list(map(float, b)), c.get("raw_face_box"))
                               for b in c.get("au_regions", {}).values()]
        if c.get("apex") is not None:
            apex[c["clip_id"]], onset[c["clip_id"]] = int(c["apex"]), int(c["onset"])
    return RegionSource("synth", boxes, apex, onset, str(path))


SYNTH_FACE_PX = 128  # synth draws every face on a 128 px canvas (mer_cache.synth.face.CROP_PX)


def _in_raw_frame(box: list[float], face_box: list[int] | None) -> list[float]:
    """An action-unit box of synth's 128 px face -> pixels of the frame it was pasted in.

    ``synth --layout raw`` pastes the face, resized, at ``raw_face_box`` of a larger frame;
    the other layouts' frames are the face itself (``face_box`` None).
    """
    if face_box is None:
        return box
    x0, y0, x1, _ = face_box
    scale = (x1 - x0) / SYNTH_FACE_PX
    return [x0 + box[0] * scale, y0 + box[1] * scale, x0 + box[2] * scale, y0 + box[3] * scale]


def boxes_file_regions(path: Path | str) -> RegionSource:
    """User boxes: JSON ``{clip_id: [[x0, y0, x1, y1], ...]}`` in frame pixels (x1, y1 exclusive)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        boxes = {str(k): [[float(v) for v in b] for b in bs] for k, bs in data.items()}
        if any(len(b) != 4 for bs in boxes.values() for b in bs):
            raise ValueError("every box needs 4 numbers")
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise ConfigError(f"Cannot read regions from {path}: {exc}. Expected JSON "
                          '{"<clip_id>": [[x0, y0, x1, y1], ...]} in frame pixels.') from None
    return RegionSource("boxes", boxes, origin=str(path))


def regions_for_clips(spec: RegionSource | str | None, clips: list[Clip]) -> RegionSource:
    """The moving regions ``spec`` names, for ``clips`` (the library's and the CLI's default).

    ``auto`` (and None): the ground truth of the ``mer-cache synth`` dataset the clips come
    from (its ``synth.json``, found above the clip folders as ``--face auto`` finds it) when
    they all come from one, else ``diff``; ``synth``: that ground truth, an error without it;
    ``diff``; any other string: a boxes JSON file. A :class:`RegionSource` is used as it is.

    Raises
    ------
    DatasetError
        ``synth`` for clips that are not all from one synthetic dataset.
    ConfigError
        A boxes file that cannot be read.
    """
    if isinstance(spec, RegionSource):
        return spec
    spec = spec or "auto"
    if spec in ("auto", "synth"):
        found = {c.clip_id: synth_manifest(c) for c in clips}
        manifests = set(found.values())
        if len(manifests) == 1 and None not in manifests:
            return synth_regions(manifests.pop().parent)
        if spec == "auto":
            return RegionSource("diff")
        plain = [cid for cid, m in found.items() if m is None]
        where = (f"{len(plain)} of {len(clips)} clips (e.g. {plain[0]}) have no synth.json above "
                 "their folder" if plain else f"the clips come from {len(manifests)} synthetic "
                 f"datasets ({', '.join(sorted(str(m.parent) for m in manifests))})")
        raise DatasetError(f"--regions synth needs clips of one `mer-cache synth` dataset, but "
                           f"{where}. Use --regions diff (frame differences) or a boxes JSON file.")
    if spec == "diff":
        return RegionSource("diff")
    return boxes_file_regions(spec)


def resolve_regions(spec: str, root: Path | str | None) -> RegionSource:
    """``auto`` (synth.json if ``root`` has one, else diff), ``synth``, ``diff`` or a JSON path.

    For a given dataset root; the library and the CLI resolve from the clips instead
    (:func:`regions_for_clips`), which finds the same synth.json from the clips' folders.
    """
    if spec == "auto":
        spec = "synth" if root is not None and (Path(root) / "synth.json").is_file() else "diff"
    if spec == "synth":
        if root is None:
            raise ConfigError("--regions synth needs the dataset --root that holds synth.json.")
        return synth_regions(root)
    if spec == "diff":
        return RegionSource("diff")
    return boxes_file_regions(spec)


def _to_input(box: list[float], frame_wh: tuple[int, int], pre: Preprocessing) -> list[float]:
    """A box in frame pixels -> input pixels, through the same resize as the frame."""
    (iw, ih), (h, w) = frame_wh, pre.input_size
    x0, y0, x1, y1 = box
    if pre.resize_mode == "stretch":
        sx, sy, left, top = w / iw, h / ih, 0.0, 0.0
    else:  # centre crop after scaling the short side (mer_cache.frames.resize_image)
        short = round(min(h, w) * 256 / 224)
        scale = short / min(iw, ih)
        nw, nh = max(w, round(iw * scale)), max(h, round(ih * scale))
        sx, sy, left, top = nw / iw, nh / ih, (nw - w) // 2, (nh - h) // 2
    return [x0 * sx - left, y0 * sy - top, x1 * sx - left, y1 * sy - top]


def _frame_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = torch.from_numpy(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean(0))  # (H, W)
    k = DIFF_SMOOTH_PX
    return F.avg_pool2d(d[None, None], k, stride=1, padding=k // 2,
                        count_include_pad=False)[0, 0].numpy()


def frame_indices(clip: Clip, source: RegionSource, pre: Preprocessing,
                  load: FrameLoader | None = None) -> tuple[int, int]:
    """(onset, apex) of a clip: synth.json's, the annotation's, or the most-changed frame.

    ``load`` reads a frame as the trunk gets it (default: :func:`mer_cache.frames.load_frame`).
    """
    if clip.clip_id in source.apex:
        return source.onset[clip.clip_id], source.apex[clip.clip_id]
    onset = clip.onset if clip.onset is not None else 0
    if clip.apex is not None:
        return onset, clip.apex
    # no apex annotated (SMIC): the frame that differs most from the onset frame
    load = load or (lambda path: load_frame(path, pre))
    first = load(clip.frames[onset])
    diffs = [float(_frame_diff(first, load(p)).mean()) for p in clip.frames]
    return onset, int(np.argmax(diffs))


def _through_alignment(box: list[float], alignment: ClipAlignment) -> list[float]:
    """A box in raw frame pixels -> the axis-aligned box around it in the aligned crop."""
    m = np.asarray(alignment.matrix, dtype=np.float64)  # (2, 3), pixel centres -> centres
    x0, y0, x1, y1 = box
    # box edges sit half a pixel from the centres the warp maps
    corners = np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]]) - 0.5  # (4, 2)
    q = corners @ m[:, :2].T + m[:, 2] + 0.5  # (4, 2)
    return [q[:, 0].min(), q[:, 1].min(), q[:, 0].max(), q[:, 1].max()]


def region_mask(clip: Clip, source: RegionSource, pre: Preprocessing, *,
                onset_frame: np.ndarray, apex_frame: np.ndarray,
                alignment: ClipAlignment | None = None) -> np.ndarray | None:
    """Boolean ``(H, W)`` mask of the moving regions at the input size, or None if none.

    ``alignment``: the clip's face alignment, when the frames are its aligned crops.
    """
    h, w = pre.input_size
    if source.kind == "diff":
        d = _frame_diff(onset_frame, apex_frame)
        if not d.max() > 0:
            return None
        return d >= max(np.quantile(d, 1 - DIFF_TOP_SHARE), 1e-6)
    boxes = source.boxes.get(clip.clip_id) or []
    if not boxes:
        return None
    if alignment is not None:
        frame_wh = (alignment.crop_px, alignment.crop_px)
        boxes = [_through_alignment(b, alignment) for b in boxes]
    else:
        with Image.open(clip.frames[0]) as img:
            frame_wh = img.size
    mask = np.zeros((h, w), bool)
    ys, xs = np.mgrid[0:h, 0:w] + 0.5  # pixel centres
    for box in boxes:
        x0, y0, x1, y1 = _to_input(box, frame_wh, pre)
        mask |= (xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1)
    return mask if mask.any() else None


def focus_score(cam: np.ndarray, mask: np.ndarray) -> float:
    """Share of CAM mass inside ``mask`` (NaN when the map is all zero)."""
    total = float(cam.sum())
    return float(cam[mask].sum()) / total if total > 0 else float("nan")
