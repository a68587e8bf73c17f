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
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import logging
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

__all__ = [
    "CONTENT_TYPE",
    "Ending",
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

CONTENT_TYPE = "text/event-stream; charset=utf-8"
KEEPALIVE = b": keep-alive\n\n"
# How long the last frame may take to leave once a stream ends. A browser that does not read
# it in time has its connection dropped by the server instead of holding this task.
_FINAL_SEND_TIMEOUT = 1.0


class Ending(enum.StrEnum):
    """Why a stream ended."""

    CLIENT_GONE = "client_gone"  # the browser closed the connection
    OVERFLOW = "overflow"  # more than max_bytes waited unsent: a slow browser
    SHUTDOWN = "shutdown"  # the server is stopping (or the producer ended every stream)


class OutboxEnded(Exception):
    """Raised by :meth:`Outbox.take` once the outbox has ended; ``ending`` says why."""

    def __init__(self, ending: Ending) -> None:
        super().__init__(ending.value)
        self.ending = ending


def frame(
    data: str,
    *,
    event: str | None = None,
    id: str | None = None,
    retry: int | None = None,
) -> bytes:
    """One event in the ``text/event-stream`` format: each line of ``data`` its own field."""
    lines: list[str] = []
    if id is not None:
        lines.append(f"id: {_one_line(id, 'id')}")
    if event is not None:
        lines.append(f"event: {_one_line(event, 'event')}")
    if retry is not None:
        lines.append(f"retry: {int(retry)}")
    # CR, LF and CRLF all end a line in the format; a value must not smuggle in a new field.
    lines.extend(
        f"data: {line}" for line in data.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    )
    return ("\n".join(lines) + "\n\n").encode()


def comment(text: str = "") -> bytes:
    """A comment line: ignored by browsers, it keeps proxies from closing an idle stream."""
    return f": {_one_line(text, 'comment')}\n\n".encode()


def _one_line(value: str, field: str) -> str:
    if "\n" in value or "\r" in value or "\0" in value:
        raise ValueError(f"an SSE {field} must be one line without NUL: {value!r}")
    return value


class Outbox:
    """Frames waiting to be written to one connection, bounded in bytes.

    :meth:`put` never blocks: it is how a producer feeds many connections without waiting for
    any of them. Called on the connection's event loop only.
    """

    __slots__ = ("_ended", "_frames", "_pending", "_ready", "_unique", "ended", "max_bytes")

    def __init__(self, max_bytes: int = 1 << 20) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        self.max_bytes = max_bytes
        self.ended: Ending | None = None
        self._frames: dict[object, bytes] = {}
        self._pending = 0
        self._ready = asyncio.Event()
        self._ended = asyncio.Event()
        self._unique = itertools.count()

    @property
    def pending_bytes(self) -> int:
        """Bytes put and not yet taken."""
        return self._pending

    def put(self, data: bytes, key: str | None = None, *, supersede: bool = False) -> bool:
        """Queue ``data``; False if the outbox has ended (now or before).

        A frame with the ``key`` of one still waiting replaces it and goes to the end of the
        queue; ``supersede`` drops everything waiting first (a full reset makes it obsolete).
        Going over ``max_bytes`` ends the outbox with :attr:`Ending.OVERFLOW`.
        """
        if self.ended is not None:
            return False
        if supersede:
            self._frames.clear()
            self._pending = 0
        slot: object = next(self._unique) if key is None else key
        replaced = self._frames.pop(slot, None)
        if replaced is not None:
            self._pending -= len(replaced)
        self._frames[slot] = data
        self._pending += len(data)
        if self._pending > self.max_bytes:
            self.end(Ending.OVERFLOW)
            return False
        self._ready.set()
        return True

    def put_many(self, frames: Iterable[tuple[bytes, str | None]]) -> bool:
        return all(self.put(data, key) for data, key in frames)

    def end(self, ending: Ending) -> None:
        """End the outbox (the first reason given stays); what waits unsent is dropped."""
        if self.ended is None:
            self.ended = ending
            self._frames.clear()
            self._pending = 0
        self._ended.set()
        self._ready.set()

    async def take(self, timeout: float | None = None) -> bytes:
        """Everything waiting, joined; ``b""`` if nothing came within ``timeout`` seconds.

        Raises:
            OutboxEnded: the outbox has ended.
        """
        if not self._frames and self.ended is None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._ready.wait()
        if self.ended is not None:
            raise OutboxEnded(self.ended)
        self._ready.clear()
        data = b"".join(self._frames.values())
        self._frames.clear()
        self._pending = 0
        return data

    async def wait_ended(self) -> Ending:
        """Wait until the outbox ends; say why."""
        await self._ended.wait()
        assert self.ended is not None
        return self.ended


async def serve(
    outbox: Outbox,
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


async def _write(outbox: Outbox, send: Send, keepalive: float) -> None:
    try:
        while True:
            data = await outbox.take(keepalive)
            await send({"type": "http.response.body", "body": data or KEEPALIVE, "more_body": True})
    except OutboxEnded:
        return
    except OSError:
        outbox.end(Ending.CLIENT_GONE)


async def _watch_disconnect(outbox: Outbox, receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            outbox.end(Ending.CLIENT_GONE)
            return
