"""MTCNN (Zhang et al. 2016): a three-stage cascade giving face boxes and 5 landmarks.

A small torch port of the P/R/O-Nets and the cascade of ``facenet-pytorch`` 2.6.0 (MIT,
Copyright (c) 2019 Timothy Esler), whose wheel ships the weights as torch state dicts
(``facenet_pytorch/data/{pnet,rnet,onet}.pt``). That package pins torch < 2.3 and
numpy < 2, so it cannot be installed beside mer-cache; its weights are fetched from its
wheel instead (:mod:`mer_cache.faces.weights`). Module and parameter names match the
state dicts, so ``load_state_dict(strict=True)`` checks every shape.

Landmarks come in the order left eye, right eye, nose, left mouth corner, right mouth
corner (left/right as seen in the image).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torchvision.ops import nms


class PNet(nn.Module):
    """Proposal net: fully convolutional, scores 12x12 windows at stride 2."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, 1)  # face / not face
        self.conv4_2 = nn.Conv2d(32, 4, 1)  # box regression

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), torch.softmax(self.conv4_1(x), dim=1)


class RNet(nn.Module):
    """Refinement net on 24x24 crops."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))  # (N, 64, 3, 3)
        # The weights come from Caffe/TF, which flatten (W, H, C): permute before flattening.
        x = self.prelu4(self.dense4(x.permute(0, 3, 2, 1).reshape(len(x), -1)))
        return self.dense5_2(x), torch.softmax(self.dense5_1(x), dim=1)


class ONet(nn.Module):
    """Output net on 48x48 crops: final score, box and 5 landmarks."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)  # 5 x then 5 y, relative to the box

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))  # (N, 128, 3, 3)
        x = self.prelu5(self.dense5(x.permute(0, 3, 2, 1).reshape(len(x), -1)))
        return self.dense6_2(x), self.dense6_3(x), torch.softmax(self.dense6_1(x), dim=1)


@dataclass(frozen=True)
class Detections:
    """Faces found in one image, best score first."""

    boxes: np.ndarray  # (N, 4) x1, y1, x2, y2 in pixels
    scores: np.ndarray  # (N,)
    landmarks: np.ndarray  # (N, 5, 2) x, y: eyes, nose, mouth corners

    def __len__(self) -> int:
        return len(self.scores)


def _normalize(x: torch.Tensor) -> torch.Tensor:
    return (x - 127.5) * 0.0078125  # the range the nets were trained on


def _square(boxes: torch.Tensor) -> torch.Tensor:
    """Grow each box to a square around its centre (the R/O-Nets take square crops)."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = torch.maximum(w, h)
    x1 = boxes[:, 0] + (w - side) / 2
    y1 = boxes[:, 1] + (h - side) / 2
    return torch.stack([x1, y1, x1 + side, y1 + side], dim=1)


def _regress(boxes: torch.Tensor, reg: torch.Tensor) -> torch.Tensor:
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    return boxes + reg * torch.stack([w, h, w, h], dim=1)


_INT32_PIXELS = (2**31 - 1) // 255  # images up to this size sum to an int32


class _AreaSampler:
    """Area-interpolated resizes of one 8-bit image, read from its integral image.

    Equal bit for bit to ``interpolate(img[..., y0:y1, x0:x1], size, mode="area")`` on the
    image as float32 (PyTorch's adaptive average pooling: window ``[floor(i*n/m),
    ceil((i+1)*n/m))``, its float32 sum divided by the window's height, then by its width),
    because a window's sum of 8-bit pixels is an integer: exact in the integral
    image, and exact in float32 below 2**24, i.e. for windows under 65,000 pixels (the
    detector's are at most 30x30). Hand-written because no library resamples this way from
    an integral image. On a 640x360 frame (one thread) the pyramid and crops took ~17 ms of
    the cascade's ~34 ms as adaptive pooling, ~4 ms this way (tested equal in
    ``tests/test_faces_mtcnn_area.py``).
    """

    def __init__(self, rgb: np.ndarray) -> None:
        import cv2

        self.h, self.w = rgb.shape[:2]
        # (H + 1, W + 1, 3), exact: int32 while the whole image's sum fits in it
        depth = cv2.CV_32S if rgb.shape[0] * rgb.shape[1] <= _INT32_PIXELS else cv2.CV_64F
        self.ii = cv2.integral(np.ascontiguousarray(rgb), sdepth=depth)

    @staticmethod
    def _bounds(lo: np.ndarray, hi: np.ndarray, n_out: int) -> tuple[np.ndarray, np.ndarray]:
        n_in, i = (hi - lo)[:, None], np.arange(n_out)[None]
        return lo[:, None] + (i * n_in) // n_out, lo[:, None] + ((i + 1) * n_in + n_out - 1) // n_out

    def resize(self, windows: np.ndarray, oh: int, ow: int) -> torch.Tensor:
        """``(N, 3, oh, ow)`` float32, channels-last: each window ``(y0, y1, x0, x1)`` resized."""
        w = np.asarray(windows, dtype=np.int64).reshape(-1, 4)
        ys, ye = self._bounds(w[:, 0], w[:, 1], oh)
        xs, xe = self._bounds(w[:, 2], w[:, 3], ow)
        if len(w) == 1:  # a pyramid level: rows, then columns (contiguous gathers)
            rows = self.ii[ye[0]] - self.ii[ys[0]]  # (oh, W + 1, 3)
            total = (rows[:, xe[0]] - rows[:, xs[0]])[None].astype(np.float32)
        else:  # crops: corners by flat index (2.3x faster than 2-D fancy indexing)
            flat, stride = self.ii.reshape(-1, 3), self.w + 1
            r0, r1 = (ys * stride)[:, :, None], (ye * stride)[:, :, None]
            c0, c1 = xs[:, None], xe[:, None]

            def at(index: np.ndarray) -> np.ndarray:
                return np.take(flat, index, axis=0)
            total = (at(r1 + c1) - at(r0 + c1) - at(r1 + c0) + at(r0 + c0)).astype(np.float32)
        kh = (ye - ys).astype(np.float32)[:, :, None, None]
        kw = (xe - xs).astype(np.float32)[:, None, :, None]
        return torch.from_numpy(total / kh / kw).permute(0, 3, 1, 2)


def _crops(area: _AreaSampler, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Crops of the image inside ``boxes`` (clipped to the image), resized by area.

    Area resampling as facenet-pytorch's ``interpolate(mode="area")``: OpenCV's INTER_AREA
    here and in the pyramid moved the landmarks of a still face between noisy copies more
    (rms 0.54 against 0.36 px in a 360 px crop).
    """
    h, w = area.h, area.w
    windows, blank = [], []
    for x1, y1, x2, y2 in boxes.trunc().int().tolist():
        x1, y1, x2, y2 = max(x1, 1), max(y1, 1), min(x2, w), min(y2, h)
        empty = x2 <= x1 - 1 or y2 <= y1 - 1  # empty after clipping: give the net a blank
        blank.append(empty)
        windows.append((0, 1, 0, 1) if empty else (y1 - 1, y2, x1 - 1, x2))
    out = area.resize(np.array(windows), size, size)
    out[torch.tensor(blank, dtype=torch.bool)] = 0
    return _normalize(out).contiguous(memory_format=torch.channels_last)


def _nms_min(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """NMS by intersection over the *smaller* area (MTCNN's last stage: drops nested boxes)."""
    x1, y1, x2, y2 = boxes.T
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(scores)
    keep = []
    while order.size:
        i, rest = order[-1], order[:-1]
        iw = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        ih = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        overlap = iw * ih / np.minimum(area[i], area[rest])
        keep.append(i)
        order = rest[overlap <= threshold]
    return np.asarray(keep, dtype=np.int64)


# A face the first pass finds ends the scan only when the O-Net is this sure of it. A less
# sure one came from a coarse box the finer levels improve on: on 1 of 128 synthetic first
# frames the first pass alone kept a face of score 0.79 whose landmarks lay 11 px from the
# whole scan's (score 0.99).
FIRST_PASS_SCORE = 0.95


class MTCNN(nn.Module):
    """The cascade. Defaults are facenet-pytorch's (thresholds 0.6/0.7/0.7, factor 0.709).

    Runs channels-last (:meth:`channels_last`): PyTorch's CPU max-pool is ~13x faster on
    NHWC than on NCHW for these small maps (0.05 against 0.7 ms for the O-Net's first pool
    on 4 faces) and a detection 1.6x faster; the layout changes no value. The input frame
    permuted from ``(H, W, 3)`` is channels-last already.
    """

    def __init__(self, *, min_face_px: int = 20, thresholds=(0.6, 0.7, 0.7),
                 factor: float = 0.709, first_pass: float | None = None) -> None:
        super().__init__()
        self.pnet, self.rnet, self.onet = PNet(), RNet(), ONet()
        self.min_face_px, self.thresholds, self.factor = min_face_px, tuple(thresholds), factor
        self.first_pass = first_pass

    def channels_last(self) -> "MTCNN":
        return self.to(memory_format=torch.channels_last)

    @torch.inference_mode()
    def detect(self, rgb: np.ndarray) -> Detections:
        """Faces in one ``(H, W, 3)`` uint8 RGB image (:meth:`detect_many` of one)."""
        return self.detect_many([rgb])[0]

    @torch.inference_mode()
    def detect_many(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """Faces in each of several ``(H, W, 3)`` uint8 RGB images.

        Images of one size go through each net as one batch, so the cascade's many small
        operations are paid once per batch rather than per image (a clip's first frame per
        clip: a dataset's frames share a size). A face comes out as :meth:`detect` of its
        image alone gives it, but for rounding: a convolution may sum in another order for
        another batch size (landmarks within 0.001 px, tested).

        With ``first_pass`` (a fraction of the short side), the P-Net looks first only at
        the pyramid levels that see faces at least that large; the smaller levels, which
        hold most of the pyramid's pixels, are scanned only for images where the cascade
        finds no face there of score ``FIRST_PASS_SCORE`` or more. The levels are the full pyramid's (a subset, not a coarser
        pyramid: a pyramid started at another scale moved the landmarks by a median 3.8 px
        on real frames), so a large face comes out as the full scan gives it; smaller faces
        beside a large one are then not looked for.
        """
        for rgb in images:
            if rgb.dtype != np.uint8:  # the exact area resampling needs 8-bit pixels
                raise ValueError(f"MTCNN.detect takes uint8 RGB, got {rgb.dtype}.")
        out: list[Detections] = [None] * len(images)  # type: ignore[list-item]
        by_size: dict[tuple, list[int]] = {}
        for i, rgb in enumerate(images):
            by_size.setdefault(rgb.shape[:2], []).append(i)
        for members in by_size.values():
            found = self._detect_same_size([_AreaSampler(images[i]) for i in members])
            for i, det in zip(members, found):
                out[i] = det
        return out

    def _detect_same_size(self, imgs: list[_AreaSampler]) -> list[Detections]:
        scales = self._scales(imgs[0].h, imgs[0].w)
        coarse_found: list[list[torch.Tensor]] = [[] for _ in imgs]
        result: list[Detections | None] = [None] * len(imgs)
        todo = list(range(len(imgs)))
        if self.first_pass is not None:
            largest = 12.0 / (self.first_pass * min(imgs[0].h, imgs[0].w))  # P-Net sees 12 px
            coarse = [s for s in scales if s <= largest]
            if 0 < len(coarse) < len(scales):
                scales = [s for s in scales if s > largest]
                for s in coarse:
                    for k, cand in enumerate(self._level(imgs, s)):
                        coarse_found[k].append(cand)
                for k, det in enumerate(self._cascade(imgs, coarse_found)):
                    if len(det) and det.scores.max() >= FIRST_PASS_SCORE:
                        result[k] = det
                todo = [k for k in todo if result[k] is None]
        if todo:
            fine: list[list[torch.Tensor]] = [[] for _ in todo]
            for s in scales:
                for j, cand in enumerate(self._level([imgs[k] for k in todo], s)):
                    fine[j].append(cand)
            # fine levels first, as the full scan orders them (NMS keeps the first of equal scores)
            dets = self._cascade([imgs[k] for k in todo],
                                 [fine[j] + coarse_found[k] for j, k in enumerate(todo)])
            for k, det in zip(todo, dets):
                result[k] = det
        return result  # type: ignore[return-value]

    def _scales(self, h: int, w: int) -> list[float]:
        scale = 12.0 / self.min_face_px  # PNet's 12 px window sees faces of min_face_px
        side, out = min(h, w) * scale, []
        while side >= 12:
            out.append(scale)
            scale *= self.factor
            side *= self.factor
        return out

    def _level(self, imgs: list[_AreaSampler], scale: float) -> list[torch.Tensor]:
        """P-Net candidates ``(N, 9)`` (box, score, regression) of each image at one scale."""
        h, w = imgs[0].h, imgs[0].w
        size, whole = (int(h * scale + 1), int(w * scale + 1)), np.array([0, h, 0, w])
        batch = [img.resize(whole, *size) for img in imgs]
        reg, prob = self.pnet(_normalize(batch[0] if len(batch) == 1 else torch.cat(batch)))
        out = []
        for b in range(len(imgs)):
            ys, xs = torch.nonzero(prob[b, 1] >= self.thresholds[0], as_tuple=True)
            if not len(ys):
                out.append(torch.zeros(0, 9))
                continue
            cells = torch.stack([xs, ys], dim=1).float()
            q1 = ((2 * cells + 1) / scale).floor()  # stride 2, cell 12
            q2 = ((2 * cells + 12) / scale).floor()
            cand = torch.cat([q1, q2, prob[b, 1, ys, xs, None], reg[b, :, ys, xs].T], dim=1)
            out.append(cand[nms(cand[:, :4], cand[:, 4], 0.5)])
        return out

    def _cascade(self, imgs: list[_AreaSampler], found: list[list[torch.Tensor]]) -> list[Detections]:
        boxes = self._refine(imgs, [self._propose(f) for f in found])
        return self._output(imgs, boxes)

    @staticmethod
    def _propose(found: list[torch.Tensor]) -> torch.Tensor:
        """One image's level candidates merged across scales, regressed and squared."""
        cand = torch.cat(found) if found else torch.zeros(0, 9)
        cand = cand[nms(cand[:, :4], cand[:, 4], 0.7)]
        boxes = _square(_regress(cand[:, :4], cand[:, 5:9]))
        return torch.cat([boxes, cand[:, 4:5]], dim=1)

    @staticmethod
    def _batched(net: nn.Module, imgs: list[_AreaSampler], boxes: list[torch.Tensor],
                 size: int) -> list[tuple[torch.Tensor, ...] | None]:
        """``net`` on the crops of every image's boxes in one batch, split back per image
        (None for an image without boxes)."""
        crops = [_crops(img, b[:, :4], size) for img, b in zip(imgs, boxes) if len(b)]
        if not crops:
            return [None] * len(imgs)
        outs = net(crops[0] if len(crops) == 1 else torch.cat(crops))
        parts = zip(*(o.split([len(b) for b in boxes if len(b)]) for o in outs))
        return [next(parts) if len(b) else None for b in boxes]

    def _refine(self, imgs: list[_AreaSampler], boxes: list[torch.Tensor]) -> list[torch.Tensor]:
        out = []
        for b, got in zip(boxes, self._batched(self.rnet, imgs, boxes, 24)):
            if got is None:
                out.append(b)
                continue
            reg, prob = got
            ok = prob[:, 1] > self.thresholds[1]
            b = torch.cat([b[ok, :4], prob[ok, 1:2]], dim=1)
            reg = reg[ok]
            keep = nms(b[:, :4], b[:, 4], 0.7)
            out.append(torch.cat([_square(_regress(b[keep, :4], reg[keep])), b[keep, 4:5]], dim=1))
        return out

    def _output(self, imgs: list[_AreaSampler], boxes: list[torch.Tensor]) -> list[Detections]:
        out = []
        for b, got in zip(boxes, self._batched(self.onet, imgs, boxes, 48)):
            if got is None:
                out.append(Detections(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2))))
                continue
            reg, pts, prob = got
            ok = prob[:, 1] > self.thresholds[2]
            b, reg, pts, score = b[ok, :4], reg[ok], pts[ok], prob[ok, 1]
            w = (b[:, 2] - b[:, 0] + 1)[:, None]
            h = (b[:, 3] - b[:, 1] + 1)[:, None]
            xs = w * pts[:, :5] + b[:, 0:1] - 1
            ys = h * pts[:, 5:] + b[:, 1:2] - 1
            marks = torch.stack([xs, ys], dim=2)  # (N, 5, 2)
            b = _regress(b, reg)
            bn, sn, mn = b.numpy(), score.numpy(), marks.numpy()
            keep = _nms_min(bn, sn, 0.7) if len(sn) else np.zeros(0, np.int64)
            out.append(Detections(bn[keep].astype(np.float64), sn[keep].astype(np.float64),
                                  mn[keep].astype(np.float64)))
        return out
