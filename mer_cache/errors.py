"""Typed errors of mer-cache.

Every error a user can cause derives from :class:`MerCacheError`. Its message is one
paragraph that says what was wrong, where (the file or value) and what to do. The CLI
prints the message without a traceback (set ``MER_CACHE_TRACEBACK=1`` to see one).
"""

from __future__ import annotations

import errno
import os
import re


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


# errno -> what to do about it; the messages name the path, these say the fix
_OS_ADVICE = {
    errno.ENOSPC: "The disk is full. Free space there (or choose a path on another disk) and "
                  "rerun the same command: finished work is kept and resumed.",
    errno.EDQUOT: "The disk quota is used up. Free space there (or choose a path on another "
                  "disk) and rerun the same command: finished work is kept and resumed.",
    errno.EROFS: "That location is on a read-only file system. Choose a path on a writable disk.",
    errno.EACCES: "You may not write or read there. Choose a location you own, or fix its "
                  "permissions.",
    errno.EPERM: "The operation is not permitted there (an immutable or protected file or "
                 "folder). Choose another location, or lift the protection.",
    errno.ENOENT: "A part of the path does not exist (or the file system does not allow "
                  "creating files there, like /proc). Check the path, or choose one on a "
                  "normal writable disk.",
    errno.ENOTDIR: "A part of the path is a file, not a folder. Choose another path.",
    errno.EISDIR: "That path is a folder where a file is expected. Pass a file path.",
    errno.EEXIST: "Something already exists at that path. Choose a new path or remove it.",
    errno.ENOTEMPTY: "That folder is not empty. Choose a new or empty folder.",
    errno.EIO: "The disk reported an input/output error. Check the disk, then rerun.",
}
_ERRNO_IN_TEXT = re.compile(r"errno\s*=\s*(\d+)")


def os_error_errno(exc: OSError) -> int | None:
    """The errno of an OSError, also when a library (h5py) only wrote it into the text."""
    if exc.errno is not None:
        return exc.errno
    m = _ERRNO_IN_TEXT.search(str(exc))
    return int(m.group(1)) if m else None


def os_error_message(exc: OSError, *, doing: str | None = None, path: object = None) -> str:
    """One paragraph for an OSError: what failed, on which path, and what to do.

    ``doing`` says what the tool was doing ("creating the cache"); ``path`` overrides the
    file named in the exception (some libraries do not set it).
    """
    code = os_error_errno(exc)
    where = path if path is not None else (exc.filename or "")
    why = exc.strerror or (os.strerror(code) if code is not None else str(exc))
    head = f"{'While ' + doing + ': ' if doing else ''}{why}"
    if where:
        head += f" ({where}"
        head += f" -> {exc.filename2})" if getattr(exc, "filename2", None) else ")"
    advice = _OS_ADVICE.get(code, "Check the path and the disk, then rerun the same command.")
    if code == errno.EEXIST and exc.filename and os.path.isfile(exc.filename):
        advice = "That path is a file, not a folder, where a folder is needed. Choose another path."
    return f"{head}. {advice}"
