"""Change records, client status, and the module-level blinker signals.

Listen without holding a client::

    from hotconfig import signals


    @signals.config_changed.connect_via("ai.model.default")
    def on_model(key: str, change: hotconfig.Change) -> None: ...

Sync receivers of every signal here run on the thread that applied the change or the status
move: the listener thread of the client that sent it (or the thread calling
``hotconfig.testing.override``, or ``close()``'s caller for the move to CLOSED), one at a time;
a receiver that raises is logged and counted, and the others still run. An ``async def``
receiver runs on the event loop it was connected from; connecting one outside a running loop
raises :class:`TypeError`.
"""

from __future__ import annotations

import enum

from blinker import NamedSignal, Namespace

from ._config.receivers import Receiver, send_isolated, watch_async
from ._config.update import Change
from .errors import RejectReason

__all__ = [
    "Change",
    "Receiver",
    "RejectReason",
    "Status",
    "config_changed",
    "config_rejected",
    "send_isolated",
    "status_changed",
]

_signals = Namespace()

config_changed: NamedSignal = _signals.signal(
    "config-changed",
    doc="Sent with the key as sender and ``change=Change(...)`` after a new snapshot is live.",
)
config_rejected: NamedSignal = _signals.signal(
    "config-rejected",
    doc="Sent with the client as sender and ``reason`` (a RejectReason), ``error``, ``key`` and "
    "``version`` (each None when unknown) when a message or value is refused; the previous "
    "value stays in effect.",
)
status_changed: NamedSignal = _signals.signal(
    "status-changed",
    doc="Sent with the client as sender and ``old``, ``new`` (Status) on every status move.",
)

for _signal in (config_changed, config_rejected, status_changed):
    watch_async(_signal)


class Status(enum.StrEnum):
    """Where a client is: STARTING → LIVE ⇄ INTERRUPTED → CLOSED, or MISCONFIGURED.

    MISCONFIGURED means the server answered but refused this client — a wrong password, an ACL
    without the needed permissions, not a Redis server at that address — as opposed to an
    outage (INTERRUPTED, or STARTING before the first success): retrying faster will not help,
    and ``stats.last_error`` says what to fix. The client still retries slowly and goes LIVE
    by itself once the fix is in.
    """

    STARTING = "STARTING"
    LIVE = "LIVE"
    INTERRUPTED = "INTERRUPTED"
    MISCONFIGURED = "MISCONFIGURED"
    CLOSED = "CLOSED"

    def __str__(self) -> str:
        return self.value
