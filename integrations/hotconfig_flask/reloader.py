"""Which process is the Werkzeug reloader's watcher, which must not follow the store.

``flask run --debug`` (or ``--reload``) loads the app in a first process that only watches
files and restarts a second one, marked ``WERKZEUG_RUN_MAIN=true``, that serves. Both run the
app factory, so both call ``init_app``; a listener in the watcher would be a second
subscription per developer machine that serves nobody.
"""

from __future__ import annotations

import click
from flask.cli import run_command
from flask.helpers import get_debug_flag
from werkzeug.serving import is_running_from_reloader

__all__ = ["is_reloader_watcher"]


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
