"""Procedural faces: per-subject geometry and the neutral appearance layers of one subject.

A subject is a :class:`FaceGeometry` (where the eyes, brows, nose and mouth sit, in pixels
of the 128x128 crop) plus texture drawn once. :func:`build_face` renders, at twice the crop
resolution so later warps can sample below a pixel, the layers every frame of that subject
is made of: skin albedo (with brows, lips, nostrils, hair), the eyeball albedo that shows
through the lid opening, and a height field whose normals give lambertian shading. The
frame renderer (:mod:`mer_cache.synth.render`) lights these layers per clip and warps them
per frame, so a face is drawn once and moved many times.

Geometry ranges are chosen so that subjects differ by several pixels in every landmark
(standard deviation 3-4 px), more than the <= 3 px an expression moves anything: as in real
data, one frame's look says who it is, and only the change over time says the class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CROP_PX = 128  # output frames are CROP_PX x CROP_PX tight face crops
SUPERSAMPLE = 2  # layers are rendered at this multiple of the crop resolution
LAYER_PX = CROP_PX * SUPERSAMPLE


@dataclass(frozen=True)
class FaceGeometry:
    """Neutral geometry and colours of one synthetic subject (pixels of the 128 px crop)."""

    cx: float  # vertical symmetry axis of the face
    face_cy: float  # centre of the face oval
    face_hw: float  # half width of the face oval
    face_top: float  # oval half height above face_cy (the crop cuts the forehead)
    face_bottom: float  # oval half height below face_cy (chin = face_cy + face_bottom)
    jaw: float  # 0 = round oval; larger narrows the lower face
    hairline_y: float
    eye_y: float
    eye_dx: float  # half the distance between the eye centres
    eye_hw: float  # half width of the eye opening
    eye_up: float  # upper lid height above the eye line when open
    eye_low: float  # lower lid depth below the eye line
    eye_tilt: float  # outer corners higher (+) or lower (-)
    iris_r: float
    brow_gap: float  # eye line minus brow line
    brow_hw: float
    brow_thick: float
    brow_arch: float
    brow_dx: float  # brow centre shift outward from the eye centre
    nose_y: float  # nose tip
    nose_hw: float  # half width of the nose wings
    mouth_y: float  # lip line at the centre
    mouth_hw: float  # half width of the mouth (corner to centre)
    lip_up: float
    lip_low: float
    mouth_curve: float  # rest position of the corners relative to the centre (+ = down)
    skin_rgb: tuple[float, float, float]
    hair_rgb: tuple[float, float, float]
    iris_rgb: tuple[float, float, float]
    background_rgb: tuple[float, float, float]
    brow_darkness: float

    @property
    def brow_y(self) -> float:
        return self.eye_y - self.brow_gap

    def landmarks(self) -> dict[str, tuple[float, float]]:
        """Named neutral landmark points ``(x, y)``; ``_l``/``_r`` are image left/right."""
        pts: dict[str, tuple[float, float]] = {}
        for name, s in (("l", -1.0), ("r", 1.0)):
            ex = self.cx + s * self.eye_dx
            bx = ex + s * self.brow_dx
            pts[f"eye_{name}"] = (ex, self.eye_y)
            pts[f"eye_outer_{name}"] = (ex + s * self.eye_hw, self.eye_y - self.eye_tilt)
            pts[f"brow_inner_{name}"] = (bx - s * 0.8 * self.brow_hw, self.brow_y)
            pts[f"brow_outer_{name}"] = (bx + s * 0.7 * self.brow_hw,
                                         self.brow_y - 0.5 * self.brow_arch)
            pts[f"cheek_{name}"] = (ex + s * 2.0, self.eye_y + 13.0)
            pts[f"nose_wing_{name}"] = (self.cx + s * self.nose_hw, self.nose_y - 1.0)
            pts[f"mouth_corner_{name}"] = (self.cx + s * self.mouth_hw,
                                           self.mouth_y + self.mouth_curve)
        pts["nose_tip"] = (self.cx, self.nose_y)
        pts["lip_upper"] = (self.cx, self.mouth_y - self.lip_up)
        pts["lip_lower"] = (self.cx, self.mouth_y + self.lip_low)
        pts["chin"] = (self.cx, self.face_cy + self.face_bottom)
        return pts


def sample_geometry(rng: np.random.Generator) -> FaceGeometry:
    """Draw one subject's neutral geometry and colours."""
    u = rng.uniform
    # skin tone along a light-to-dark continuum, with a little hue spread
    tone = u(0.0, 1.0)
    light, dark = np.array([236.0, 196.0, 172.0]), np.array([120.0, 82.0, 60.0])
    skin = (1 - tone) * light + tone * dark
    skin = skin * (1 + rng.normal(0, 0.03, 3))
    hair_level = u(20, 95) if u() < 0.85 else u(120, 170)  # mostly dark, some fair hair
    hair = hair_level * np.array([1.0, 0.86, 0.72]) * (1 + rng.normal(0, 0.05, 3))
    iris = u(35, 110) * np.array([1.0, 0.85, 0.7]) if u() < 0.8 else u(70, 130) * np.array(
        [0.75, 0.9, 1.0])
    bg = u(60, 190) * (1 + rng.normal(0, 0.05, 3))
    eye_y = u(44, 54)
    mouth_y = eye_y + u(46, 56)
    return FaceGeometry(
        cx=u(60, 68), face_cy=u(64, 72), face_hw=u(50, 62), face_top=u(74, 86),
        face_bottom=u(52, 60), jaw=u(0.05, 0.35), hairline_y=u(4, 20),
        eye_y=eye_y, eye_dx=u(18.5, 25), eye_hw=u(8.0, 11.0), eye_up=u(3.4, 5.0),
        eye_low=u(2.3, 3.5), eye_tilt=u(-1.5, 2.0), iris_r=u(3.6, 4.6),
        brow_gap=u(10, 18), brow_hw=u(10, 14), brow_thick=u(4.0, 6.5),
        brow_arch=u(0.5, 4.0), brow_dx=u(-1, 3),
        nose_y=eye_y + u(27, 36), nose_hw=u(7, 10.5),
        mouth_y=mouth_y, mouth_hw=u(13, 20), lip_up=u(3.0, 4.5), lip_low=u(3.5, 5.5),
        mouth_curve=u(-1.0, 1.0),
        skin_rgb=tuple(float(v) for v in np.clip(skin, 0, 255)),
        hair_rgb=tuple(float(v) for v in np.clip(hair, 0, 255)),
        iris_rgb=tuple(float(v) for v in np.clip(iris, 0, 255)),
        background_rgb=tuple(float(v) for v in np.clip(bg, 0, 255)),
        brow_darkness=u(0.6, 0.95),
    )


@dataclass(frozen=True)
class FaceLayers:
    """The neutral layers of one subject at ``LAYER_PX`` resolution (canonical pose)."""

    geometry: FaceGeometry
    skin_albedo: np.ndarray  # (3, L, L) float32, 0..255: skin, brows, lips, hair, background
    eye_albedo: np.ndarray  # (3, L, L) float32: eyeballs, seen through the lid opening
    normals: np.ndarray  # (3, L, L) float32 unit surface normals (x right, y down, z out)


def layer_grid() -> tuple[np.ndarray, np.ndarray]:
    """Crop-pixel coordinates ``(X, Y)`` of the layer pixel centres, each ``(L, L)``."""
    c = (np.arange(LAYER_PX, dtype=np.float32) + 0.5) / SUPERSAMPLE
    return np.meshgrid(c, c)  # X varies along columns, Y along rows


def gauss(X, Y, x0, y0, sx, sy=None):
    """Unnormalised 2-D Gaussian bump (peak 1)."""
    sy = sx if sy is None else sy
    return np.exp(-((X - x0) ** 2 / (2 * sx * sx) + (Y - y0) ** 2 / (2 * sy * sy)))


def coverage(signed_px, width=0.6):
    """Anti-aliased inside-ness from a signed distance in crop pixels (> 0 inside)."""
    return np.clip(signed_px / width + 0.5, 0.0, 1.0)


def smooth_noise(rng: np.random.Generator, sigma_px: float, shape=(LAYER_PX, LAYER_PX),
                 aspect: float = 1.0) -> np.ndarray:
    """White noise low-passed by a Gaussian of ``sigma_px`` layer pixels, unit std.

    ``aspect`` > 1 stretches the grain vertically (hair strands)."""
    white = rng.standard_normal(shape)
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    sx, sy = sigma_px, sigma_px * aspect
    kernel = np.exp(-2 * np.pi**2 * ((fx * sx) ** 2 + (fy * sy) ** 2))
    out = np.fft.irfft2(np.fft.rfft2(white) * kernel, s=shape)
    return (out / (out.std() + 1e-8)).astype(np.float32)


def _face_shape(g: FaceGeometry, X, Y):
    """Normalised oval radius (1 on the outline) and the oval's signed distance in px."""
    below = np.clip((Y - g.face_cy) / g.face_bottom, 0, 1)
    hw = g.face_hw * (1 - g.jaw * below**2)
    vy = np.where(Y < g.face_cy, (Y - g.face_cy) / g.face_top, (Y - g.face_cy) / g.face_bottom)
    r = np.sqrt(((X - g.cx) / hw) ** 2 + vy**2)
    return r, (1 - r) * np.minimum(hw, g.face_bottom)


def _height(g: FaceGeometry, X, Y, r):
    """Height field in px: oval dome, nose, eye sockets, brow ridge, cheeks, lips, chin."""
    h = 34 * np.sqrt(np.clip(1 - r**2, 0, 1))
    ridge_t = np.clip((Y - (g.eye_y - 2)) / (g.nose_y - g.eye_y), 0, 1)
    h = h + 7 * ridge_t * np.exp(-((X - g.cx) ** 2) / (2 * 3.2**2)) * (Y < g.nose_y + 2)
    h = h + 8 * gauss(X, Y, g.cx, g.nose_y - 2.5, 4.2)
    lm = g.landmarks()
    for side in "lr":
        ex, ey = lm[f"eye_{side}"]
        h = h - 5 * gauss(X, Y, ex, ey - 1, 10, 7) + 2.2 * gauss(X, Y, ex, g.brow_y, 11, 3.5)
        h = h + 3.5 * gauss(X, Y, *lm[f"nose_wing_{side}"], 3.0)
        h = h + 3.5 * gauss(X, Y, *lm[f"cheek_{side}"], 10, 8)
    h = h + 1.6 * gauss(X, Y, g.cx, g.mouth_y - 1.5, g.mouth_hw * 0.7, 2.2)
    h = h + 2.0 * gauss(X, Y, g.cx, g.mouth_y + 2.5, g.mouth_hw * 0.6, 2.5)
    h = h - 1.8 * gauss(X, Y, g.cx, g.mouth_y + g.lip_low + 3.5, g.mouth_hw * 0.5, 1.8)
    h = h + 3.0 * gauss(X, Y, g.cx, g.face_cy + g.face_bottom - 8, 9, 6)
    return h


def _normals(h: np.ndarray) -> np.ndarray:
    gy, gx = np.gradient(h, 1.0 / SUPERSAMPLE)  # height per crop pixel
    n = np.stack([-gx, -gy, np.ones_like(h)])
    return (n / np.linalg.norm(n, axis=0, keepdims=True)).astype(np.float32)


def _mix(base, colour, alpha):
    """Blend ``colour`` (3,) over ``base`` (3, L, L) with per-pixel ``alpha``."""
    col = np.asarray(colour, dtype=np.float32)[:, None, None]
    return base * (1 - alpha) + col * alpha


def build_face(g: FaceGeometry, rng: np.random.Generator) -> FaceLayers:
    """Render the neutral layers of one subject (texture drawn from ``rng``)."""
    X, Y = layer_grid()
    r, face_sd = _face_shape(g, X, Y)
    face = coverage(face_sd, 1.0)
    lm = g.landmarks()
    # skin: tone x (large blotches + fine pores), a little redness on the cheeks and lips
    skin = np.asarray(g.skin_rgb, np.float32)[:, None, None] * np.ones((3, 1, 1), np.float32)
    grain = 0.035 * smooth_noise(rng, 10) + 0.018 * smooth_noise(rng, 0.8)
    skin = skin * (1 + grain)
    blush = sum(gauss(X, Y, *lm[f"cheek_{s}"], 9, 7) for s in "lr")
    skin = skin * (1 + 0.06 * blush * np.array([0.5, -0.6, -0.6], np.float32)[:, None, None])
    background = np.asarray(g.background_rgb, np.float32)[:, None, None] * (
        1 + 0.04 * smooth_noise(rng, 30))
    albedo = background * (1 - face) + skin * face
    # neck below the chin, in the jaw's shadow
    neck = coverage(0.5 * g.face_hw - np.abs(X - g.cx), 1.5) * (1 - face)
    neck = neck * coverage(Y - g.face_cy - 0.5 * g.face_bottom, 1.0)
    albedo = albedo * (1 - neck) + skin * 0.6 * neck
    # hair: above a hairline that dips at the temples, and a cap hugging the head down to
    # the ears (the crop cuts it at the sides)
    temple = g.hairline_y + 14 * ((X - g.cx) / g.face_hw) ** 2
    cap_r, _ = _face_shape(g, (X - g.cx) / 1.12 + g.cx, Y)
    cap = coverage((1 - cap_r) * g.face_hw, 1.5) * coverage(g.eye_y + 6 - Y, 3.0)
    hair = np.maximum(coverage(temple - Y, 2.0) * face, cap * (1 - face))
    strands = 1 + 0.25 * smooth_noise(rng, 1.2, aspect=8.0)
    albedo = albedo * (1 - hair) + np.asarray(g.hair_rgb, np.float32)[:, None, None] * strands * hair
    # brows: arched bands, thicker at the inner end, hairy grain
    for s in (-1.0, 1.0):
        bx = g.cx + s * (g.eye_dx + g.brow_dx)
        t = (X - bx) / g.brow_hw * s  # -1 inner .. +1 outer
        centre = g.brow_y - g.brow_arch * (1 - t**2) + 0.8 * t
        thick = g.brow_thick * (1.1 - 0.45 * np.clip((t + 1) / 2, 0, 1))
        band = coverage(thick / 2 - np.abs(Y - centre), 0.8) * coverage((1 - np.abs(t)) * g.brow_hw, 2.0)
        band = band * np.clip(0.75 + 0.35 * smooth_noise(rng, 0.7, aspect=0.4), 0, 1)
        albedo = _mix(albedo, np.minimum(np.asarray(g.hair_rgb), 90) * 0.7, band * g.brow_darkness)
        # upper lid crease
        ex = g.cx + s * g.eye_dx
        u = (X - ex) / (g.eye_hw * 1.1)
        crease = np.exp(-((Y - (g.eye_y - g.eye_up - 2.2 + 1.5 * u**2)) / 0.7) ** 2)
        albedo = albedo * (1 - 0.18 * crease * np.clip(1 - u**2, 0, 1))
    # nose: nostrils and wing creases
    for s in (-1.0, 1.0):
        nostril = coverage(1 - np.hypot((X - g.cx - s * g.nose_hw * 0.45) / 2.6,
                                        (Y - g.nose_y - 1.8) / 1.3), 0.35)
        albedo = albedo * (1 - 0.7 * nostril)
        wing = np.exp(-((np.hypot(X - lm[f"nose_wing_{'lr'[s > 0]}"][0], Y - g.nose_y + 1) - 3.2)
                        / 0.6) ** 2) * (Y > g.nose_y - 4)
        albedo = albedo * (1 - 0.15 * wing)
    # lips: redder and darker than skin, a cupid's bow, a dark line between the lips
    t = (X - g.cx) / g.mouth_hw
    inside = np.clip(1 - t**2, 0, 1)
    line = g.mouth_y + g.mouth_curve * t**2
    top = line - g.lip_up * inside**0.6 * (1 - 0.25 * np.exp(-(t / 0.12) ** 2))
    bottom = line + g.lip_low * inside**0.7
    lips = coverage(np.minimum(Y - top, bottom - Y), 0.6) * (inside > 0)
    lip_rgb = np.asarray(g.skin_rgb) * np.array([0.8, 0.52, 0.55])
    albedo = _mix(albedo, lip_rgb, 0.85 * lips)
    lip_line = np.exp(-((Y - line) / 0.75) ** 2) * coverage((1.08 - np.abs(t)) * g.mouth_hw, 1.0)
    albedo = albedo * (1 - 0.55 * lip_line)
    # eyeballs: sclera, iris with a dark limbal ring, pupil, catchlight, lid shadow on top
    eye = np.full((3, LAYER_PX, LAYER_PX), 1.0, np.float32) * np.array(
        [222.0, 214.0, 208.0], np.float32)[:, None, None]
    for s in (-1.0, 1.0):
        ex = g.cx + s * g.eye_dx
        d = np.hypot(X - ex, Y - g.eye_y)
        iris = coverage(g.iris_r - d, 0.5)
        ring = np.exp(-((d - g.iris_r + 0.4) / 0.6) ** 2)
        iris_col = np.asarray(g.iris_rgb, np.float32)[:, None, None] * (1 - 0.5 * ring)
        eye = eye * (1 - iris) + iris_col * iris
        eye = _mix(eye, (12, 10, 10), coverage(0.42 * g.iris_r - d, 0.4))
        eye = _mix(eye, (250, 250, 250), 0.9 * gauss(X, Y, ex - 1.2, g.eye_y - 1.3, 0.55))
        eye = eye * (1 - 0.25 * gauss(X, Y, ex + s * g.eye_hw, g.eye_y, 2.5))  # corner shade
    lid_shadow = np.exp(-np.clip(Y - (g.eye_y - g.eye_up), 0, None) / 1.6)
    eye = eye * (1 - 0.45 * lid_shadow)
    normals = _normals(_height(g, X, Y, r))
    return FaceLayers(g, np.clip(albedo, 0, 255).astype(np.float32),
                      np.clip(eye, 0, 255).astype(np.float32), normals)


def eye_opening(g: FaceGeometry, X, Y, *, openness, lower_raise):
    """Where the eyeball shows (0..1) and the upper-lid lash line, at points ``(X, Y)``.

    ``openness`` 1 = open, 0 = closed (blink); the upper lid comes down onto the lower lid.
    ``lower_raise`` 0..1 lifts the lower lid (cheek raiser, AU6).
    Returns ``(mask, lash)``.
    """
    mask = np.zeros_like(X)
    lash = np.zeros_like(X)
    for s in (-1.0, 1.0):
        ex = g.cx + s * g.eye_dx
        u = (X - ex) / g.eye_hw
        base = np.clip(1 - u**2, 0, 1)
        eye_line = g.eye_y - g.eye_tilt * np.clip(u * s, 0, 1)
        lower = eye_line + g.eye_low * (1 - 0.45 * lower_raise) * base**0.8
        upper_open = eye_line - g.eye_up * base**0.7
        upper = lower - (lower - upper_open) * openness
        m = coverage(np.minimum(Y - upper, lower - Y), 0.7) * (base > 0)
        mask = np.maximum(mask, m)
        lash = np.maximum(lash, np.exp(-((Y - upper + 0.5) / 0.9) ** 2)
                          * np.clip(base * 3, 0, 1) * (1 + 0.4 * np.clip(u * s, 0, 1)))
    return mask, np.clip(lash, 0, 1)
