"""One clip: its plan (timing, expression, nuisances) and its frames.

A :class:`ClipPlan` holds every random choice of a clip, so rendering is a pure function of
(subject layers, plan). Frames are made by lighting the subject's neutral layers once per
clip and then, per frame, sampling them bilinearly at inversely warped coordinates: head
pose (small translation and rotation) composed with the expression displacement scaled by
the onset -> apex -> offset intensity profile. The eye opening is evaluated analytically at
the warped points so blinks close the lids instead of fading.

Nuisances (every clip, independent of its class): blinks, head translation/rotation,
illumination flicker, sensor noise. Timing follows SMIC-HS: 100 fps, micro clips start and
end on a neutral frame (Bai & Goecke; SMIC).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mer_cache.synth.actions import AU_WEIGHT_RANGE, CLASS_ACTION_UNITS, crop_grid, expression_field
from mer_cache.synth.face import SUPERSAMPLE, FaceLayers, eye_opening


@dataclass(frozen=True, eq=False)
class ClipPlan:
    """Every random choice of one clip (arrays have one row per frame)."""

    label: str  # negative, positive, surprise, non_micro
    n_frames: int
    onset: int | None  # 0-based frame indices; None for non_micro
    apex: int | None
    offset: int | None
    amplitude_px: float  # largest apex displacement (0 for non_micro)
    au_weights: dict[str, float]
    side_gain: tuple[float, float]
    light: tuple[float, float, float]  # light direction x, y and the ambient share
    brightness: float
    head: np.ndarray = field(repr=False)  # (T, 3): dx px, dy px, rotation degrees
    openness: np.ndarray = field(repr=False)  # (T,): 1 open .. 0 closed
    gain: np.ndarray = field(repr=False)  # (T,): illumination flicker multiplier
    noise_sigma: float = 0.0  # sensor noise std (grey levels at mid grey)
    noise_seed: int = 0
    blinks: tuple[tuple[int, int], ...] = ()  # (first, last) frame of each blink in the clip

    def intensity(self) -> np.ndarray:
        """Expression intensity per frame: 0 up to onset, raised cosine to 1 at apex, back
        to 0 at offset and after."""
        s = np.zeros(self.n_frames, np.float32)
        if self.onset is None:
            return s
        t = np.arange(self.n_frames)
        rise = (t > self.onset) & (t <= self.apex)
        fall = (t > self.apex) & (t < self.offset)
        s[rise] = 0.5 - 0.5 * np.cos(np.pi * (t[rise] - self.onset) / (self.apex - self.onset))
        s[fall] = 0.5 + 0.5 * np.cos(np.pi * (t[fall] - self.apex) / (self.offset - self.apex))
        return s


def _blink_closure(n: int, start: int, duration: int) -> np.ndarray:
    """Lid closure 0..0.95 of one blink: a fast close (a third) and a slower reopening."""
    t = np.arange(n) - start
    close_len = max(2, duration // 3)
    c = np.zeros(n)
    down = (t >= 0) & (t < close_len)
    up = (t >= close_len) & (t < duration)
    c[down] = np.sin(0.5 * np.pi * t[down] / close_len)
    c[up] = 0.5 + 0.5 * np.cos(np.pi * (t[up] - close_len) / (duration - close_len))
    return 0.95 * c


def plan_clip(rng: np.random.Generator, label: str, *, min_frames: int, max_frames: int,
              amplitude_px: tuple[float, float], blink_prob: float, nuisances: bool,
              fps: float) -> ClipPlan:
    """Draw the plan of one clip of class ``label``."""
    # SMIC-HS clip lengths: 11 frames shortest, ~30 mean at 100 fps (Bai & Goecke)
    n = int(np.clip(round(rng.normal(30, 9)), min_frames, max_frames))
    aus = CLASS_ACTION_UNITS[label]
    onset = apex = offset = None
    amp = 0.0
    weights: dict[str, float] = {}
    if aus:
        onset = int(rng.integers(0, max(1, n // 6) + 1))
        offset = int(n - 1 - rng.integers(0, max(1, n // 8) + 1))
        apex = onset + int(round(rng.uniform(0.3, 0.6) * (offset - onset)))
        amp = float(rng.uniform(*amplitude_px))
        weights = {au: float(rng.uniform(*AU_WEIGHT_RANGE[au])) for au in aus}
    side_gain = (float(rng.uniform(0.8, 1.0)), float(rng.uniform(0.8, 1.0)))
    light = (float(rng.uniform(-0.5, 0.5)), float(rng.uniform(-0.7, -0.2)),
             float(rng.uniform(0.35, 0.5)))
    brightness = float(rng.uniform(0.85, 1.1))
    t = np.arange(n) / fps
    head = np.zeros((n, 3))
    openness = np.ones(n)
    gain = np.ones(n)
    blinks: list[tuple[int, int]] = []
    sigma = 0.0
    if nuisances:
        # static pose of this take plus slow sway: a couple of sinusoids per axis
        static = rng.uniform([-1.5, -1.5, -2.0], [1.5, 1.5, 2.0])
        for k, amp_max in enumerate((0.8, 0.8, 0.6)):
            for _ in range(2):
                head[:, k] += rng.uniform(0.1, amp_max) / 2 * np.sin(
                    2 * np.pi * rng.uniform(0.5, 3.0) * t + rng.uniform(0, 2 * np.pi))
            head[:, k] += rng.normal(0, 0.04, n)
        head += static
        if rng.uniform() < blink_prob:
            duration = int(rng.integers(8, 21))  # 80-200 ms at 100 fps
            start = int(rng.integers(-duration // 2, n - duration // 2))
            openness = 1 - _blink_closure(n, start, duration)
            blinks.append((max(0, start), min(n - 1, start + duration - 1)))
        # mains-powered lights alias into a slow flicker at 100 fps, plus frame jitter
        gain = (1 + rng.uniform(0.004, 0.02) * np.sin(
            2 * np.pi * rng.uniform(1, 8) * t + rng.uniform(0, 2 * np.pi))
            + rng.normal(0, 0.003, n))
        sigma = float(rng.uniform(1.0, 2.5))
    return ClipPlan(label, n, onset, apex, offset, amp, weights, side_gain, light, brightness,
                    head.astype(np.float32), openness.astype(np.float32),
                    gain.astype(np.float32), sigma, int(rng.integers(2**31)), tuple(blinks))


def bilinear(src: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Sample ``src`` (C, H, W) at fractional pixel indices; edges are clamped."""
    c, h, w = src.shape
    xs = np.clip(xs, 0, w - 1.001)
    ys = np.clip(ys, 0, h - 1.001)
    x0 = xs.astype(np.int64)
    y0 = ys.astype(np.int64)
    fx, fy = xs - x0, ys - y0
    flat = src.reshape(c, -1)
    i = y0 * w + x0
    top = flat[:, i] * (1 - fx) + flat[:, i + 1] * fx
    bottom = flat[:, i + w] * (1 - fx) + flat[:, i + w + 1] * fx
    return top * (1 - fy) + bottom * fy


def lit_layers(face: FaceLayers, plan: ClipPlan) -> np.ndarray:
    """Skin and eye layers under the clip's light: (6, L, L) float32."""
    lx, ly, ambient = plan.light
    light = np.array([lx, ly, 1.0], np.float32)
    light /= np.linalg.norm(light)
    diffuse = np.clip(np.tensordot(light, face.normals, axes=1), 0, 1)
    shade = (ambient + (1 - ambient) * diffuse) / (ambient + (1 - ambient) * light[2])
    shade *= plan.brightness
    return np.concatenate([face.skin_albedo * shade, face.eye_albedo * shade])


def render_clip(face: FaceLayers, plan: ClipPlan, *, expression: bool = True) -> np.ndarray:
    """Frames of one clip as ``uint8`` array (T, 128, 128, 3) RGB.

    ``expression=False`` renders the same clip (same nuisances, same noise) without the
    expression, which tests use as the clip's own neutral reference.
    """
    g = face.geometry
    layers = lit_layers(face, plan)
    if expression and plan.au_weights:
        disp, fold, lower_raise = expression_field(
            g, plan.au_weights, amplitude_px=plan.amplitude_px, side_gain=plan.side_gain)
    else:
        disp, fold, lower_raise = None, None, 0.0
    s_all = plan.intensity()
    X, Y = crop_grid()
    cx, cy = g.cx, g.eye_y + 25.0  # head rotates about a point between eyes and mouth
    noise_rng = np.random.default_rng(plan.noise_seed)
    frames = np.empty((plan.n_frames, *X.shape, 3), np.uint8)
    for t in range(plan.n_frames):
        dx, dy, deg = plan.head[t]
        th = np.deg2rad(deg)
        px, py = X - cx - dx, Y - cy - dy
        qx = np.cos(th) * px + np.sin(th) * py + cx  # inverse rotation of the output grid
        qy = -np.sin(th) * px + np.cos(th) * py + cy
        s = float(s_all[t]) if disp is not None else 0.0
        if s > 0:
            qx = qx - s * disp[0]  # inverse warp: a feature at q moves to q + disp
            qy = qy - s * disp[1]
        sampled = bilinear(layers, qx * SUPERSAMPLE - 0.5, qy * SUPERSAMPLE - 0.5)
        mask, lash = eye_opening(g, qx, qy, openness=float(plan.openness[t]),
                                 lower_raise=s * lower_raise)
        img = sampled[:3] * (1 - mask) + sampled[3:] * mask
        img = img * (1 - 0.6 * lash)
        if s > 0:
            img = img * (1 - s * bilinear(fold[None], qx - 0.5, qy - 0.5))
        img = img * float(plan.gain[t])
        if plan.noise_sigma > 0:  # shot-noise-like: stronger in bright pixels
            img = img + noise_rng.standard_normal(img.shape) * plan.noise_sigma * np.sqrt(
                np.clip(img, 1, 255) / 128.0)
        frames[t] = np.clip(np.rint(img), 0, 255).astype(np.uint8).transpose(1, 2, 0)
    return frames
