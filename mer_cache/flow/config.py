"""What decides a flow cache's numbers: TV-L1 parameters, sizes, channels, apex rule.

One frozen :class:`FlowConfig`, validated once; its :meth:`FlowConfig.identity` goes into
the cache fingerprint, so a cache made with other parameters is refused on resume.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from mer_cache.errors import ConfigError

CHANNELS = ("u", "v", "strain")  # STSTNet's input; OFF-ApexNet reads u and v only
APEX_RULES = ("pixel-difference",)


@dataclass(frozen=True)
class FlowConfig:
    """TV-L1 onset -> apex flow, optical strain, and the stored size.

    The TV-L1 values are OpenCV's own defaults of ``cv2.optflow.DualTVL1OpticalFlow_create``
    (opencv-contrib 5.0), written out so the fingerprint states them rather than trusting
    a library default that may change between versions.
    """

    tau: float = 0.25  # time step of the numerical scheme
    lambda_: float = 0.15  # data-term weight: smaller = smoother flow
    theta: float = 0.3  # coupling between the data and the TV terms
    n_scales: int = 5  # pyramid levels
    warps: int = 5  # warpings per scale
    epsilon: float = 0.01  # stopping threshold
    inner_iterations: int = 30
    outer_iterations: int = 10
    scale_step: float = 0.8
    gamma: float = 0.0  # illumination-change term off
    median_filtering: int = 5
    # Frames are turned grey and resized to this square size (cv2.INTER_AREA) before flow:
    # the synthetic frames and the cropped SMIC / CASME II faces are ~128-340 px, and TV-L1
    # cost grows with the pixel count (SAMM raw frames are 2040x1088).
    frame_size: int = 128
    # Stored maps: (u, v, strain) resized to out_size x out_size with cv2.INTER_AREA, the
    # 28x28 input of STSTNet and OFF-ApexNet. Flow is in pixels of the frame_size grid,
    # scaled by out_size / frame_size so a vector still spans the same share of the face.
    out_size: int = 28
    # Apex when the dataset has none (SMIC): the frame whose mean absolute grey difference
    # from the onset frame is largest (REFERENCE 10: the common choice, with flow magnitude)
    apex_rule: str = "pixel-difference"
    dtype: str = "float32"

    def __post_init__(self) -> None:
        problems = []
        for name in ("n_scales", "warps", "inner_iterations", "outer_iterations"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0 < self.scale_step < 1:
            problems.append(f"scale_step must be in (0, 1), got {self.scale_step}")
        for name in ("tau", "lambda_", "theta", "epsilon"):
            if not getattr(self, name) > 0:
                problems.append(f"{name} must be > 0, got {getattr(self, name)}")
        if not 8 <= self.frame_size <= 1024 or not 4 <= self.out_size <= self.frame_size:
            problems.append(f"need 8 <= frame_size <= 1024 and 4 <= out_size <= frame_size, got "
                            f"{self.frame_size} and {self.out_size}")
        if self.apex_rule not in APEX_RULES:
            problems.append(f"apex_rule '{self.apex_rule}' is unknown (known: {', '.join(APEX_RULES)})")
        if self.dtype not in ("float16", "float32"):
            problems.append(f"dtype must be float16 or float32, got {self.dtype!r}")
        if problems:
            raise ConfigError("Invalid flow options: " + "; ".join(problems) + ".")

    @property
    def channels(self) -> tuple[str, ...]:
        return CHANNELS

    def tvl1_params(self) -> dict:
        return {k: v for k, v in asdict(self).items()
                if k not in ("frame_size", "out_size", "apex_rule", "dtype")}

    def identity(self) -> dict:
        """What the fingerprint records: method, every parameter, sizes, channels, apex rule."""
        return {"features": "flow", "method": "tvl1-opencv", "tvl1": self.tvl1_params(),
                "frame_size": self.frame_size, "out_size": self.out_size,
                "interpolation": "cv2.INTER_AREA", "channels": list(CHANNELS),
                "strain": "sqrt(exx^2 + eyy^2 + 2 exy^2), exx=du/dx, eyy=dv/dy, "
                          "exy=(du/dy+dv/dx)/2, central differences (numpy.gradient)",
                "apex_rule": self.apex_rule, "onset_rule": "annotated, else frame 0",
                "dtype": self.dtype}
