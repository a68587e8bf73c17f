"""serve() as a raw ASGI app: what an ASGI server is sent for one event stream, and when it ends.

The server is a hand-written ``receive``/``send`` pair, so that a browser that leaves, one that
stops reading and a connection that breaks are each exactly what the test makes them. What the
chunks say is test_sse.py's; here is the connection around them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest
import redis

from hotconfig.bridge import Bridge, Delivery, Sequenced
from hotconfig.bridge.serving import (
    CONTENT_TYPE,
    KEEPALIVE,
    ChannelFrames,
    Ending,
    Outbox,
    frame,
    serve,
)
from hotconfig.testing import EmbeddedServer
from tests.bridging import DONE, TOKENS, publish, run


class Connection:
    """One HTTP request as an ASGI server sees it: what the app sent, and what it can receive.

    ``stuck_after``: sends after that many return only when the test says (a browser that does
    not read); ``broken_after``: those sends raise ``error`` (a connection that broke).
    """

    def __init__(
        self,
        stuck_after: int | None = None,
        broken_after: int | None = None,
        error: BaseException | None = None,
    ) -> None:
        self.sent: list[MutableMapping[str, Any]] = []
        self.gone = asyncio.Event()
        self.unstuck = asyncio.Event()
        self._stuck_after, self._broken_after = stuck_after, broken_after
        self._error = error or ConnectionResetError("the peer reset the connection")

    async def receive(self) -> MutableMapping[str, Any]:
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: MutableMapping[str, Any]) -> None:
        if self._broken_after is not None and len(self.sent) >= self._broken_after:
            raise self._error
        if self._stuck_after is not None and len(self.sent) >= self._stuck_after:
            await self.unstuck.wait()
        self.sent.append(message)

    @property
    def body(self) -> list[bytes]:
        return [m["body"] for m in self.sent if m["type"] == "http.response.body"]

    @property
    def finished(self) -> bool:
        return any(m["type"] == "http.response.body" and not m["more_body"] for m in self.sent)

    async def wait_sent(self, count: int) -> None:
        async with asyncio.timeout(5):
            while len(self.sent) < count:
                await asyncio.sleep(0.005)


def test_the_response_starts_with_the_stream_s_headers_and_the_app_s_own() -> None:
    async def main() -> MutableMapping[str, Any]:
        connection, outbox = Connection(), Outbox()
        outbox.end(Ending.SHUTDOWN)
        await serve(
            outbox, connection.receive, connection.send, headers=[(b"x-request-id", b"r-1")]
        )
        return connection.sent[0]

    start = run(main)
    assert start["type"] == "http.response.start"
    assert start["status"] == 200
    assert start["headers"] == [
        (b"content-type", CONTENT_TYPE.encode()),
        (b"cache-control", b"no-cache, no-transform"),
        (b"x-accel-buffering", b"no"),
        (b"x-request-id", b"r-1"),
    ]


def test_frames_go_out_as_body_chunks_and_a_stop_finishes_the_response() -> None:
    async def main() -> tuple[Ending, Connection]:
        connection, outbox = Connection(), Outbox()
        outbox.put(frame("one", id="1"))
        serving = asyncio.create_task(serve(outbox, connection.receive, connection.send))
        await connection.wait_sent(2)
        outbox.put(frame("two", id="2"))
        await connection.wait_sent(3)
        outbox.end(Ending.SHUTDOWN)
        return await serving, connection

    ending, connection = run(main)
    assert ending is Ending.SHUTDOWN
    assert connection.body == [
        b"id: 1\ndata: one\n\n",
        b"id: 2\ndata: two\n\n",
        b'event: end\ndata: {"reason": "shutdown"}\n\n',
        b"",
    ]
    assert connection.finished


def test_an_idle_stream_is_kept_alive() -> None:
    async def main() -> list[bytes]:
        connection, outbox = Connection(), Outbox()
        serving = asyncio.create_task(
            serve(outbox, connection.receive, connection.send, keepalive=0.02)
        )
        await connection.wait_sent(3)
        outbox.end(Ending.SHUTDOWN)
        await serving
        return connection.body[:2]

    assert run(main) == [KEEPALIVE, KEEPALIVE]


def test_a_browser_that_leaves_stops_the_stream_and_ends_its_source() -> None:
    async def main() -> tuple[Ending, Connection, Outbox]:
        connection, outbox = Connection(), Outbox()
        outbox.put(frame("one"))
        serving = asyncio.create_task(serve(outbox, connection.receive, connection.send))
        await connection.wait_sent(2)
        connection.gone.set()
        return await serving, connection, outbox

    ending, connection, outbox = run(main)
    assert ending is Ending.CLIENT_GONE
    assert outbox.ended is Ending.CLIENT_GONE
    # Nothing more for a browser that is gone: no end frame (at most the empty closing chunk).
    assert b"".join(connection.body) == b"data: one\n\n"
    assert outbox.put(frame("late")) is False  # the producer learns there is nobody to feed


def test_a_browser_that_stops_reading_is_let_go_when_its_outbox_overflows() -> None:
    async def main() -> tuple[Ending, Connection]:
        connection, outbox = Connection(stuck_after=2), Outbox(max_bytes=1000)
        outbox.put(frame("read"))
        serving = asyncio.create_task(serve(outbox, connection.receive, connection.send))
        await connection.wait_sent(2)
        outbox.put(frame("x" * 100))  # taken by the writer, whose send never returns
        while outbox.put(frame("x" * 100)):
            await asyncio.sleep(0)
        return await serving, connection  # bounded by run(): serve does not wait for the send

    ending, connection = run(main)
    assert ending is Ending.OVERFLOW
    assert connection.body == [b"data: read\n\n"]
    assert not connection.finished  # unfinished: the server drops the connection


def test_a_stop_while_the_browser_does_not_read_gives_up_on_the_last_frame(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> tuple[Ending, Connection]:
        connection, outbox = Connection(stuck_after=1), Outbox()
        outbox.put(frame("never read"))
        serving = asyncio.create_task(serve(outbox, connection.receive, connection.send))
        await connection.wait_sent(1)
        outbox.end(Ending.SHUTDOWN)
        return await serving, connection

    with caplog.at_level(logging.WARNING, logger="hotconfig.bridge"):
        ending, connection = run(main)
    assert ending is Ending.SHUTDOWN
    assert connection.body == []
    assert "without its last frame" in caplog.text


def test_a_connection_that_breaks_is_a_browser_gone_not_an_error() -> None:
    async def main() -> tuple[Ending, Outbox]:
        connection, outbox = Connection(broken_after=1), Outbox()
        outbox.put(frame("one"))
        return await serve(outbox, connection.receive, connection.send), outbox

    ending, outbox = run(main)
    assert ending is Ending.CLIENT_GONE
    assert outbox.ended is Ending.CLIENT_GONE


def test_a_send_that_fails_otherwise_is_raised_to_the_server_after_the_source_ended() -> None:
    connection = Connection(broken_after=1, error=RuntimeError("app bug"))
    outbox = Outbox()  # its events bind to the loop that first waits on them
    outbox.put(frame("one"))

    async def main() -> Ending:
        return await serve(outbox, connection.receive, connection.send)

    with pytest.raises(RuntimeError, match="app bug"):
        run(main)
    assert outbox.ended is Ending.CLIENT_GONE


@pytest.fixture
def bridge(server: EmbeddedServer) -> Iterator[Bridge]:
    classes: dict[str, Delivery] = {"ai:stream:*": Sequenced(idle_timeout=5)}
    with Bridge(server.url, classes=classes) as opened:
        yield opened


def test_a_bridged_stream_is_served_until_its_done_and_the_response_finished(
    bridge: Bridge, redis_client: redis.Redis
) -> None:
    async def main() -> tuple[Ending, Connection]:
        connection = Connection()
        source = ChannelFrames(bridge.subscribe("ai:stream:sess-asgi"))
        serving = asyncio.create_task(serve(source, connection.receive, connection.send))
        await connection.wait_sent(2)  # the start, then the first chunk once subscribed
        await asyncio.to_thread(publish, redis_client, "ai:stream:sess-asgi", *TOKENS, DONE)
        return await serving, connection

    ending, connection = run(main)
    assert ending is Ending.DONE
    assert connection.body[0] == KEEPALIVE  # written as soon as Redis acknowledged
    frames = b"".join(connection.body[1:])
    assert frames == b"".join(f"data: {json.dumps(m)}\n\n".encode() for m in [*TOKENS, DONE])
    assert connection.finished
    assert bridge.stats.subscribers == 0
