"""The channel bridge: Redis Pub/Sub channels to any number of browsers over one connection.

:class:`Bridge` is the public object (one per process); the delivery classes
(:class:`Ephemeral`, :class:`Sequenced`, :class:`Replayable`) say what each channel pattern
guarantees a browser; :class:`ReplayPublisher` writes a replayable channel's history.
:mod:`hotconfig.bridge.serving` serves subscriptions as Server-Sent Events and WebSockets for
every framework adapter. The modules with a leading underscore are the bridge's internals: the
hub (``_hub``), its subscription links (``_links``), the router that places channels on them
(``_routing``), resume (``_recovery``), history (``_history``), channel names and delivery
classes (``_classes``), each message as read once for all browsers (``_incoming``), one
browser's subscription (``_delivery``), the events it gets (``_events``) and per-connection
outboxes (``_outbox``).
"""

from __future__ import annotations

from ._classes import Delivery, Ephemeral, Replayable, Sequenced
from ._delivery import Subscription
from ._events import Event, EventKind
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
