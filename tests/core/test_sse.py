"""The one event stream every adapter writes (bridge/serving/_sse.py), without a framework.

What a browser would read, chunk by chunk: frames, the ``end`` event when the server stops,
nothing more when it was dropped; a bridged stream on a real server, published to by plain
redis-py as an outside service does.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
import redis

from hotconfig.bridge import Bridge, Delivery, Ephemeral, Event, EventKind, Replayable, Sequenced
from hotconfig.bridge.serving import (
    KEEPALIVE,
    Ending,
    Outbox,
    check_request,
    frame,
    sse_frame,
    sse_stream,
    websocket_text,
)
from hotconfig.bridge.serving._sse import event_stream
from hotconfig.testing import EmbeddedServer


@pytest.fixture
def bridge(server: EmbeddedServer) -> Iterator[Bridge]:
    classes: dict[str, Delivery] = {
        "ai:stream:*": Sequenced(idle_timeout=5),
        "dashboard:refresh:*": Ephemeral(),
    }
    with Bridge(server.url, classes=classes) as opened:
        yield opened


def test_a_notice_is_a_named_sse_event_and_a_json_websocket_frame() -> None:
    data = json.dumps({"channel": "ai:stream:s", "from": 1, "to": 2})
    gap = Event(EventKind.GAP, "ai:stream:s", data)
    assert sse_frame(gap) == f"event: gap\ndata: {data}\n\n".encode()
    assert json.loads(websocket_text(gap)) == {"event": "gap", **json.loads(data)}
    message = Event(EventKind.MESSAGE, "ai:stream:s", '{"token": "a"}')
    assert (sse_frame(message), websocket_text(message)) == (
        b'data: {"token": "a"}\n\n',
        message.data,
    )


def test_a_stream_the_server_stops_ends_with_the_end_event() -> None:
    async def scenario() -> list[bytes]:
        outbox = Outbox()
        outbox.put(frame('{"key": "ui.banner"}', event="change", id="7"))
        stream = event_stream(outbox, keepalive=5)
        first = await anext(stream)
        outbox.end(Ending.SHUTDOWN)  # what SIGTERM does to every open stream
        return [first, *[chunk async for chunk in stream]]

    assert asyncio.run(scenario()) == [
        b'id: 7\nevent: change\ndata: {"key": "ui.banner"}\n\n',
        b'event: end\ndata: {"reason": "shutdown"}\n\n',
    ]


@pytest.mark.parametrize("ending", [Ending.OVERFLOW, Ending.CLIENT_GONE])
def test_a_stream_dropped_as_slow_or_left_by_its_browser_ends_without_a_frame(
    ending: Ending,
) -> None:
    async def scenario() -> list[bytes]:
        outbox = Outbox()
        stream = event_stream(outbox, keepalive=5)
        outbox.end(ending)
        return [chunk async for chunk in stream]

    assert asyncio.run(scenario()) == []


def test_an_idle_stream_sends_keepalives(bridge: Bridge) -> None:
    async def scenario() -> list[bytes]:
        stream = sse_stream(bridge, "dashboard:refresh:idle", keepalive=0.05)
        try:
            return [await anext(stream) for _ in range(3)]
        finally:
            await stream.aclose()

    assert asyncio.run(scenario()) == [KEEPALIVE] * 3
    assert bridge.stats.subscribers == 0  # closing the stream ended its subscription


def test_a_bridged_stream_ends_with_the_end_event_when_the_bridge_closes(
    bridge: Bridge, redis_client: redis.Redis
) -> None:
    message = json.dumps({"widgetId": "revenue"})

    async def scenario() -> list[bytes]:
        stream = sse_stream(bridge, "dashboard:refresh:sales", keepalive=5)
        # The first chunk comes once Redis acknowledged the subscription.
        chunks = [await anext(stream)]
        redis_client.publish("dashboard:refresh:sales", message)
        chunks.append(await anext(stream))
        await asyncio.to_thread(bridge.close)
        return chunks + [chunk async for chunk in stream]

    assert asyncio.run(scenario()) == [
        KEEPALIVE,
        f"data: {message}\n\n".encode(),
        b'event: end\ndata: {"reason": "shutdown"}\n\n',
    ]


@pytest.mark.parametrize(
    ("channel", "headers", "query", "says"),
    [
        ("secret:a\x00b", {}, {}, "may not hold control characters"),
        ("secret:a\r\nb", {}, {}, "may not hold control characters"),
        ("secret:" + "x" * 1024, {}, {}, "at most 1024 bytes"),
        ("", {}, {}, "a channel name is required"),
        ("chat:1", {"Last-Event-ID": "abc:18446744073709551615"}, {}, "out of range"),
        ("chat:1", {}, {"last_event_id": "abc:" + "9" * 200}, "longer than any event id"),
        ("chat:1", {}, {"last_event_id": "abc:\u0661"}, "expected '<epoch>:<offset>'"),
    ],
)
def test_what_no_browser_may_ask_for_is_a_value_error_before_anything_else(
    replayable: Bridge, channel: str, headers: dict[str, str], query: dict[str, str], says: str
) -> None:
    with pytest.raises(ValueError, match=says):
        check_request(replayable, channel, headers, query)
    resume = headers.get("Last-Event-ID") or query.get("last_event_id")
    with pytest.raises(ValueError, match=says):  # and again, should an adapter skip it
        sse_stream(replayable, channel, last_event_id=resume)
    assert replayable.stats.subscribers == 0


def test_a_request_that_may_be_answered_says_where_the_browser_resumes(
    replayable: Bridge,
) -> None:
    header, parameter = {"Last-Event-ID": "abc:7"}, {"last_event_id": "abc:3"}
    assert check_request(replayable, "chat:1", header, parameter) == "abc:7"
    assert check_request(replayable, "chat:1", {}, parameter) == "abc:3"
    assert check_request(replayable, "chat:1", {}, {}) is None
    # An id means nothing on a channel that is not replayable: it is not checked there.
    assert check_request(replayable, "orders:eu", {}, {"last_event_id": "x"}) == "x"


@pytest.fixture
def replayable(server: EmbeddedServer) -> Iterator[Bridge]:
    with Bridge(server.url, classes={"chat:*": Replayable()}) as opened:
        yield opened
