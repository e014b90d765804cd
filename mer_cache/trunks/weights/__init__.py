"""Readers for the foreign weight files of the VGGFace2 trunks, and the checks they share.

Each reader turns one file format into a flat ``dict[str, array]`` in *our* parameter
names (torchvision-like, as in the widely used ``.pkl`` conversion); :mod:`.checks` then
compares that dict against the model's full key set and every shape before anything is
loaded. Formats are detected from the file's first bytes, not its suffix (:mod:`.formats`).
"""

from mer_cache.trunks.weights.checks import check_state_dict, load_checked_state_dict
from mer_cache.trunks.weights.formats import detect_format
from mer_cache.trunks.weights.hashing import sha256_file
from mer_cache.trunks.weights.pickle_safe import load_numpy_pickle

__all__ = ["check_state_dict", "load_checked_state_dict", "detect_format", "sha256_file",
           "load_numpy_pickle"]
