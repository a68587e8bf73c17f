"""A bridged event stream as a WSGI body (bridge/serving/_wsgi.py), on a real server.

A :class:`BlockingStream` is read here as a WSGI server reads a response body, on a thread of
its own, while plain redis-py publishes as an outside service does.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator

import pytest
import redis

from hotconfig.bridge import Bridge, Delivery, Ephemeral, Sequenced
from hotconfig.bridge.serving import KEEPALIVE, BlockingStream, shared_loop
from hotconfig.testing import EmbeddedServer
from tests.bridging import subscribers
from tests.waiting import eventually

TOKENS = [
    {"token": "Revenue", "index": 0, "type": "text"},
    {"token": " grew", "index": 1, "type": "text"},
]
DONE = {"done": True, "sql": "SELECT 1", "data": []}


@pytest.fixture
def bridge(server: EmbeddedServer) -> Iterator[Bridge]:
    classes: dict[str, Delivery] = {
        "ai:stream:*": Sequenced(idle_timeout=5),
        "dashboard:refresh:*": Ephemeral(),
    }
    with Bridge(server.url, classes=classes) as opened:
        yield opened


def test_a_blocking_stream_yields_keepalives_then_each_message_and_ends_after_done(
    bridge: Bridge, redis_client: redis.Redis
) -> None:
    stream = BlockingStream(bridge, "ai:stream:sess-abc", keepalive=0.2)
    # The first chunk comes once Redis acknowledged the subscription: nothing is missed after.
    assert next(stream) == KEEPALIVE
    assert subscribers(redis_client, "ai:stream:sess-abc") == 1
    assert next(stream) == KEEPALIVE  # nothing published: a keep-alive, 0.2 s later
    sent = [json.dumps(m) for m in (TOKENS[0], TOKENS[1], DONE)]
    for message in sent:
        redis_client.publish("ai:stream:sess-abc", message)
    # What arrived at once goes out in one write: the bytes, not the chunks, are the stream.
    received = b"".join(chunk for chunk in stream if chunk != KEEPALIVE)
    assert received == b"".join(f"data: {message}\n\n".encode() for message in sent)
    assert bridge.stats.subscribers == 0
    assert eventually(lambda: subscribers(redis_client, "ai:stream:sess-abc") == 0)


def test_closing_a_blocking_stream_as_the_wsgi_server_does_ends_its_subscription(
    bridge: Bridge, redis_client: redis.Redis
) -> None:
    stream = BlockingStream(bridge, "dashboard:refresh:sales", keepalive=5)
    assert next(stream) == KEEPALIVE
    assert bridge.stats.subscribers == 1
    stream.close()  # the browser left: the server's write failed, and it closes the body
    stream.close()
    assert bridge.stats.subscribers == 0
    assert list(stream) == []
    assert eventually(lambda: subscribers(redis_client, "dashboard:refresh:sales") == 0)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_runs_a_loop_of_its_own() -> None:
    parent = shared_loop()
    assert shared_loop() is parent
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child, as a gunicorn worker forked from a master that used the bridge
        answer = b"failed"
        try:
            child = shared_loop()
            result = asyncio.run_coroutine_threadsafe(asyncio.sleep(0, b"ran"), child).result(5)
            answer = result if child is not parent else b"the parent's loop"
        finally:
            os.write(write, answer)
            os._exit(0)
    os.close(write)
    try:
        assert os.read(read, 100) == b"ran"
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    assert asyncio.run_coroutine_threadsafe(asyncio.sleep(0, 1), parent).result(5) == 1
