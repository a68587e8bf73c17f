"""Which Flask processes serve requests, and so follow the store (DESIGN §5, "Lifecycle").

``flask run --debug`` (or ``--reload``) loads the app in a first process that only watches
files and restarts a second one, marked ``WERKZEUG_RUN_MAIN=true``, that serves. Both run the
app factory, so both call ``init_app``; a listener in the watcher would be a second
subscription per developer machine that serves nobody.

Every other ``flask`` command (``flask routes``, ``flask db upgrade``, ``flask shell``, the
extension's own ``flask hotconfig ...``) loads the app and serves nothing: a listener there
would wait for Redis (seconds, during an outage), register the command as an instance of the
fleet and run receivers. Only commands of Flask's own CLI count (its root is a
:class:`~flask.cli.FlaskGroup`): a Celery worker, or any other program that makes the app
inside a click command of its own, follows the store like a server.
"""

from __future__ import annotations

import click
from flask.cli import FlaskGroup, run_command
from flask.helpers import get_debug_flag
from werkzeug.serving import is_running_from_reloader

__all__ = ["flask_command", "is_reloader_watcher"]


def is_reloader_watcher() -> bool:
    """True in the process that ``flask run`` will turn into the reloader's file watcher."""
    if is_running_from_reloader():
        return False  # the serving child
    context = click.get_current_context(silent=True)
    if context is None or context.command is not run_command:
        return False
    reload = context.params.get("reload")
    # `flask run` resolves an unset --reload/--no-reload the same way, after loading the app.
    return bool(get_debug_flag() if reload is None else reload)


def flask_command() -> str | None:
    """The ``flask`` command that loads the app in this process (``"flask routes"``; just
    ``"flask"`` while the CLI looks up a command the app adds), if it serves no requests
    (anything but ``flask run``); None in a server, in ``flask run``, or outside Flask's CLI."""
    context = click.get_current_context(silent=True)
    if context is None or context.command is run_command:
        return None
    if not isinstance(context.find_root().command, FlaskGroup):
        return None
    return context.command_path
