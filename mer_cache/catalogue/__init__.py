"""The clip catalogue: dataset loaders that turn a dataset copy into :class:`Clip` records.

``load_catalogue("casme2", root)`` is the entry point; ``check_dataset`` reports every
problem of a copy without stopping at the first. Loaders live one per module (``smic``,
``casme2``, ``samm``, ``casme3``, ``megc2019``, ``folder``, ``manifest``, ``video``).
"""

from mer_cache.catalogue.check import CheckReport, check_dataset
from mer_cache.catalogue.clip import Clip, frame_number, list_frames, natural_key
from mer_cache.catalogue.problems import DatasetWarning, Problem, ProblemLog
from mer_cache.catalogue.registry import (
    DATASETS, get_loader, load_catalogue, loader_options, scan_dataset,
)

__all__ = [
    "DATASETS", "CheckReport", "Clip", "DatasetWarning", "Problem", "ProblemLog", "check_dataset",
    "frame_number", "get_loader", "list_frames", "load_catalogue", "loader_options",
    "natural_key", "scan_dataset",
]
