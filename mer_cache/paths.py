"""Default locations of the user's workspace (``data/`` under the working directory).

``MER_CACHE_DATA`` moves the whole workspace; ``MER_CACHE_WEIGHTS`` moves only the weights.
"""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    return Path(os.environ.get("MER_CACHE_DATA", "data"))


def weights_dir() -> Path:
    env = os.environ.get("MER_CACHE_WEIGHTS")
    return Path(env) if env else data_dir() / "weights"
