"""Every option name of every command means one thing: click binds a repeated flag to one
of the options silently (``extract -o c.zarr`` once meant ``--dataset-option c.zarr``)."""

from __future__ import annotations

import click
import typer.main

from mer_cache.cli import app


def _commands(group: click.Group, prefix: str = ""):
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", cmd


def test_no_command_gives_one_flag_to_two_options() -> None:
    root = typer.main.get_command(app)
    clashes = []
    for name, cmd in _commands(root):
        seen: dict[str, str] = {}
        for param in cmd.params:
            for flag in [*getattr(param, "opts", []), *getattr(param, "secondary_opts", [])]:
                if flag in seen and seen[flag] != param.name:
                    clashes.append(f"{name}: {flag} is --{seen[flag]} and --{param.name}")
                seen[flag] = param.name
    assert not clashes, clashes
