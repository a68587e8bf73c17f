"""Sharded Pub/Sub for the listener: SSUBSCRIBE on the master that serves the store's slot.

In sharded mode (a ``redis+cluster://`` URL with ``?sharded=1``, or ``sharded=True``) the store
SPUBLISHes each change on its shard channel ``{ns}:<channel>``
(:meth:`~.keyspace.Keyspace.shard_channel`), which lives in the store's slot: only the
master serving that slot and its replicas carry it, where a classic PUBLISH is broadcast over
the cluster bus to every node. The listener's one subscription connection, opened to that
master (:meth:`~hotconfig._redis.connection.Target.listener_clients`), holds both kinds at once:

* SUBSCRIBE to the classic channel, so that raw publishers (and a store not yet switched to
  sharded mode during a rollout) still reach the client; a version that arrives both ways is
  dropped by the state as a duplicate;
* SSUBSCRIBE to the shard channel, and to the private probe channel, in the same slot, so the
  delivery probe proves the path the store's changes take.

When the slot moves (a reshard, a failover), the old master ends its shard subscriptions with
an unsolicited ``sunsubscribe``, and an SSUBSCRIBE sent to a master that no longer serves the
slot answers ``-MOVED``. Each raises :class:`SlotMoved`, a :class:`ConnectionError`: the
listener connects to the new owner, subscribes again and resyncs from the store, as after any
drop, so no version is lost. The anti-entropy poll also compares the subscription's node with
the owner in the cluster client's slot map (refreshed by every redirection it follows), in case
the ``sunsubscribe`` never came (the old master was cut off).

The two commands are written on the connection the listener already reads by hand, not through
redis-py's ``ClusterPubSub``: fixes to its sharded Pub/Sub landed only in 2026 (redis-py pull
requests 4038, 4044 and 4076), long after the lowest redis-py hotconfig supports, and its silent
reconnects are what the listener avoids anyway.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import redis

__all__ = ["SlotMoved", "check_owner", "publish", "subscribe", "unsubscribed"]


class SlotMoved(ConnectionError):
    """The store's slot is served by another master now: subscribe there, and resync."""


def subscribe(connection: Any, channels: Sequence[str], timeout: float) -> None:
    """SSUBSCRIBE ``channels`` (all in one slot) on ``connection``; return once acknowledged.

    Any other reply read meanwhile (a classic message) is dropped: the listener loads the
    store's snapshot only after this returns, and that snapshot covers it.
    """
    connection.send_command("SSUBSCRIBE", *channels)
    pending = {channel.encode() for channel in channels}
    deadline = time.monotonic() + timeout
    while pending:
        left = deadline - time.monotonic()
        if left <= 0:
            raise ConnectionError("no SSUBSCRIBE acknowledgement from Redis in time")
        if not connection.can_read(timeout=min(left, 0.1)):
            continue
        try:
            reply = connection.read_response(push_request=True)
        except redis.exceptions.MovedError as exc:
            # A ResponseError, which the listener would take for a misconfiguration.
            raise SlotMoved(
                f"the store's slot {exc.slot_id} moved to {exc.host}:{exc.port} "
                "before SSUBSCRIBE reached it"
            ) from None
        if reply[0] == b"ssubscribe":
            pending.discard(reply[1])


def unsubscribed(channel: bytes) -> SlotMoved:
    """The error for an unsolicited ``sunsubscribe``: Redis sends it when the slot moves away."""
    return SlotMoved(
        f"Redis ended the shard subscription to {channel.decode(errors='replace')!r}: "
        "the store's slot moved to another master"
    )


def publish(client: Any, channel: str, message: bytes) -> None:
    """SPUBLISH ``message`` through the cluster client, which routes it to the slot's owner."""
    try:
        client.execute_command("SPUBLISH", channel, message)
    except redis.exceptions.AskError as exc:  # MOVED included: redirections ran out
        raise SlotMoved(f"the store's slot is moving to {exc.host}:{exc.port}") from None


def check_owner(client: Any, connection: Any, channel: str) -> None:
    """Raise :class:`SlotMoved` if ``client``'s slot map puts ``channel`` on another master
    than ``connection``'s; no network round trip (the map is the client's cache)."""
    node = client.get_node_from_key(channel)
    here = (getattr(connection, "host", None), getattr(connection, "port", None))
    if here != (node.host, node.port):
        raise SlotMoved(f"the store's slot is served by {node.host}:{node.port} now")
