"""Typed errors of mer-cache.

Every error a user can cause derives from :class:`MerCacheError`. Its message is one
paragraph that says what was wrong, where (the file or value) and what to do. The CLI
prints the message without a traceback (set ``MER_CACHE_TRACEBACK=1`` to see one).
"""

from __future__ import annotations


class MerCacheError(Exception):
    """Base class of every user-facing mer-cache error."""


class DatasetError(MerCacheError):
    """A dataset root, annotation file or frame folder is missing or malformed."""


class LabelError(MerCacheError):
    """A label is unknown, or a label scheme does not fit the data."""


class WeightsError(MerCacheError):
    """A weight file is missing, of the wrong format, or does not fit the model."""


class UnsafePickleError(WeightsError):
    """A pickle asked for a global outside the allow-list; nothing was executed."""


class TrunkError(MerCacheError):
    """An unknown trunk name or layer, or an invalid trunk option."""


class CacheError(MerCacheError):
    """A cache is missing, incomplete, corrupt, or was made with another fingerprint."""


class ConfigError(MerCacheError):
    """An option value or a combination of options is invalid."""


class ProtocolError(MerCacheError):
    """An evaluation protocol cannot be run on this data, or would leak subjects."""
