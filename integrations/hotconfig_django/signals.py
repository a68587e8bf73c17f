"""``config_updated``: a Django signal sent in every process on every change.

Connect to it from an ``AppConfig.ready()``; its arguments are django-constance's, plus the
:class:`hotconfig.Change`::

    from django.dispatch import receiver
    from hotconfig_django.signals import config_updated


    @receiver(config_updated)
    def on_update(sender, key, old_value, new_value, change, **kwargs): ...

Receivers run on the listener thread of each process (or in the thread that entered
``override_config``, or wrote through the constance backend), one at a time, after the new
value is live. One that raises is logged,
the others still run, and the failure is counted in ``config.stats.receiver_errors``.
"""

from __future__ import annotations

import logging

from django.db import connections
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
    """The client's receiver for every key; called on the listener thread, or on the thread
    that pinned (``override_config``) or wrote (the constance backend) the change."""
    try:
        results = config_updated.send_robust(
            sender=config, key=change.key, old_value=change.old, new_value=change.new, change=change
        )
    finally:
        _close_stale_connections()
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


def _close_stale_connections() -> None:
    """What Django does at the end of a request, for the thread that ran the receivers.

    A receiver that queried the database opened a connection owned by this thread, and the
    listener thread has no requests to close it. A connection inside a transaction is left
    alone: the receivers of a write run on the writer's thread, maybe in its atomic block (a
    view under ATOMIC_REQUESTS, a TestCase), and closing it there would break the transaction.
    """
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()
