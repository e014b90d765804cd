"""Action units (FACS AUs) as smooth local displacement fields plus faint fold shading.

Each AU moves skin around a few landmarks of the subject (brows, cheeks, mouth corners,
lower lip) with Gaussian-weighted displacement vectors, and deepens the skin folds that
real muscle action creates there (glabellar lines for AU4, nasolabial folds for AU12,
forehead lines for AU1/AU2, crow's feet for AU6). Both are local, so the region an AU
changes has a well-defined bounding box that later scores Grad-CAM focus against.

Classes follow the issue: negative = AU4 + AU15, positive = AU6 + AU12,
surprise = AU1 + AU2 + AU26 (slight), non_micro = no AU.
"""

from __future__ import annotations

import numpy as np

from mer_cache.synth.face import CROP_PX, FaceGeometry, gauss

ACTION_UNITS: dict[str, str] = {
    "1": "inner brow raiser",
    "2": "outer brow raiser",
    "4": "brow lowerer",
    "6": "cheek raiser",
    "12": "lip corner puller",
    "15": "lip corner depressor",
    "26": "jaw drop",
}

CLASSES = ("negative", "positive", "surprise", "non_micro")

CLASS_ACTION_UNITS: dict[str, tuple[str, ...]] = {
    "negative": ("4", "15"),
    "positive": ("6", "12"),
    "surprise": ("1", "2", "26"),
    "non_micro": (),
}

# Relative strength of each AU inside its class, drawn per clip; the leading AU is 1.
# AU26 stays low: the issue asks for a slight jaw drop.
AU_WEIGHT_RANGE: dict[str, tuple[float, float]] = {
    "1": (1.0, 1.0), "2": (0.7, 1.0), "26": (0.3, 0.6),
    "4": (1.0, 1.0), "15": (0.6, 1.0),
    "12": (1.0, 1.0), "6": (0.5, 0.9),
}

FOLD_DARKENING = 0.12  # fold shading at a 3 px apex: at most 12 % darker skin
FIELD_THRESHOLD = 0.15  # a pixel belongs to an AU's region above 15 % of the AU's peak


def _segment_distance(X, Y, a, b):
    """Distance from points to the segment a-b."""
    ax, ay = a
    dx, dy = b[0] - ax, b[1] - ay
    t = np.clip(((X - ax) * dx + (Y - ay) * dy) / (dx * dx + dy * dy), 0, 1)
    return np.hypot(X - ax - t * dx, Y - ay - t * dy)


def _line(dist, width=0.7):
    return np.exp(-((dist / width) ** 2))


def au_field(g: FaceGeometry, au: str, X, Y, *, side_gain=(1.0, 1.0)):
    """Displacement (peak about 1 px) and fold shading (peak about 1) of one AU.

    Parameters
    ----------
    g : FaceGeometry
        The subject.
    au : str
        Action unit number, one of :data:`ACTION_UNITS`.
    X, Y : ndarray
        Crop-pixel coordinates where the field is wanted.
    side_gain : tuple of float
        Multipliers for the image-left and image-right halves (expressions are rarely
        perfectly symmetric).

    Returns
    -------
    disp : ndarray, shape (2, *X.shape)
        Forward displacement (dx, dy) in pixels per unit intensity.
    fold : ndarray, shape X.shape
        Darkening pattern per unit intensity.
    """
    lm = g.landmarks()
    dx = np.zeros_like(X)
    dy = np.zeros_like(X)
    fold = np.zeros_like(X)
    for name, s, gain in (("l", -1.0, side_gain[0]), ("r", 1.0, side_gain[1])):
        if au == "1":
            w = gauss(X, Y, *lm[f"brow_inner_{name}"], 5.5, 6.0) * gain
            dy -= w
            fold += gain * gauss(X, Y, g.cx + s * 6, g.brow_y - 10, 7, 6) * sum(
                _line(Y - (g.brow_y - k)) for k in (7, 11, 15))
        elif au == "2":
            w = gauss(X, Y, *lm[f"brow_outer_{name}"], 6.0) * gain
            dy -= w
            ox = g.cx + s * (g.eye_dx + g.brow_dx + 4)
            fold += gain * gauss(X, Y, ox, g.brow_y - 10, 6, 6) * sum(
                _line(Y - (g.brow_y - k + 0.1 * s * (X - ox))) for k in (8, 12))
        elif au == "4":
            w = gauss(X, Y, *lm[f"brow_inner_{name}"], 6.0, 5.0) * gain
            dx += -s * 0.45 * w
            dy += 0.9 * w
            fold += gain * _line(X - (g.cx + s * 2.5), 0.6) * gauss(
                X, Y, g.cx, g.brow_y + 1, 40, 3.5)
        elif au == "6":
            w = gauss(X, Y, *lm[f"cheek_{name}"], 8.0, 6.0) * gain
            dy -= w
            ox, oy = lm[f"eye_outer_{name}"]
            start = (ox + s * 2.5, oy)
            for ang in (-0.45, 0.0, 0.45):
                end = (start[0] + s * 5 * np.cos(ang), start[1] + 5 * np.sin(ang))
                fold += gain * 0.7 * _line(_segment_distance(X, Y, start, end), 0.6)
            ex, ey = lm[f"eye_{name}"]
            u = (X - ex) / g.eye_hw
            fold += gain * 0.6 * _line(Y - (ey + g.eye_low + 2.5 + 1.5 * u**2)) * np.clip(
                1 - u**2, 0, 1)
        elif au == "12":
            w = gauss(X, Y, *lm[f"mouth_corner_{name}"], 5.0) * gain
            dx += s * 0.55 * w
            dy -= 0.85 * w
            cx_, cy_ = lm[f"mouth_corner_{name}"]
            top = (g.cx + s * (g.nose_hw + 1.5), g.nose_y - 1)
            mid = (cx_ + s * 3.5, (g.nose_y + cy_) / 2 + 1)
            low = (cx_ + s * 3.5, cy_ + 4)
            dist = np.minimum(_segment_distance(X, Y, top, mid), _segment_distance(X, Y, mid, low))
            fold += gain * _line(dist, 0.9)
        elif au == "15":
            w = gauss(X, Y, *lm[f"mouth_corner_{name}"], 5.0, 4.5) * gain
            dx += s * 0.15 * w
            dy += w
            cx_, cy_ = lm[f"mouth_corner_{name}"]
            fold += gain * 0.6 * gauss(X, Y, cx_ + s, cy_ + 4, 3.0, 2.5)
        elif au == "26":
            if s > 0:
                continue  # one field for the whole jaw, added once
            mean_gain = (side_gain[0] + side_gain[1]) / 2
            below = 0.5 + 0.5 * np.tanh((Y - g.mouth_y) / 1.6)  # upper lip stays, lower lip drops
            w = below * gauss(X, Y, g.cx, g.mouth_y + 11, g.mouth_hw + 2, 11) * mean_gain
            dy += w
        else:
            raise KeyError(f"unknown action unit {au!r}")
    return np.stack([dx, dy]), fold


def crop_grid():
    """Crop-pixel coordinates ``(X, Y)`` of the output pixel centres, each (128, 128)."""
    c = np.arange(CROP_PX, dtype=np.float32) + 0.5
    return np.meshgrid(c, c)


def au_region(g: FaceGeometry, au: str) -> tuple[int, int, int, int]:
    """Bounding box ``(x0, y0, x1, y1)`` (pixels, x1/y1 exclusive) of what ``au`` changes.

    The box holds every pixel where the AU's displacement or fold shading exceeds
    :data:`FIELD_THRESHOLD` of its peak, at the subject's neutral pose.
    """
    X, Y = crop_grid()
    disp, fold = au_field(g, au, X, Y)
    mag = np.hypot(disp[0], disp[1])
    inside = mag > FIELD_THRESHOLD * mag.max()
    if fold.max() > 0:
        inside |= fold > FIELD_THRESHOLD * fold.max()
    rows, cols = np.nonzero(inside)
    return int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1


def expression_field(g: FaceGeometry, weights: dict[str, float], *, amplitude_px: float,
                     side_gain=(1.0, 1.0)):
    """Apex displacement on the crop grid, scaled so its largest vector is ``amplitude_px``.

    Returns
    -------
    disp : ndarray (2, 128, 128)
        Forward displacement at the apex, in pixels.
    fold : ndarray (128, 128)
        Darkening fraction at the apex (0 = none).
    lower_lid_raise : float
        How far the lower lids rise at the apex (0..1), from AU6.
    """
    X, Y = crop_grid()
    disp = np.zeros((2, *X.shape), np.float32)
    fold = np.zeros(X.shape, np.float32)
    for au, weight in weights.items():
        d, f = au_field(g, au, X, Y, side_gain=side_gain)
        disp += weight * d
        fold += weight * f
    peak = float(np.hypot(disp[0], disp[1]).max())
    if peak == 0.0:
        return disp, fold, 0.0
    disp *= amplitude_px / peak
    intensity = amplitude_px / 3.0
    fold = np.clip(fold, 0, 1.5) * FOLD_DARKENING * intensity
    return disp, fold, float(min(1.0, weights.get("6", 0.0) * intensity))
