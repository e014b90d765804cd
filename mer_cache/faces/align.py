"""One similarity transform per clip that puts the eyes, nose and mouth at fixed places.

Micro-expressions move the face by 1-3 px, so the crop must not move by itself: the
transform is estimated ONCE per clip from its first frames with a face (by default the
first, i.e. the onset frame; with ``ref_frames`` > 1 the median of the landmarks over that
many, then a least-median-of-squares similarity fit) and the same transform warps every
frame. A frame where the face is lost keeps the clip's transform; nothing is re-detected
per frame.

The canonical face is the 5-point ArcFace template (insightface, 112x112 crops), shrunk
around the centre by ``1 / (1 + 2 * margin)`` so the crop keeps brows, forehead and chin.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from mer_cache.errors import ConfigError, DatasetError
from mer_cache.faces.mtcnn import Detections

# ArcFace's 5 points in a 112x112 crop (insightface `arcface_dst`), here as fractions.
ARCFACE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                        [41.5493, 92.3655], [70.7299, 92.2041]]) / 112.0


# How crops are made from a clip's transform, beyond FaceConfig's fields: part of the face
# stage's identity (cache fingerprints, checkpoints), so features made by an older way of
# warping are never mixed with newer ones. Raise it when the template, the warp or the
# detector's sampling changes what a crop holds. 2: faces larger than the crop are warped
# at native size and area-resized; points found on a downscaled copy are mapped back
# through pixel centres. (Identities written before it carry no "geometry".)
GEOMETRY = 2


class FaceError(DatasetError):
    """A clip's face could not be found or is unusable; only that clip fails."""


@dataclass(frozen=True)
class FaceConfig:
    """How faces are found and aligned; every field enters the cache fingerprint."""

    # The transform comes from the first ``ref_frames`` frames where a face is found, among
    # the clip's first ``search_frames``. One frame places a still face within 0.36 px rms
    # (noisy copies, 360 px crop) and five within 0.09 px, at five times the detection cost;
    # the crop never moves within a clip either way.
    ref_frames: int = 1
    search_frames: int = 5
    margin: float = 0.2  # canvas border around the template, as a fraction of its side
    min_eye_distance_px: float = 16.0  # below this a face is too small to keep 1-3 px motion
    # Detection runs on a copy with this short side (a SAMM frame is 2040x1088) and looks
    # for faces of at least min_face_px there, i.e. >= 11 % of the short side: MER faces
    # fill half of it or more (CASME II raw: ~280 of 480 px). A 240 px copy detected 1.7x
    # faster, but the landmarks then follow coarser boxes: a still face's transform moved
    # by 3.5-6.3 px rms between noisy copies (min face 40-48 px), against 0.36 px at 360.
    detect_short_side_px: int = 360
    min_face_px: int = 40
    # Faces of at least this fraction of the short side are looked for first, on the
    # pyramid's coarse levels only; the finer levels (most of its pixels) are scanned only
    # when none is found there (MTCNN ``first_pass``; None: always the whole pyramid). MER
    # faces fill half the short side or more. On the 264 real and synthetic frames of
    # benchmarks/face_detect.py the face came out as the whole scan gives it (landmarks
    # within 0.0001 px) at 1.4-1.9x the speed.
    first_pass: float | None = 0.25
    detector: str = "mtcnn-facenet-pytorch-2.6.0"
    # Per-frame translation-only stabilisation against the clip's first frame
    # (mer_cache.faces.stabilise); off by default, see README for what it measured.
    stabilise: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.ref_frames <= self.search_frames:
            raise ConfigError(f"Face reference frames must be within 1..search_frames "
                              f"({self.search_frames}), got {self.ref_frames}.")
        if self.first_pass is not None and not 0 < self.first_pass <= 1:
            raise ConfigError(f"The face first pass is a fraction of the frame's short side "
                              f"within (0, 1], got {self.first_pass}.")
        if not 0 <= self.margin <= 1:
            raise ConfigError(f"The face margin must be within 0..1, got {self.margin}.")

    def identity(self) -> dict:
        return asdict(self)

    def template(self) -> np.ndarray:
        """(5, 2) target positions in the unit square."""
        return 0.5 + (ARCFACE_112 - 0.5) / (1 + 2 * self.margin)


@dataclass(frozen=True)
class ClipAlignment:
    """The per-clip result stored in the cache's clip table (``face`` column)."""

    matrix: list | None  # 2x3, raw frame pixels -> crop pixels; None when the clip failed
    crop_px: int  # side of the square crop the matrix maps into
    landmarks: list | None  # (5, 2) median landmarks in raw pixels
    box: list | None  # x1, y1, x2, y2 of the chosen face in the first frame it was found
    found_in: int  # reference frames with a face
    n_ref: int  # reference frames read
    max_faces: int  # most faces seen in one reference frame
    error: str | None = None

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "ClipAlignment":
        return cls(**d)


def choose_face(det: Detections, shape: tuple[int, int], previous: np.ndarray | None) -> int:
    """Index of the face to follow: nearest to ``previous`` (box), else largest and central.

    "Largest and most central": area divided by (1 + distance of the box centre from the
    image centre, in half-diagonals), so a big face at the border loses to a centred one
    only when it is not much bigger.
    """
    centres = (det.boxes[:, :2] + det.boxes[:, 2:]) / 2
    if previous is not None:
        prev_c = (previous[:2] + previous[2:]) / 2
        return int(np.argmin(np.linalg.norm(centres - prev_c, axis=1)))
    h, w = shape
    area = np.prod(det.boxes[:, 2:] - det.boxes[:, :2], axis=1)
    dist = np.linalg.norm(centres - [w / 2, h / 2], axis=1) / (np.hypot(w, h) / 2)
    return int(np.argmax(area / (1 + dist)))


def similarity_to_template(landmarks: np.ndarray, config: FaceConfig) -> tuple[np.ndarray, int]:
    """(2x3 matrix raw px -> crop px, crop side) for ``landmarks`` (5, 2) in raw pixels.

    The crop keeps the face at about its native resolution (the trunk's resize then
    downsamples it properly), bounded to 64..512 px (a larger face is area-resized down to
    512 by :func:`warp_frame`).
    """
    import cv2

    unit, _ = cv2.estimateAffinePartial2D(landmarks.astype(np.float32),
                                          config.template().astype(np.float32),
                                          method=cv2.LMEDS)
    if unit is None:
        raise FaceError("the landmarks are degenerate (no similarity fits them)")
    scale = float(np.sqrt(abs(np.linalg.det(unit[:, :2]))))  # unit square per raw pixel
    crop_px = int(np.clip(round(1 / scale), 64, 512))
    return unit * crop_px, crop_px


SHRINK_BELOW = 0.9  # warps that shrink more than this go through the face's native size


def warp_frame(rgb: np.ndarray, alignment: ClipAlignment) -> np.ndarray:
    """Warp one raw frame ``(H, W)`` or ``(H, W, 3)`` uint8 into the clip's aligned crop.

    A face larger than the 512 px crop (SAMM's 2040x1088 frames) would be shrunk by the
    bilinear warp alone, which samples instead of averaging and aliases sensor noise into
    the crop: such a warp goes to the face's native size first, then is area-resized.
    Crops that keep the native size (every face under ~250 px between the eyes) warp once.
    """
    import cv2

    m = np.asarray(alignment.matrix, dtype=np.float64)
    side = alignment.crop_px
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))  # crop px per raw px
    if scale >= SHRINK_BELOW:
        return cv2.warpAffine(rgb, m, (side, side), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    native = round(side / scale)
    ratio = side / native
    # native pixel j is averaged into crop position (j + 0.5) * ratio - 0.5 (pixel centres)
    big_m = np.hstack([m[:, :2] / ratio, (m[:, 2:] + 0.5) / ratio - 0.5])
    big = cv2.warpAffine(rgb, big_m, (native, native), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return cv2.resize(big, (side, side), interpolation=cv2.INTER_AREA)


# What to do when a clip has no usable face, as extract says it; predict and embed pass
# their own (their remedy is another run or another image, not another extraction).
EXTRACT_ADVICE = "Check the clip's frames, or extract this dataset with --face none."


def align_from_detections(dets: list[tuple[Detections, tuple[int, int]]],
                          config: FaceConfig, clip_id: str, *, searched: str | None = None,
                          advice: str = EXTRACT_ADVICE) -> ClipAlignment:
    """Fit the clip's transform from the detections of its reference frames.

    A failure is returned in ``error``: ``"{clip_id}: {what}. {advice}"``, where the
    no-face case says it searched ``searched`` (default: the clip's first frames).
    """
    previous, marks, first_box = None, [], None
    for det, shape in dets:
        if not len(det):
            continue
        k = choose_face(det, shape, previous)
        previous = det.boxes[k]
        first_box = previous if first_box is None else first_box
        marks.append(det.landmarks[k])
    max_faces = max((len(d) for d, _ in dets), default=0)
    common = dict(found_in=len(marks), n_ref=len(dets), max_faces=max_faces)
    if not marks:
        searched = searched or (f"its first {len(dets)} frames (the reference frames the "
                                "alignment is estimated from)")
        short = min(dets[0][1]) if dets else config.detect_short_side_px
        smallest = config.min_face_px * max(1.0, short / config.detect_short_side_px)
        return ClipAlignment(None, 0, None, None, **common, error=(
            f"{clip_id}: no face found in {searched} (faces narrower than about "
            f"{smallest:.0f} px are not looked for in these frames). {advice}"))
    median = np.median(np.stack(marks), axis=0)  # (5, 2), robust to one bad frame
    eye_px = float(np.linalg.norm(median[1] - median[0]))
    if eye_px < config.min_eye_distance_px:
        return ClipAlignment(None, 0, _tup(median), _tup(first_box), **common, error=(
            f"{clip_id}: the face is too small to embed ({eye_px:.1f} px between the eyes, "
            f"at least {config.min_eye_distance_px:g} px needed to keep motions of 1-3 px). "
            "Use the full-resolution frames or image."))
    try:
        matrix, crop_px = similarity_to_template(median, config)
    except FaceError as exc:
        return ClipAlignment(None, 0, _tup(median), _tup(first_box), **common,
                             error=f"{clip_id}: {exc}. {advice}")
    return ClipAlignment(_tup(matrix), crop_px, _tup(median), _tup(first_box), **common)


def _tup(a) -> list:
    """JSON-ready nested lists (the clip table is stored as JSON)."""
    return np.asarray(a, dtype=float).round(8).tolist()
