"""The channel bridge: Redis Pub/Sub channels to any number of browsers over one connection.

:class:`Bridge` is the public object (one per process); the delivery classes
(:class:`Ephemeral`, :class:`Sequenced`, :class:`Replayable`) say what each channel pattern
guarantees a browser; :class:`ReplayPublisher` writes a replayable channel's history.
:mod:`hotconfig.bridge.serving` serves subscriptions as Server-Sent Events and WebSockets for
every framework adapter. The modules with a leading underscore are the bridge's internals: the
hub (``_hub``), its subscription links (``_links``), sharded routing (``_routing``), resume
(``_recovery``), history (``_history``), delivery (``_delivery``) and per-connection outboxes
(``_outbox``).
"""

from __future__ import annotations

from ._delivery import (
    Delivery,
    Ephemeral,
    Event,
    EventKind,
    Replayable,
    Sequenced,
    Subscription,
)
from ._history import Position, ReplayPublisher
from ._hub import Bridge, BridgeStats
from ._recovery import Reason

__all__ = [
    "Bridge",
    "BridgeStats",
    "Delivery",
    "Ephemeral",
    "Event",
    "EventKind",
    "Position",
    "Reason",
    "ReplayPublisher",
    "Replayable",
    "Sequenced",
    "Subscription",
]
