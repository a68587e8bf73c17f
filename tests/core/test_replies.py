"""Replies read in bulk from a subscribed connection: the same replies, in the same order, with
the same errors, whether read from the hiredis reader or through redis-py's public path."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from hotconfig._redis.replies import Replies
from hotconfig.testing import EmbeddedServer

COUNT = 3_000  # more than one socket read holds


_clients: list[redis.Redis] = []  # a client closes its pool's connections when collected


def _subscribed(server: EmbeddedServer) -> tuple[Any, Any]:
    """A subscription to "c" and its connection (the PubSub must live: it owns the connection)."""
    client = redis.Redis(host=server.host, port=server.port, protocol=2)
    _clients.append(client)
    pubsub = client.pubsub()
    pubsub.subscribe("c")
    assert pubsub.get_message(timeout=5)["type"] == "subscribe"
    return pubsub, pubsub.connection


@pytest.mark.parametrize("bulk", [True, False], ids=["hiredis", "public"])
def test_a_burst_is_read_whole_in_order_and_only_what_is_waiting(
    server: EmbeddedServer, redis_client: redis.Redis, bulk: bool
) -> None:
    pubsub, connection = _subscribed(server)
    replies = Replies(connection)
    assert (replies._parser is not None) is True  # the locked redis-py has a hiredis reader
    if not bulk:
        replies._parser = None
    pipe = redis_client.pipeline(transaction=False)
    for i in range(COUNT):
        pipe.publish("c", f"m{i}".encode() * 20)
    pipe.execute()
    read: list[bytes] = []
    while len(read) < COUNT:
        assert connection.can_read(timeout=5)
        read += [reply[2] for reply in replies.waiting(COUNT)]
    assert read == [f"m{i}".encode() * 20 for i in range(COUNT)]
    assert not connection.can_read(timeout=0.05)  # nothing read ahead, nothing left behind
    # A limit is kept: two replies waiting, one asked for, one left for the next batch.
    redis_client.publish("c", b"x")
    redis_client.publish("c", b"y")
    assert connection.can_read(timeout=5)
    assert [reply[2] for reply in replies.waiting(1)] == [b"x"]
    assert connection.can_read(timeout=5)
    assert [reply[2] for reply in replies.waiting(10)] == [b"y"]
    pubsub.close()


@pytest.mark.parametrize("bulk", [True, False], ids=["hiredis", "public"])
def test_an_error_reply_is_raised_where_it_stands(server: EmbeddedServer, bulk: bool) -> None:
    pubsub, connection = _subscribed(server)
    replies = Replies(connection)
    if not bulk:
        replies._parser = None
    connection.send_command("PING", "before")
    connection.send_command("GET", "k")  # refused in subscribed mode under RESP2
    seen: list[Any] = []

    def read_all() -> None:
        while True:
            assert connection.can_read(timeout=5)
            seen.extend(reply[1] for reply in replies.waiting(10))

    with pytest.raises(redis.ResponseError):
        read_all()
    assert seen == [b"before"]
    pubsub.close()


def test_a_closed_connection_is_a_connection_error(server: EmbeddedServer) -> None:
    pubsub, connection = _subscribed(server)
    replies = Replies(connection)
    server.client().client_kill_filter(_type="pubsub")
    with pytest.raises(redis.ConnectionError):  # the first read blocks until the close
        list(replies.waiting(10))
    pubsub.close()
