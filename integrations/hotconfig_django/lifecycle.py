"""Build, start and close the app's client; the integration's only owner of connections."""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any

from django.core.management import get_commands

from hotconfig import ConfigStore, Status

from . import conf, process
from .errors import ConfigNotReadyError, HotConfigSettingsError
from .lazy import config

__all__ = [
    "current_decision",
    "ensure_setup",
    "open_store",
    "setup",
    "start",
    "store",
    "teardown",
]

log = logging.getLogger("hotconfig_django")

_lock = threading.Lock()
_setup_lock = threading.RLock()
_conf: conf.DjangoConf | None = None
_decision: process.Decision | None = None
_store: ConfigStore | None = None


def ensure_setup() -> None:
    """:func:`setup`, unless it already ran: the app's ready(), or the first read of config."""
    with _setup_lock:
        if config._client is None and config._failure is None:
            setup()


def setup() -> None:
    """Build the client from ``settings.HOTCONFIG`` and start it if this process serves.

    :func:`ensure_setup` calls it once per process; calling it again (tests that change
    settings) closes the previous client first. A bad setting is not raised here: reads
    raise it, and the system checks report it with a hint.
    """
    with _setup_lock:
        _setup()


def _setup() -> None:
    global _conf, _decision
    teardown()
    from .signals import send_config_updated

    try:
        loaded = conf.load()
        client = conf.build_client(loaded)
    except HotConfigSettingsError as exc:
        log.error("hotconfig: %s", exc)
        config._fail(exc)
        return
    client.on_change("*")(send_config_updated)
    if conf.uses_constance_backend():
        from .constance import forward_constance_signal

        forward_constance_signal()
    decision = process.decide(loaded.start, sys.argv, commands=get_commands())
    with _lock:
        _conf, _decision = loaded, decision
    config._bind(client)
    if decision.listen:
        if client.start(timeout=loaded.start_timeout):
            return
        if client.status is Status.MISCONFIGURED:
            log.error(
                "hotconfig: %s refuses this client (%s); fix HOTCONFIG['URL'] or the server's "
                "ACL, meanwhile serving defaults or the last-known-good file",
                loaded.shown_url,
                client.stats.last_error,
            )
        else:
            log.warning(
                "hotconfig: %s did not answer within %ss; serving defaults or the last-known-good"
                " file while the listener keeps trying",
                loaded.shown_url,
                loaded.start_timeout,
            )
    else:
        log.info("hotconfig: no listener in %s", decision.role.value)


def start(timeout: float | None = None) -> bool:
    """Follow the store in this process too (e.g. in a management command); True once LIVE.

    Waits at most ``timeout`` seconds (default ``HOTCONFIG["START_TIMEOUT"]``) for the first
    snapshot; after that the listener keeps trying in the background.
    """
    client = config.client
    bound = _conf.start_timeout if _conf is not None else 5.0
    return client.start(timeout=bound if timeout is None else timeout)


def current_decision() -> process.Decision:
    """Why this process does or does not run a listener."""
    if _decision is None:
        raise ConfigNotReadyError("hotconfig_django has not been set up yet")
    return _decision


def store() -> ConfigStore:
    """The process's :class:`ConfigStore` for the configured URL, namespace and channel."""
    global _store
    with _lock:
        if _store is None:
            loaded = _conf if _conf is not None else conf.load()
            # Bounded like the listener's own requests: a write must not hang a request.
            _store = open_store(loaded, timeout=loaded.timings.socket_timeout)
        return _store


def open_store(loaded: conf.DjangoConf, timeout: float | None) -> ConfigStore:
    """A new :class:`ConfigStore` for ``loaded``'s server, namespace and channel.

    ``timeout`` bounds each connect and command, in seconds.
    """
    options: dict[str, Any] = {
        name: loaded.options[name]
        # Writes must be signed with the ring the clients verify (default: the environment's).
        for name in ("channel", "namespace", "signing_keys")
        if name in loaded.options
    }
    # The client's own connection options (TLS files, client name) apply to writes too.
    redis_kwargs = {
        **loaded.connection.redis_kwargs,
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
    }
    return ConfigStore(
        loaded.effective_url,
        max_message_bytes=loaded.limits.max_message_bytes,
        redis_kwargs=redis_kwargs,
        sharded=loaded.connection.sharded,
        **options,
    )


def teardown() -> None:
    """Close the client and the store (tests, shutdown); ``config`` is unbound until setup."""
    global _conf, _decision, _store
    with _lock:
        previous, _store = _store, None
        _conf = _decision = None
    client = config._client
    config._unbind()
    if client is not None:
        client.close()
    if previous is not None:
        previous.close()
