"""The settings of one fine-tuning run (the paper's Exp-I), validated once and saved with it.

Bai & Goecke retrain layers l_s..end of the VGGFace2 trunk, freeze l_0..l_{s-1}, and put
fc1 -> fc2 -> fc3 on top; frames are augmented by horizontal flip and random rotation with
per-class multipliers so classes are balanced ("Aug.-I", about 15000 frames per class). The
paper gives no widths, epochs or learning rate for Exp-I: the defaults below are chosen so
the built-in demo trunk fine-tunes on the demo data in a few CPU minutes, and say so.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields

from mer_cache.errors import ConfigError

FINETUNE_PROTOCOLS = ("subject-kfold", "loso")
FACE_MODES = ("auto", "align", "none")
AMP_MODES = ("bf16", "fp16", "off")

# Fields that only say how fast a run goes, not what it computes; a resumed run may change them.
RUNTIME_FIELDS = ("device", "amp", "eval_batch_size", "workers")


@dataclass(frozen=True)
class FinetuneConfig:
    """Everything that decides a fine-tuning run; saved as ``config.json`` in the run folder.

    Attributes
    ----------
    trunk, weights : str
        Registered trunk name and its base weights (a path, ``"random"``, or None for the
        trunk's default file).
    layer : str or None
        Embedding layer fed to fc1 (None: the trunk's default embedding).
    from_layer : str
        l_s, the first retrained spatial layer (a name of ``trunk.cam_modules()``), or
        ``"auto"`` to take the layer with the best Grad-CAM focus (resolved before training).
    face : str
        ``"align"``, ``"none"`` or ``"auto"``, as ``extract --face``: with ``align`` every
        training frame (and every frame Grad-CAM scores for ``from_layer="auto"``) is its
        clip's aligned face crop.
    """

    trunk: str = "fer-minixception"
    weights: str | None = None
    layer: str | None = None
    from_layer: str = "auto"
    resize_mode: str = "stretch"  # the paper feeds whole frames: no face crop or alignment
    # "align": one transform per clip warps every training frame to a face crop
    # (mer_cache.faces); "none": whole frames; "auto": align raw dataset layouts, not cropped
    # ones (mer_cache.faces.defaults). The run saves the resolved value, never "auto".
    face: str = "auto"
    labels: str = "smic4"
    protocol: str = "subject-kfold"  # the paper: 5 folds split on the subject level
    folds: int = 5
    seed: int = 0
    val_subjects: int = 0  # training subjects held out per fold for early stopping; 0 = fixed epochs
    patience: int = 2
    epochs: int = 4  # not given for Exp-I; 4 keeps the demo to a few CPU minutes
    batch_size: int = 64
    lr: float = 1e-3  # Adam; the paper's code uses 2e-3..2.6e-3 for its (from scratch) heads
    weight_decay: float = 0.0
    fc_dims: tuple[int, ...] = (1024, 512)  # fc1, fc2 widths; fc3 maps to the classes
    dropout: float = 0.5
    flip: bool = True
    rotation_deg: float = 10.0  # uniform in [-r, r]; the paper does not give the range
    frames_per_class: int | None = None  # Aug.-I target per class and epoch; None = largest class
    device: str = "cpu"
    amp: str = "bf16"  # autocast dtype on CUDA; ignored on the CPU
    eval_batch_size: int = 256
    workers: int = 2  # threads decoding frames into memory

    def __post_init__(self) -> None:
        object.__setattr__(self, "fc_dims", tuple(int(d) for d in self.fc_dims))
        problems = []
        if self.protocol not in FINETUNE_PROTOCOLS:
            problems.append(
                f"protocol '{self.protocol}' cannot fine-tune a trunk per fold (use "
                f"{' or '.join(FINETUNE_PROTOCOLS)}; clip-level folds would train every trunk "
                "on its own test subjects)")
        for name in ("folds", "epochs", "batch_size", "patience", "eval_batch_size"):
            minimum = 2 if name == "folds" else 1
            if getattr(self, name) < minimum:
                problems.append(f"{name} must be at least {minimum}, got {getattr(self, name)}")
        if not self.lr > 0 or self.weight_decay < 0 or self.val_subjects < 0:
            problems.append(f"lr must be > 0, weight_decay and val_subjects >= 0 (got {self.lr}, "
                            f"{self.weight_decay}, {self.val_subjects})")
        if not self.fc_dims or min(self.fc_dims) < 1:
            problems.append(f"fc_dims must be positive widths, got {self.fc_dims}")
        if not 0 <= self.dropout < 1:
            problems.append(f"dropout must be in [0, 1), got {self.dropout}")
        if not 0 <= self.rotation_deg <= 180:
            problems.append(f"rotation_deg must be in [0, 180], got {self.rotation_deg}")
        if self.frames_per_class is not None and self.frames_per_class < 1:
            problems.append(f"frames_per_class must be at least 1, got {self.frames_per_class}")
        if self.amp not in AMP_MODES:
            problems.append(f"amp must be one of {', '.join(AMP_MODES)}, got {self.amp!r}")
        if self.face not in FACE_MODES:
            problems.append(f"face must be one of {', '.join(FACE_MODES)}, got {self.face!r}")
        if self.resize_mode not in ("stretch", "center-crop"):
            problems.append(f"resize_mode must be stretch or center-crop, got {self.resize_mode!r}")
        if not (self.device == "cpu" or self.device.startswith("cuda")):
            problems.append(f"device '{self.device}' is not 'cpu' or 'cuda[:k]'")
        if self.workers < 0:
            problems.append(f"workers must be 0 or more, got {self.workers}")
        if problems:
            raise ConfigError("Invalid fine-tuning options: " + "; ".join(problems) + ".")

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))

    def identity(self) -> dict:
        """The fields a resumed run must share with the finished folds it keeps."""
        return {k: v for k, v in self.to_dict().items() if k not in RUNTIME_FIELDS}

    @classmethod
    def from_dict(cls, data: dict) -> "FinetuneConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
