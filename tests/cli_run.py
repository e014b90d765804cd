"""One way for tests to run the CLI: in-process, and never with a traceback in its output
(a user must get a one-paragraph message, whatever went wrong)."""

from __future__ import annotations

from typer.testing import CliRunner

from mer_cache.cli import app


def run_cli(*args, env: dict | None = None):
    """``mer-cache *args`` (each converted with ``str``); the typer ``Result``."""
    result = CliRunner().invoke(app, [str(a) for a in args], env=env)
    assert "Traceback" not in result.output, result.output
    return result
