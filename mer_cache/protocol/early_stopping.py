"""Early stopping on validation *training* subjects: keep the best epoch's weights.

Shared by head training and trunk fine-tuning, so both choose epochs the same way and
neither ever looks at the test fold.
"""

from __future__ import annotations

import copy

from torch import nn


class EarlyStopping:
    """Track the validation UF1 per epoch; say when to stop; restore the best weights."""

    def __init__(self, *, patience: int) -> None:
        self.patience = patience
        self.best_score = -1.0
        self.best_epoch = 0
        self._best_state: dict | None = None

    def update(self, epoch: int, score: float, model: nn.Module) -> bool:
        """Record ``epoch``'s score; True when ``patience`` epochs passed without a better one."""
        if score > self.best_score:
            self.best_score, self.best_epoch = score, epoch
            self._best_state = copy.deepcopy(model.state_dict())
        return epoch - self.best_epoch >= self.patience

    def restore(self, model: nn.Module) -> None:
        """Load the best epoch's weights (no-op when nothing was validated)."""
        if self._best_state is not None:
            model.load_state_dict(self._best_state)
