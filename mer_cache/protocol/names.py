"""Names of the evaluation protocols, importable without scikit-learn (for CLI help and configs)."""

from __future__ import annotations

from typing import Literal

Protocol = Literal["subject-kfold", "loso", "clip-kfold", "lodo"]
PROTOCOLS: tuple[str, ...] = ("subject-kfold", "loso", "clip-kfold", "lodo")
