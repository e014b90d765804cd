"""The settings of one head-training run, validated once and saved as ``config.json``.

Kept free of torch so the CLI can take its defaults from here and still start at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from mer_cache.errors import ConfigError
from mer_cache.protocol.names import PROTOCOLS

# Head names (the models live in mer_cache.heads.models, which checks it matches this list)
HEADS = ("lstm", "bilstm", "gru", "mean", "frame", "ststnet", "offapexnet")
# heads that read one optical-flow map per clip (a flow cache), seen as a length-1 sequence
FLOW_HEADS = ("ststnet", "offapexnet")
PROJECTION_DIMS = (1024, 768, 512)  # reference code: fc 1024 -> 768 -> 512
HIDDEN = 512  # LSTM hidden size in Exp-II and Exp-III
FC = 256  # fc before the classifier in the reference code

BALANCES = ("windows", "loss", "none")
EPOCH_WINDOWS = ("sample", "all")
REFERENCES = ("auto", "first", "none")
PRECISIONS = ("auto", "fp32", "bf16")
TASKS = ("emotion", "au")
# What --task au changes when the option is not given: the label scheme then only chooses
# the clips ('emotion' keeps every clip), and 'loss' weights each AU's positives in the BCE
# (class-balanced window draws have no meaning for a multi-label target).
AU_DEFAULTS = {"labels": "emotion", "balance": "loss"}


SEQUENCE_WINDOW = 13  # Bai & Goecke's N, best in their Table 3


@dataclass(frozen=True)
class HeadConfig:
    """Everything that decides a head-training run; saved as ``config.json``.

    The window, epochs, batch and learning rate follow Bai & Goecke's reference code (N = 13,
    best in Table 3; 20 epochs, batch 40, Adam lr 2.6e-3), and an epoch walks every window
    (Aug.-II). One default departs from the paper, by name: ``reference='auto'`` subtracts
    each clip's first frame (the paper feeds raw embeddings). ``PRESETS['paper']`` restores
    it; ``epoch_windows='sample'`` is a faster, named departure for quick sweeps.
    """

    arch: str = "bilstm"
    # None: the arch's own, set when the config is made: 13 (the paper's N) for the
    # sequence heads, 1 for the flow heads (one map per clip)
    window: int | None = None
    window_stride: int = 1
    epochs: int = 20
    batch_size: int = 40
    lr: float = 2.6e-3
    weight_decay: float = 0.0
    seed: int = 0
    balance: str = "windows"  # 'windows' = Aug.-II equal window counts; 'loss' = class-weighted CE
    windows_per_clip: float = 1.0  # windows drawn per training clip per epoch (windows.py)
    # 'all': an epoch walks every window of the pool, each class oversampled to the largest
    # class's count (the paper's Aug.-II pass). 'sample': an epoch draws windows_per_clip
    # windows per training clip (class-balanced), about 1/15 of the work on SMIC-length clips;
    # on the demo data it scored lower over 3 seeds (README), so it is an option for quick
    # sweeps, not the default
    epoch_windows: str = "all"
    protocol: str = "subject-kfold"
    folds: int = 5  # ignored by loso (one fold per subject)
    labels: str = "smic4"
    val_subjects: int = 0  # training subjects held out per fold for early stopping; 0 = fixed epochs
    patience: int = 5  # epochs without a better validation UF1 before stopping
    proj_dims: tuple[int, ...] = PROJECTION_DIMS
    hidden: int = HIDDEN
    fc: int = FC
    device: str = "cpu"
    # What each clip's frames are expressed against before the head sees them. 'first':
    # subtract the clip's first frame (its neutral onset), which removes the identity that
    # dominates face embeddings and leaves the change over time that carries the class;
    # 'none': raw embeddings, as the paper's code feeds them; 'auto': 'none' for the static
    # `frame` baseline (so it stays static), 'first' for every other head.
    reference: str = "auto"
    # 'auto' = bfloat16 autocast on a CPU with native bf16 (AVX512-BF16/AMX), else float32;
    # weights, BatchNorm statistics and the loss stay float32 either way
    precision: str = "auto"
    # 'emotion': one class per clip (softmax, UF1/UAR); 'au': action-unit detection, one
    # sigmoid output per AU of the set below, scored by per-AU F1 and their mean (heads/au.py)
    task: str = "emotion"
    # The AU set of --task au: AU names (AU12, 12), or one set name of
    # mer_cache.catalogue.aus.AU_SETS ('casme2', 'cross'); empty = every AU coded in at
    # least au_min_clips of the run's clips. Side and intensity are dropped (R12B -> AU12).
    aus: tuple[str, ...] = ()
    au_min_clips: int = 10

    def __post_init__(self) -> None:
        if self.window is None:
            object.__setattr__(self, "window", 1 if self.arch in FLOW_HEADS else SEQUENCE_WINDOW)
        object.__setattr__(self, "proj_dims", tuple(int(d) for d in self.proj_dims))
        object.__setattr__(self, "aus", tuple(str(a).strip() for a in self.aus))
        problems = []
        if self.arch not in HEADS:
            problems.append(f"arch '{self.arch}' is unknown (known: {', '.join(HEADS)})")
        if self.epoch_windows not in EPOCH_WINDOWS:
            problems.append(f"epoch_windows '{self.epoch_windows}' is unknown (known: "
                            f"{', '.join(EPOCH_WINDOWS)})")
        if self.balance not in BALANCES:
            problems.append(f"balance '{self.balance}' is unknown (known: {', '.join(BALANCES)})")
        if self.protocol not in PROTOCOLS:
            problems.append(f"protocol '{self.protocol}' is unknown (known: {', '.join(PROTOCOLS)})")
        for name in ("window", "window_stride", "epochs", "batch_size", "patience", "hidden", "fc"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.arch in FLOW_HEADS and self.window != 1:
            problems.append(f"arch '{self.arch}' reads one flow map per clip: use window 1, "
                            f"not {self.window}")
        if self.arch in FLOW_HEADS and self.reference == "first":
            problems.append(f"reference 'first' would subtract a flow clip's only map from itself "
                            f"(arch '{self.arch}'): use reference auto or none")
        if self.folds < 2:
            problems.append(f"folds must be at least 2, got {self.folds}")
        if not self.lr > 0 or self.weight_decay < 0 or self.val_subjects < 0:
            problems.append("lr must be > 0, weight_decay and val_subjects >= 0 "
                            f"(got {self.lr}, {self.weight_decay}, {self.val_subjects})")
        if not self.windows_per_clip > 0:
            problems.append(f"windows_per_clip must be > 0, got {self.windows_per_clip}")
        if not self.proj_dims or min(self.proj_dims) < 1:
            problems.append(f"proj_dims must be positive widths, got {self.proj_dims}")
        if self.reference not in REFERENCES:
            problems.append(f"reference '{self.reference}' is unknown (known: {', '.join(REFERENCES)})")
        if self.precision not in PRECISIONS:
            problems.append(f"precision '{self.precision}' is unknown (known: {', '.join(PRECISIONS)})")
        if not (self.device == "cpu" or self.device.startswith("cuda")):
            problems.append(f"device '{self.device}' is not 'cpu' or 'cuda[:k]'")
        problems += self._au_problems()
        if problems:
            raise ConfigError("Invalid head-training options: " + "; ".join(problems) + ".")

    def _au_problems(self) -> list[str]:
        if self.task not in TASKS:
            return [f"task '{self.task}' is unknown (known: {', '.join(TASKS)})"]
        if self.task != "au":
            return [] if not self.aus else ["aus applies to task 'au' only"]
        from mer_cache.catalogue.aus import AU_SETS, normalise_au_name
        from mer_cache.errors import LabelError

        problems = []
        if self.balance == "windows":
            problems.append("balance 'windows' draws equal windows per class, which a multi-label "
                            "AU target has not; use 'loss' (per-AU positive weights in the BCE) or "
                            "'none' with task 'au'")
        if self.au_min_clips < 1:
            problems.append(f"au_min_clips must be at least 1, got {self.au_min_clips}")
        if len(self.aus) == 1 and self.aus[0] in AU_SETS:
            return problems
        for name in self.aus:
            try:
                norm = normalise_au_name(name)
            except LabelError:
                problems.append(f"'{name}' is neither an action unit (12, AU12) nor an AU set "
                                f"({', '.join(AU_SETS)})")
                continue
            if norm[2:3] in "LR" or norm[-1] in "ABCDE":
                problems.append(f"AU '{name}': side and intensity are dropped in task 'au'; write "
                                f"AU{''.join(ch for ch in norm[2:] if ch.isdigit())}")
        return problems

    @property
    def resolved_reference(self) -> str:
        if self.reference != "auto":
            return self.reference
        # 'first' would subtract a flow clip's only map from itself
        return "none" if self.arch == "frame" or self.arch in FLOW_HEADS else "first"

    def head_kwargs(self) -> dict:
        return {"proj_dims": list(self.proj_dims), "hidden": self.hidden, "fc": self.fc}


# Named settings. 'paper' is Bai & Goecke's Exp-II / Exp-III training as their reference code
# runs it: raw embeddings (no reference frame), every stride-1 window of every training clip
# each epoch with classes balanced by oversampling (Aug.-II), N = 13, 20 epochs, batch 40,
# Adam lr 2.6e-3. 'default' is HeadConfig's defaults (the same, but each clip minus its
# first frame).
PRESETS: dict[str, dict] = {
    "default": {},
    "paper": {"reference": "none", "epoch_windows": "all", "balance": "windows", "window": SEQUENCE_WINDOW,
              "window_stride": 1, "epochs": 20, "batch_size": 40, "lr": 2.6e-3},
}


def preset_fields(name: str) -> dict:
    """The HeadConfig fields a preset sets.

    Raises
    ------
    ConfigError
        For an unknown preset.
    """
    if name not in PRESETS:
        raise ConfigError(f"Unknown preset '{name}' (known: {', '.join(PRESETS)}).")
    return dict(PRESETS[name])
