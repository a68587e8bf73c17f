"""Which hotconfig client belongs to the app of the current application context.

Each app's client lives in ``app.extensions["hotconfig"]``. The lookup reads Flask's context
through the bound ``_get_current_object`` of ``current_app`` (werkzeug's documented way to
reach the object behind a proxy): one context-variable read, where ``current_app.config``
pays for the proxy's attribute forwarding on every access.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from flask import Flask, current_app, has_app_context
from werkzeug.local import LocalProxy

import hotconfig

from .errors import NoAppContextError, NotRegisteredError

__all__ = ["EXTENSION", "current_app_object", "current_client", "lookup_error"]

EXTENSION = "hotconfig"
"""The key of ``app.extensions`` that holds the app's :class:`hotconfig.HotConfig`."""

current_app_object: Callable[[], Flask] = cast("LocalProxy[Flask]", current_app)._get_current_object


def current_client() -> hotconfig.HotConfig[Any]:
    """The current app's client; raises saying whether the context or ``init_app`` is missing."""
    try:
        client: hotconfig.HotConfig[Any] = current_app_object().extensions[EXTENSION]
    except (RuntimeError, KeyError):
        raise lookup_error() from None
    return client


def lookup_error() -> Exception:
    """The error for a failed lookup of the current app's client, saying which step failed."""
    if not has_app_context():
        return NoAppContextError(
            "hotconfig_flask: no Flask application context, so there is no app to read the "
            "configuration of; inside a request or a `flask` command there is one, elsewhere "
            "wrap the code in `with app.app_context():` (or use app.extensions['hotconfig'])"
        )
    return NotRegisteredError(
        f"hotconfig_flask is not set up on the Flask app {current_app_object().name!r}: did "
        "you forget to call init_app(app) (or HotConfig(app)) in the app factory?"
    )
