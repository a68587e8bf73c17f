"""A message heard on a channel, read once for every browser that follows it.

The bridge's reader thread reads each message once (:func:`read`), whatever the number of
browsers: the channel's delivery class, and what that class needs from the message. An
:class:`Ephemeral` or :class:`Sequenced` channel needs its JSON fields, decoded under the
wire's one set of limits (:func:`hotconfig._config.wire.decode_within`: at most 1 MiB,
64 levels of nesting, numbers that fit, valid UTF-8); a message that is not a JSON object
within them is "not JSON", forwarded as it came (no coalescing, no ordering) and counted
(``unparsed``). A :class:`Replayable` channel's message is taken out of its envelope.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple

from .._config.wire import decode_within
from ..errors import InvalidMessageError, RejectReason
from ._classes import Delivery, Ephemeral, Sequenced, delivery_for
from ._events import Tally
from ._history import Position, Replayable, unwrap

__all__ = ["Incoming", "read"]

# Not JSON by design (a publisher may send text): counted, not warned about.
_QUIET_REASONS = (RejectReason.INVALID_JSON, RejectReason.NOT_OBJECT)


class Incoming(NamedTuple):
    """One message as every subscription receives it (shared: never changed)."""

    channel: str
    data: bytes  # as published (a replayable message: out of its envelope)
    delivery: Delivery | None = None
    key: str | None = None  # Ephemeral: what a later message replaces it by (None: nothing)
    ordinal: int | None = None  # Sequenced: its index in the stream (None: it has none)
    done: bool = False  # Sequenced: it ends the stream
    at: Position | None = None  # Replayable: its place in the history (None: no envelope)


def read(classes: Mapping[str, Delivery], channel: str, data: bytes, tally: Tally) -> Incoming:
    """What ``data``, heard on ``channel``, is under the channel's class; never raises for
    what a publisher sends."""
    delivery = delivery_for(classes, channel)
    if isinstance(delivery, Replayable):
        wrapped = unwrap(data)
        if wrapped is None:
            return Incoming(channel, data, delivery)
        return Incoming(channel, wrapped[1], delivery, at=wrapped[0])
    if not isinstance(delivery, Ephemeral | Sequenced):
        return Incoming(channel, data, delivery)
    fields = _fields(channel, data, tally)
    if isinstance(delivery, Ephemeral):
        value = fields.get(delivery.key)
        key = None if value is None else _coalescing_key(channel, value)
        return Incoming(channel, data, delivery, key=key)
    index = fields.get(delivery.index)
    if type(index) is not int:  # a bool is not an index, nor is 1.0
        index = None
    return Incoming(channel, data, delivery, ordinal=index, done=fields.get(delivery.done) is True)


def _fields(channel: str, data: bytes, tally: Tally) -> dict[str, Any]:
    """The message's JSON object; empty if it is not one within the wire's limits."""
    try:
        value = decode_within(data)
    except InvalidMessageError as exc:
        tally.add("unparsed")
        if exc.reason not in _QUIET_REASONS:
            tally.warn(
                "unparsed",
                "a message on %s is not JSON within the wire's limits (%s: %s): forwarded as "
                "it came, without coalescing or ordering",
                channel,
                exc.reason,
                exc.detail,
            )
        return {}
    if type(value) is not dict:
        tally.add("unparsed")
        return {}
    return value


def _coalescing_key(channel: str, value: Any) -> str:
    # JSON, so the key never holds a raw NUL (the outbox's separator): ["channel", value].
    return json.dumps([channel, value])
