"""``config_updated``: a Django signal sent in every process on every change.

Connect to it from an ``AppConfig.ready()``; its arguments are django-constance's, plus the
:class:`hotconfig.Change`::

    from django.dispatch import receiver
    from hotconfig_django.signals import config_updated


    @receiver(config_updated)
    def on_update(sender, key, old_value, new_value, change, **kwargs): ...

Receivers run on the listener thread of each process (or in the thread that entered
``override_config``), one at a time, after the new value is live. One that raises is logged,
the others still run, and the failure is counted in ``config.stats.receiver_errors``.
"""

from __future__ import annotations

import logging

from django.db import close_old_connections
from django.dispatch import Signal

from hotconfig import Change

from .errors import ReceiverError
from .lazy import config

__all__ = ["config_updated"]

log = logging.getLogger("hotconfig_django")

config_updated = Signal()
"""Sent with ``sender=hotconfig_django.config`` and ``key``, ``old_value``, ``new_value``,
``change`` after each change is live in this process."""


def send_config_updated(change: Change) -> None:
    """The client's receiver for every key; called on the listener thread."""
    try:
        results = config_updated.send_robust(
            sender=config, key=change.key, old_value=change.old, new_value=change.new, change=change
        )
    finally:
        # A receiver that queried the database opened a connection owned by this thread;
        # request handling would close it, the listener thread has no requests.
        close_old_connections()
    failures = [(receiver, error) for receiver, error in results if isinstance(error, Exception)]
    for receiver, error in failures:
        log.error(
            "hotconfig: config_updated receiver %r raised for %r",
            receiver,
            change.key,
            exc_info=error,
        )
    if failures:
        raise ReceiverError(f"{len(failures)} config_updated receiver(s) raised; see the log")
