"""The ``hotconfig`` command: read and write the store, watch the fleet, wait for convergence.

Needs the ``cli`` extra (``pip install 'hotconfig[cli]'``: click and rich). The command group
is :data:`group` (a :class:`click.Group`), so that framework CLIs can mount the same commands
(``manage.py hotconfig ...``, ``flask hotconfig ...``)::

    from hotconfig.cli import group

    app.cli.add_command(group, "hotconfig")

The integrations mount it with their app's settings through :func:`framework_group` and
:class:`AppDefaults` (the app's URL and client options, used unless the command line says
otherwise); a framework's own commands share the command's :class:`Session` (``pass_session``)
and report a :class:`Failure` the same way.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .commands import framework_group, group
    from .session import AppDefaults, Failure, Session, pass_session

__all__ = ["AppDefaults", "Failure", "Session", "framework_group", "group", "main", "pass_session"]

HINT = "the hotconfig command needs click and rich: pip install 'hotconfig[cli]'"


def main(argv: list[str] | None = None) -> None:
    """Run the ``hotconfig`` command (the console script's entry point)."""
    try:
        from .commands import group
    except ImportError as exc:
        if exc.name not in ("click", "rich"):
            raise
        print(f"error: {HINT}", file=sys.stderr)
        raise SystemExit(2) from None
    group.main(args=argv, prog_name="hotconfig")


def __getattr__(name: str) -> Any:
    if name in ("AppDefaults", "Failure", "Session", "framework_group", "group", "pass_session"):
        try:
            from . import commands
        except ImportError as exc:
            if exc.name not in ("click", "rich"):
                raise
            raise ImportError(HINT) from None
        return getattr(commands, name)
    raise AttributeError(f"module 'hotconfig.cli' has no attribute {name!r}")
