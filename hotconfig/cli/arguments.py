"""What the command line may say, read before any command runs: the group's options anywhere on
the line (``hotconfig get k --json``), and numbers of seconds that are numbers."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import click

__all__ = ["SECONDS", "Seconds", "hoisted"]


def _options(params: Iterable[click.Parameter]) -> dict[str, bool]:
    """Each option name of ``params``, and whether it takes a value (``--url URL``)."""
    names: dict[str, bool] = {}
    for param in params:
        if isinstance(param, click.Option):
            takes_value = not (param.is_flag or param.count)
            for name in (*param.opts, *param.secondary_opts):
                names[name] = takes_value
    return names


def _width(arg: str, names: dict[str, bool]) -> int:
    """How many words ``arg`` takes with it (1, or 2 for ``--url URL``; ``--url=URL`` is one)."""
    name, equals, _ = arg.partition("=")
    return 2 if not equals and names.get(name, False) else 1


def hoisted(group: click.Group, ctx: click.Context, args: list[str]) -> list[str]:
    """``args`` with the group's options that follow the command name moved in front of it:
    ``get k --json`` is read as ``--json get k``.

    The command's own options win over the group's of the same name (``demo --url``), their
    values are never taken for options, and nothing after ``--`` moves.
    """
    ours = _options(group.get_params(ctx))
    at = 0
    while at < len(args) and args[at].startswith("-") and args[at] != "--":
        at += _width(args[at], ours)
    if at >= len(args):
        return args
    command = group.get_command(ctx, args[at])
    if command is None:
        return args  # click says what is wrong with the name
    theirs = _options(command.get_params(ctx))
    moved: list[str] = []
    kept: list[str] = []
    rest = args[at + 1 :]
    index = 0
    while index < len(rest):
        arg = rest[index]
        if arg == "--":
            kept.extend(rest[index:])
            break
        name = arg.partition("=")[0]
        if name in theirs:
            width = _width(arg, theirs)
            kept.extend(rest[index : index + width])
        elif name in ours:
            width = _width(arg, ours)
            moved.extend(rest[index : index + width])
        else:
            width = 1
            kept.append(arg)
        index += width
    return [*args[:at], *moved, args[at], *kept]


class Seconds(click.FloatRange):
    """A number of seconds: 0 or more, finite: ``-1``, ``nan`` and ``inf`` are usage errors,
    not a wait that never ends or one that fails later."""

    name = "seconds"

    def __init__(self) -> None:
        super().__init__(min=0.0)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        seconds = super().convert(value, param, ctx)
        if not math.isfinite(seconds):
            self.fail(f"{value!r} is not a finite number of seconds", param, ctx)
        return seconds


SECONDS = Seconds()
