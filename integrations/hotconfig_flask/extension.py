"""The Flask extension: one :class:`hotconfig.HotConfig` client per app, set up by ``init_app``.

::

    hot = HotConfig(model=Settings)  # module level, no app yet


    def create_app() -> Flask:
        app = Flask(__name__)
        app.config.from_prefixed_env()  # FLASK_HOTCONFIG_URL=redis://...
        hot.init_app(app)
        return app

The extension object keeps no app: ``hot.get(key)`` and ``hot.settings`` read the client of
whichever app is current, so one extension serves any number of apps in one process.
"""

from __future__ import annotations

import functools
import inspect
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from flask import Flask
from pydantic import BaseModel

import hotconfig
from hotconfig.fleet import Reporter
from hotconfig.signals import Receiver

from . import cli
from .current import EXTENSION, current_app_object, current_client, lookup_error
from .errors import AlreadyRegisteredError, ExtensionSetupError, NotRegisteredError
from .mirror import Mirror
from .options import Options
from .reloader import flask_command, is_reloader_watcher

__all__ = ["HotConfig"]

log = logging.getLogger("hotconfig.flask")

ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class _Registration:
    """A receiver registered on the extension, attached to each app's client."""

    pattern: str
    receiver: Receiver
    app_context: bool

    def attach(self, app: Flask, client: hotconfig.HotConfig[Any]) -> None:
        target = self.receiver
        if self.app_context:
            target = _in_app_context(app, self.receiver)
        client.on_change(self.pattern)(target)


def _in_app_context(app: Flask, receiver: Receiver) -> Receiver:
    @functools.wraps(receiver)
    def in_context(change: hotconfig.Change) -> object:
        with app.app_context():
            return receiver(change)

    return in_context


class HotConfig(Generic[ModelT]):
    """hotconfig for Flask apps: ``HotConfig(app)``, or ``HotConfig()`` then ``init_app(app)``.

    ``model`` is the pydantic model of the settings (the default of ``HOTCONFIG_MODEL``); it
    also gives :attr:`settings` its type. Reads through this object go to the client of the
    current app and raise :class:`~hotconfig_flask.NoAppContextError` outside an application
    context.
    """

    __slots__ = ("__weakref__", "_apps", "_model", "_registrations")

    def __init__(self, app: Flask | None = None, *, model: type[ModelT] | None = None) -> None:
        self._model = model
        self._registrations: list[_Registration] = []
        self._apps: weakref.WeakSet[Flask] = weakref.WeakSet()
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Create ``app``'s client from its ``HOTCONFIG_*`` keys and start it.

        Waits up to ``HOTCONFIG_START_TIMEOUT`` seconds for the first snapshot, then serves
        model defaults (or the last-known-good file) while the listener keeps retrying. Does
        not start in the Werkzeug reloader's watcher process, nor with ``HOTCONFIG_START =
        False``.
        """
        if EXTENSION in app.extensions:
            raise AlreadyRegisteredError(
                f"the Flask app {app.name!r} already has a hotconfig client: init_app was "
                "called twice for it, or two HotConfig extensions were given the same app; "
                "create one extension and call init_app once per app"
            )
        options = Options.from_app(app, self._model)
        client = _new_client(options)
        app.extensions[EXTENSION] = client
        Mirror(app, client, options.mirror).install()
        for registration in self._registrations:
            registration.attach(app, client)
        self._apps.add(app)
        app.cli.add_command(cli.group)
        if not options.start:
            return
        if is_reloader_watcher():
            log.info("hotconfig: not following the store in the reloader's watcher process")
            return
        if (command := flask_command()) is not None:
            log.info(
                "hotconfig: not following the store in `%s`, which serves no requests "
                "(reads give defaults or the last-known-good file; call "
                "app.extensions['hotconfig'].start() where a command needs the stored values)",
                command,
            )
            return
        if client.start(timeout=options.start_timeout):
            return
        if client.status is hotconfig.Status.MISCONFIGURED:
            log.error(
                "hotconfig: the server refused the client of the Flask app %r (%s); fix "
                "HOTCONFIG_URL (password, ACL user) and the client goes LIVE by itself; "
                "serving defaults meanwhile",
                app.name,
                client.stats.last_error,
            )
        else:
            log.warning(
                "hotconfig: %r has no snapshot from the store after %ss; serving defaults "
                "while it keeps retrying",
                client,
                options.start_timeout,
            )

    # -- reads: the current app's client --------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        """The current app's effective value of ``key``, or ``default`` if it is unset."""
        try:
            client = current_app_object().extensions[EXTENSION]
        except (RuntimeError, KeyError):
            raise lookup_error() from None
        return client.get(key, default)

    def __getitem__(self, key: str) -> Any:
        """The current app's value of ``key``; :class:`hotconfig.ConfigKeyError` if unset."""
        try:
            client = current_app_object().extensions[EXTENSION]
        except (RuntimeError, KeyError):
            raise lookup_error() from None
        return client[key]

    def __contains__(self, key: object) -> bool:
        return key in current_client()

    @property
    def settings(self) -> ModelT:
        """The current app's typed settings (read-only): the same object until the next change."""
        try:
            client: hotconfig.HotConfig[ModelT] = current_app_object().extensions[EXTENSION]
        except (RuntimeError, KeyError):
            raise lookup_error() from None
        return client.settings

    def snapshot(self) -> hotconfig.Snapshot:
        """The current app's immutable mapping of every value: one consistent view."""
        return current_client().snapshot()

    @property
    def client(self) -> hotconfig.HotConfig[ModelT]:
        """The current app's :class:`hotconfig.HotConfig` (``version``, ``status``, ``stats``,
        ``wait_for_version``, ``close``)."""
        client: hotconfig.HotConfig[ModelT] = current_client()
        return client

    # -- change receivers -----------------------------------------------------------------------

    def on_change(
        self, pattern: str = "*", *, app_context: bool = True, app: Flask | None = None
    ) -> Callable[[Receiver], Receiver]:
        """Register a receiver for changes of keys matching ``pattern`` (fnmatch).

        Without ``app``, the receiver is attached to every app this extension sets up, those
        already set up and those to come; with ``app``, to that app only. Receivers are
        called on the listener thread of the app's client, one at a time, after the new
        snapshot is live. Each call runs inside an application context of the app the change
        belongs to (``current_app``, ``g``, ``app.logger``, extensions that need a context),
        pushed and torn down around it; ``app_context=False`` runs it on the bare thread.
        """

        def register(receiver: Receiver) -> Receiver:
            if inspect.iscoroutinefunction(receiver):
                raise TypeError(
                    f"{receiver.__qualname__} is async, but a Flask app has no long-lived event "
                    "loop to run it on; make it a plain def (it runs on the listener thread)"
                )
            registration = _Registration(pattern, receiver, app_context)
            if app is not None:
                if app not in self._apps:
                    raise NotRegisteredError(
                        f"this HotConfig extension is not set up on the Flask app {app.name!r}: "
                        "did you forget to call init_app(app)?"
                    )
                registration.attach(app, app.extensions[EXTENSION])
            else:
                self._registrations.append(registration)
                for known in list(self._apps):
                    registration.attach(known, known.extensions[EXTENSION])
            return receiver

        return register

    def __repr__(self) -> str:
        model = self._model.__name__ if self._model is not None else None
        return f"<hotconfig_flask.HotConfig model={model} apps={len(self._apps)}>"


def _new_client(options: Options) -> hotconfig.HotConfig[Any]:
    client_options = dict(options.client_options)
    health = bool(client_options.pop("health", True))
    try:
        client: hotconfig.HotConfig[Any] = hotconfig.HotConfig(
            options.url,
            model=options.model,
            scopes=options.scopes,
            service=options.service,
            health=False,
            **client_options,
        )
    except (TypeError, ValueError) as exc:
        # The core's message names the problem (a bad scope, a model without defaults).
        raise ExtensionSetupError(f"hotconfig_flask: cannot create the client: {exc}") from exc
    if health:
        # The fleet's reporter attaches from outside and says which framework runs the client.
        client.attach(Reporter(client, framework="flask"))
    return client
