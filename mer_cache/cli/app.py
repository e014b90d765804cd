"""Root typer app: wires each command group's module."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="mer-cache",
    help="Cached CNN embeddings and temporal heads for micro-expression recognition.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# module -> how it attaches: ("group", name) adds a sub-app, ("commands", None) merges commands
_MODULES = [
    ("datasets", ("group", "datasets")),
    ("synth", ("commands", None)),
    ("weights", ("group", "weights")),
    ("embed", ("commands", None)),
    ("extract", ("commands", None)),
    ("cache", ("group", "cache")),
    ("heads", ("commands", None)),
    ("fusion", ("commands", None)),
    ("finetune", ("commands", None)),
    ("predict", ("commands", None)),
    ("faces", ("group", "faces")),
]

for _mod_name, (_how, _group) in _MODULES:
    _mod = importlib.import_module(f"mer_cache.cli.{_mod_name}")
    if _how == "group":
        app.add_typer(_mod.app, name=_group)
    else:
        _mod.register(app)


def main() -> None:
    app()
