"""Onset -> apex dense flow (TV-L1), optical strain, and the stored (u, v, strain) maps.

TV-L1 is Zach, Pock & Bischof (2007) as OpenCV implements it
(``cv2.optflow.DualTVL1OpticalFlow_create``, package opencv-contrib-python-headless); it is
the flow STSTNet and OFF-ApexNet feed. Optical strain follows REFERENCE section 10:
e_xx = du/dx, e_yy = dv/dy, e_xy = (du/dy + dv/dx) / 2,
|e| = sqrt(e_xx^2 + e_yy^2 + 2 e_xy^2).
"""

from __future__ import annotations

import numpy as np

from mer_cache.errors import ConfigError
from mer_cache.flow.config import FlowConfig


def require_cv2():
    try:
        import cv2
    except ImportError:
        raise ConfigError("Flow features need OpenCV with the contrib modules: "
                          "pip install opencv-contrib-python-headless.") from None
    if not hasattr(cv2, "optflow"):
        raise ConfigError(f"The installed OpenCV {cv2.__version__} lacks the contrib module "
                          "cv2.optflow (TV-L1). Replace it: pip uninstall opencv-python "
                          "opencv-python-headless; pip install opencv-contrib-python-headless.")
    return cv2


def opencv_version() -> str:
    return require_cv2().__version__


def prepare_grey(image: np.ndarray, size: int) -> np.ndarray:
    """An (H, W) or (H, W, 3) uint8 frame -> (size, size) uint8 grey (area resize)."""
    cv2 = require_cv2()
    grey = image if image.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    if grey.shape != (size, size):
        grey = cv2.resize(grey, (size, size), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(grey, dtype=np.uint8)


def tvl1_flow(first: np.ndarray, second: np.ndarray, config: FlowConfig = FlowConfig()) -> np.ndarray:
    """Dense TV-L1 flow from ``first`` to ``second``, grey (H, W) uint8 frames.

    uint8, not float: OpenCV reads a float image as 0..1 and multiplies it by 255, so a
    0..255 float frame would be scaled 255-fold (measured: 20x slower, to the same flow).

    Returns (H, W, 2) float32: (u, v) in pixels, u to the right, v downwards, such that
    ``second(x + u, y + v) ~ first(x, y)``.
    """
    cv2 = require_cv2()
    p = config.tvl1_params()
    algo = cv2.optflow.DualTVL1OpticalFlow_create(
        tau=p["tau"], lambda_=p["lambda_"], theta=p["theta"], nscales=p["n_scales"],
        warps=p["warps"], epsilon=p["epsilon"], innnerIterations=p["inner_iterations"],
        outerIterations=p["outer_iterations"], scaleStep=p["scale_step"], gamma=p["gamma"],
        medianFiltering=p["median_filtering"], useInitialFlow=False)
    if first.dtype != np.uint8 or second.dtype != np.uint8 or first.shape != second.shape:
        raise ConfigError(f"tvl1_flow needs two grey uint8 frames of one shape, got "
                          f"{first.dtype}{first.shape} and {second.dtype}{second.shape}.")
    a, b = np.ascontiguousarray(first), np.ascontiguousarray(second)
    return algo.calc(a, b, None).astype(np.float32)  # (H, W, 2)


def optical_strain(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Strain magnitude of a flow field; (H, W) float32.

    Spatial derivatives by central differences (``numpy.gradient``: one-sided at the
    border), which are exact for a flow that is affine in x and y.
    """
    du_dy, du_dx = np.gradient(u.astype(np.float64))  # axis 0 is y, axis 1 is x
    dv_dy, dv_dx = np.gradient(v.astype(np.float64))
    exx, eyy, exy = du_dx, dv_dy, 0.5 * (du_dy + dv_dx)
    return np.sqrt(exx ** 2 + eyy ** 2 + 2 * exy ** 2).astype(np.float32)


def flow_maps(onset: np.ndarray, apex: np.ndarray, config: FlowConfig = FlowConfig()) -> np.ndarray:
    """The stored features of one clip: (3, out_size, out_size) float32 = (u, v, strain).

    Flow and strain are computed at ``frame_size``; all three maps are then area-resized
    to ``out_size``, and u, v rescaled by ``out_size / frame_size`` so they stay in pixels
    of the stored grid. Strain is a ratio of lengths and is not rescaled.
    """
    cv2 = require_cv2()
    a = prepare_grey(onset, config.frame_size)
    b = prepare_grey(apex, config.frame_size)
    flow = tvl1_flow(a, b, config)  # (S, S, 2)
    u, v = flow[..., 0], flow[..., 1]
    strain = optical_strain(u, v)
    size, scale = config.out_size, config.out_size / config.frame_size
    maps = [cv2.resize(m, (size, size), interpolation=cv2.INTER_AREA) for m in (u, v, strain)]
    out = np.stack(maps) * np.array([scale, scale, 1.0], np.float32)[:, None, None]
    return out.astype(np.float32)  # (3, out, out)
