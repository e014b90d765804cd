"""Every option name of every command means one thing: click binds a repeated flag to one
of the options silently (``extract -o c.zarr`` once meant ``--dataset-option c.zarr``)."""

from __future__ import annotations

import typer.main

from mer_cache.cli import app


def _commands(group, prefix: str = ""):
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):  # a group (typer ships its own copy of click)
            yield from _commands(cmd, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", cmd


def test_no_command_gives_one_flag_to_two_options() -> None:
    root = typer.main.get_command(app)
    clashes, names = [], []
    for name, cmd in _commands(root):
        names.append(name)
        seen: dict[str, str] = {}
        for param in cmd.params:
            for flag in [*getattr(param, "opts", []), *getattr(param, "secondary_opts", [])]:
                if flag in seen and seen[flag] != param.name:
                    clashes.append(f"{name}: {flag} is --{seen[flag]} and --{param.name}")
                seen[flag] = param.name
    assert {"extract", "faces preview", "cache info", "datasets check"} <= set(names)  # walked
    assert not clashes, clashes
