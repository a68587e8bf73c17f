"""An event stream written straight to an ASGI server: what FastAPI's endpoints answer with.

::

    outbox = Outbox(max_bytes=1 << 20)
    outbox.put(frame(json.dumps(value), event="change", id="42"), key="ui.banner")
    ending = await serve(outbox, receive, send, keepalive=15.0)

    ending = await serve(ChannelFrames(bridge.subscribe(channel)), receive, send)

The chunks are :func:`~._sse.event_stream`'s, as for every other adapter; what is ASGI's own
is the connection: ``http.disconnect`` ends the stream, and a browser that stops reading is
not waited for. Its writes would block (the server's send waits for the socket to drain),
so the stream's end is awaited beside the writer: an overflow, or a stop, ends the stream
even while a write to that browser is pending.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from .._outbox import CONTENT_TYPE, Ending
from ._sse import SSE_HEADERS, FrameSource, event_stream

__all__ = ["Receive", "Send", "serve"]

log = logging.getLogger("hotconfig.bridge")

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# How long the last frames may take to leave once a stream ends. A browser that does not read
# them in time has its connection dropped by the server instead of holding this task.
_FINAL_SEND_TIMEOUT = 1.0

_START_HEADERS = [
    (b"content-type", CONTENT_TYPE.encode()),
    *((name.lower().encode(), value.encode()) for name, value in SSE_HEADERS.items()),
]


async def serve(
    source: FrameSource,
    receive: Receive,
    send: Send,
    *,
    keepalive: float = 15.0,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> Ending:
    """Answer one ASGI HTTP request with the event stream of ``source`` until it ends; say why.

    Call on the loop ``source`` lives on. A stream ended on purpose (its final event, a stop)
    gets its last frames written within a second; a browser that left or overflowed gets
    none: on an overflow the response is left unfinished, so the server drops the connection
    (uvicorn logs that the app "returned without completing response") and the browser
    reconnects and catches up in one step.
    """
    await send(
        {"type": "http.response.start", "status": 200, "headers": [*_START_HEADERS, *headers]}
    )
    chunks = event_stream(source, keepalive=keepalive)
    writer = asyncio.create_task(_write(chunks, send, source))
    watcher = asyncio.create_task(_watch_disconnect(source, receive))
    ended = asyncio.ensure_future(source.wait_ended())
    try:
        await asyncio.wait((writer, ended), return_when=asyncio.FIRST_COMPLETED)
        if writer.done() and not ended.done():
            source.end(Ending.CLIENT_GONE)  # the writer failed: nothing more reaches the browser
        ending = await ended
        if not writer.done():
            if ending in (Ending.OVERFLOW, Ending.CLIENT_GONE):
                writer.cancel()  # its writes are stuck, or go nowhere
            elif not (await asyncio.wait((writer,), timeout=_FINAL_SEND_TIMEOUT))[0]:
                log.warning(
                    "hotconfig: an event stream ended (%s) without its last frame: the client "
                    "does not read; the server drops the connection",
                    ending,
                )
    finally:
        for task in (writer, watcher, ended):
            task.cancel()
        await asyncio.gather(writer, watcher, ended, return_exceptions=True)
        await chunks.aclose()
        source.end(Ending.CLIENT_GONE)  # a no-op unless the writer never started
    if not writer.cancelled() and (error := writer.exception()) is not None:
        raise error
    return ending


async def _write(chunks: AsyncGenerator[bytes, None], send: Send, source: FrameSource) -> None:
    try:
        async for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except OSError:
        source.end(Ending.CLIENT_GONE)


async def _watch_disconnect(source: FrameSource, receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            source.end(Ending.CLIENT_GONE)
            return
