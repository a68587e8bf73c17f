"""Server-Sent Events for any ASGI app: framing, a bounded outbox per connection, the pump.

Nothing here knows about FastAPI, Starlette or hotconfig: a producer puts framed events into
an :class:`Outbox` (one per browser connection) and :func:`serve` writes them to the ASGI
``send`` callable until the outbox ends. Why it ends is an :class:`Ending`::

    outbox = Outbox(max_bytes=1 << 20)
    outbox.put(frame(json.dumps(value), event="change", id="42"), key="ui.banner")
    ending = await serve(outbox, receive, send, keepalive=15.0)

The outbox is what keeps one slow browser from slowing the others or growing memory: the
producer never waits for a connection, frames with the same ``key`` replace each other
(the latest wins), and once more than ``max_bytes`` wait unsent the connection is ended
(:attr:`Ending.OVERFLOW`), so the browser reconnects and catches up in one step instead of
reading a backlog. Every outbox is read and written on one event loop only.

:func:`serve` reads through the :class:`FrameSource` protocol: a producer that already holds a
bounded buffer per connection (the channel bridge's subscription) is read directly, without
copying each frame into a second outbox.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any, Protocol

from hotconfig.bridge.serving import (
    CONTENT_TYPE,
    KEEPALIVE,
    Ending,
    Outbox,
    OutboxEnded,
    comment,
    frame,
)

__all__ = [
    "CONTENT_TYPE",
    "Ending",
    "FrameSource",
    "Outbox",
    "OutboxEnded",
    "Receive",
    "Send",
    "comment",
    "frame",
    "serve",
]

log = logging.getLogger("hotconfig.sse")

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class FrameSource(Protocol):
    """What :func:`serve` writes from: an :class:`Outbox`, or a producer read directly.

    Every method is called on the connection's event loop.
    """

    async def take(self, timeout: float | None = None) -> bytes:
        """The frames to write next, joined; ``b""`` after ``timeout`` seconds without any.

        Raises :class:`OutboxEnded` once the stream has ended.
        """
        ...

    def end(self, ending: Ending) -> None:
        """End the stream (the browser left); the first ending given stays."""
        ...

    async def wait_ended(self) -> Ending:
        """Wait until the stream ends, also while a write is pending; say why."""
        ...


# How long the last frame may take to leave once a stream ends. A browser that does not read
# it in time has its connection dropped by the server instead of holding this task.
_FINAL_SEND_TIMEOUT = 1.0


async def serve(
    outbox: FrameSource,
    receive: Receive,
    send: Send,
    *,
    keepalive: float = 15.0,
    headers: Iterable[tuple[bytes, bytes]] = (),
    last: Callable[[Ending], bytes] | None = None,
) -> Ending:
    """Answer one ASGI HTTP request with the frames of ``outbox`` until it ends; say why.

    ``last(ending)`` gives the frame written when the stream ends on purpose (e.g. an
    ``end`` event at shutdown); a browser that left or overflowed gets none. A browser that
    stops reading is not waited for: its stream ends as soon as its outbox overflows, even
    while a write to it is pending.
    """
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", CONTENT_TYPE.encode()),
                (b"cache-control", b"no-cache, no-transform"),
                (b"x-accel-buffering", b"no"),  # nginx: do not buffer the stream
                *headers,
            ],
        }
    )
    writer = asyncio.create_task(_write(outbox, send, keepalive))
    watcher = asyncio.create_task(_watch_disconnect(outbox, receive))
    try:
        # The writer may be stuck in send() to a browser that stopped reading: waiting on the
        # outbox instead lets an overflow or a shutdown end the stream anyway.
        ending = await outbox.wait_ended()
    finally:
        for task in (writer, watcher):
            task.cancel()
        await asyncio.gather(writer, watcher, return_exceptions=True)
    if ending is Ending.OVERFLOW:
        # Writes to this browser are stuck: one more would wait as well. Returning with the
        # response unfinished makes the server drop the connection (uvicorn logs that it
        # "returned without completing response"); the browser reconnects and catches up.
        return ending
    tail = last(ending) if ending is not Ending.CLIENT_GONE and last is not None else b""
    try:
        async with asyncio.timeout(_FINAL_SEND_TIMEOUT):
            await send({"type": "http.response.body", "body": tail, "more_body": False})
    except TimeoutError:
        log.warning(
            "hotconfig: an event stream ended (%s) without its last frame: the client "
            "does not read; the server drops the connection",
            ending,
        )
    return ending


async def _write(outbox: FrameSource, send: Send, keepalive: float) -> None:
    try:
        while True:
            data = await outbox.take(keepalive)
            await send({"type": "http.response.body", "body": data or KEEPALIVE, "more_body": True})
    except OutboxEnded:
        return
    except OSError:
        outbox.end(Ending.CLIENT_GONE)


async def _watch_disconnect(outbox: FrameSource, receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            outbox.end(Ending.CLIENT_GONE)
            return
