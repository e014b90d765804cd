"""The ``mer-cache`` command line: the root only wires the command groups together.

Each command module parses options, calls one library function and renders the result.
"""

from __future__ import annotations

from mer_cache.cli.app import app, main

__all__ = ["app", "main"]
