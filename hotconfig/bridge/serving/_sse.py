"""Serving the channel bridge as Server-Sent Events, for async and for threaded servers.

What the Django and Flask adapters share, free of any web framework::

    async for chunk in sse_stream(bridge, "ai:stream:sess-abc", keepalive=15.0):
        await write(chunk)  # an ASGI server: Django's StreamingHttpResponse

    return BlockingStream(bridge, "ai:stream:sess-abc", keepalive=15.0)  # a WSGI body

:func:`sse_stream` subscribes when it is first iterated, writes each event as one SSE frame
(:func:`sse_frame`), a keep-alive comment while nothing comes, and ends after the final event
of a sequenced stream, or when the subscription is dropped (too slow) or the bridge closes.
Its first chunk is written once Redis acknowledged the subscription, so a browser whose
``EventSource`` opened misses nothing published after.

The bridge is asyncio-based and a WSGI server is not: a :class:`BlockingStream` runs the same
:func:`sse_stream` on ONE event loop per process (:func:`shared_loop`, a daemon thread started
on first use, and again in a forked child, e.g. a gunicorn worker), and the WSGI thread of
each browser waits for its next chunk there. Every browser holds a WSGI thread, inherent to
WSGI, but no Redis connection: the bridge reads one for all of them, and hands each message
to the shared loop once, however many browsers follow it.

Resuming a replayable channel is the same for every adapter: :func:`last_event_id` picks the
browser's position out of the request (the ``Last-Event-ID`` header an ``EventSource`` sends
when it reconnects, else a ``last_event_id`` query parameter), and :func:`sse_stream` (so
also :class:`BlockingStream`) checks it when it is made, before anything is subscribed or
written: a malformed id raises :class:`ValueError`, which the adapter answers with 400 and
the error's text. ``authorize_replay()`` is asked again before stored messages are sent::

    try:
        stream = sse_stream(
            bridge,
            channel,
            last_event_id=last_event_id(headers, query),
            authorize_replay=lambda: allowed(request, channel),
        )
    except ValueError as exc:
        return bad_request(str(exc))
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import os
import threading
from collections.abc import AsyncGenerator, Iterator
from typing import Protocol

from .._events import Event, EventKind
from .._hub import Bridge
from .._outbox import CONTENT_TYPE, KEEPALIVE, frame
from .._recovery import Authorize

__all__ = [
    "CONTENT_TYPE",
    "LAST_EVENT_ID_HEADER",
    "LAST_EVENT_ID_PARAMETER",
    "SSE_HEADERS",
    "BlockingStream",
    "Lookup",
    "last_event_id",
    "shared_loop",
    "sse_frame",
    "sse_stream",
    "websocket_text",
]

log = logging.getLogger("hotconfig.bridge")

# Headers of every bridged event stream, besides its content type.
SSE_HEADERS = {
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",  # nginx: do not buffer the stream
}

# Where a browser says where it stands: EventSource sends the header on each reconnect; a first
# connection (or a WebSocket, which has no such header) passes the parameter.
LAST_EVENT_ID_HEADER = "Last-Event-ID"
LAST_EVENT_ID_PARAMETER = "last_event_id"

# How much longer than a keep-alive a WSGI thread waits on the loop before it gives up: the
# loop always answers within a keep-alive, unless it is stuck.
_LOOP_GRACE = 10.0


def sse_frame(event: Event) -> bytes:
    """One event as an SSE frame: a message unnamed (``onmessage``), a notice by its kind."""
    name = None if event.kind is EventKind.MESSAGE else event.kind.value
    return frame(event.data, event=name, id=getattr(event, "id", None))


def websocket_text(event: Event) -> str:
    """One event as a WebSocket text frame: a message as published, a notice as JSON."""
    if event.kind is EventKind.MESSAGE:
        return event.data
    return json.dumps({"event": event.kind.value, **json.loads(event.data)})


class Lookup(Protocol):
    """What :func:`last_event_id` reads: request headers (case-insensitive) or query parameters
    (Django's ``request.headers``/``request.GET``, Flask's ``request.headers``/``request.args``)."""

    def get(self, key: str, /) -> str | None: ...


def last_event_id(headers: Lookup, query: Lookup) -> str | None:
    """The browser's position in a replayable channel, None if it gave none.

    The header wins over the parameter: ``EventSource`` sends it on each reconnect, with the
    URL of the first connection, so the header is the newer position. ``headers`` must look
    names up case-insensitively (or hold them in lowercase, as a WebSocket handshake does).
    """
    return (
        headers.get(LAST_EVENT_ID_HEADER)
        or headers.get(LAST_EVENT_ID_HEADER.lower())
        or query.get(LAST_EVENT_ID_PARAMETER)
        or None
    )


def sse_stream(
    bridge: Bridge,
    channel: str,
    *,
    keepalive: float = 15.0,
    last_event_id: str | None = None,
    authorize_replay: Authorize | None = None,
) -> AsyncGenerator[bytes, None]:
    """The event stream of one browser following ``channel``; see the module docstring.

    Iterate it on the event loop that serves the browser; closing it (``aclose()``, or the
    cancellation of the task iterating it) ends the subscription. On a replayable channel it
    resumes after ``last_event_id``, and ``authorize_replay()`` (on that loop; may be async)
    is asked before stored messages are sent. Raises :class:`ValueError` at once, before
    anything is subscribed, for a malformed ``last_event_id`` or a ``keepalive`` that is not
    positive.
    """
    if keepalive <= 0:
        raise ValueError(f"keepalive must be positive, got {keepalive}")
    bridge.resume_from(channel, last_event_id)  # checked now: an adapter still can answer 400
    return _events(bridge, channel, keepalive, last_event_id, authorize_replay)


async def _events(
    bridge: Bridge,
    channel: str,
    keepalive: float,
    last_event_id: str | None,
    authorize_replay: Authorize | None,
) -> AsyncGenerator[bytes, None]:
    subscription = bridge.subscribe(
        channel, last_event_id=last_event_id, authorize_replay=authorize_replay
    )
    try:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(keepalive):
                await subscription.subscribed.wait()
        yield KEEPALIVE  # the response starts: the browser's EventSource opens
        while True:
            # One keep-alive timer per stream (the outbox's), not one per event.
            events = await subscription.take(keepalive)
            if events is None:
                return  # dropped (too slow) or the bridge closed
            if not events:
                yield KEEPALIVE
            for event in events:
                yield sse_frame(event)
            if events and events[-1].final:
                return
    finally:
        subscription.close()


class BlockingStream:
    """One browser's :func:`sse_stream` as a blocking iterator of bytes: a WSGI response body.

    Each ``next()`` waits on the calling (WSGI) thread while the stream runs on
    :func:`shared_loop`. The WSGI server calls :meth:`close` when the response ends, also
    when a write to a browser that left failed; that ends the subscription. A browser that
    left is noticed at the next write, a keep-alive at the latest.

    ``last_event_id`` and ``authorize_replay`` are :func:`sse_stream`'s, and so is the
    :class:`ValueError` raised at once for a malformed id. ``authorize_replay`` is called on
    the shared loop: one that blocks (a database, the request's session) belongs in a thread
    (``asyncio.to_thread``), where it does not hold up the other browsers.
    """

    def __init__(
        self,
        bridge: Bridge,
        channel: str,
        *,
        keepalive: float = 15.0,
        last_event_id: str | None = None,
        authorize_replay: Authorize | None = None,
    ) -> None:
        self._stream = sse_stream(
            bridge,
            channel,
            keepalive=keepalive,
            last_event_id=last_event_id,
            authorize_replay=authorize_replay,
        )
        self._loop = shared_loop()
        self._timeout = keepalive + _LOOP_GRACE
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._closed:
            raise StopIteration
        future = asyncio.run_coroutine_threadsafe(_next_chunk(self._stream), self._loop)
        try:
            chunk = future.result(self._timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            log.error(
                "the bridge's event loop did not answer in %.0fs: stream ended", self._timeout
            )
            chunk = None
        except BaseException:
            self.close()
            raise
        if chunk is None:
            self._closed = True
            raise StopIteration
        return chunk

    def close(self) -> None:
        """End the stream and its subscription (called by the WSGI server); idempotent."""
        if self._closed:
            return
        self._closed = True
        future = asyncio.run_coroutine_threadsafe(_close(self._stream), self._loop)
        try:
            future.result(_LOOP_GRACE)
        except concurrent.futures.TimeoutError:
            log.error("the bridge's event loop did not close a stream in %.0fs", _LOOP_GRACE)


async def _next_chunk(stream: AsyncGenerator[bytes, None]) -> bytes | None:
    try:
        return await stream.__anext__()
    except StopAsyncIteration:
        return None


async def _close(stream: AsyncGenerator[bytes, None]) -> None:
    try:
        await stream.aclose()
    except RuntimeError:  # still running: a next() that timed out is being cancelled
        log.warning("a bridged stream was closed while it ran; its subscription ends with it")


_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_loop_pid = 0
_loop_thread: threading.Thread | None = None


def shared_loop() -> asyncio.AbstractEventLoop:
    """The process's event loop for blocking streams, on a daemon thread started on first use.

    A forked child (a gunicorn worker of a ``--preload`` master) inherits the loop object but
    not its thread: the first call in the child starts a loop of its own.
    """
    global _loop, _loop_pid, _loop_thread
    with _lock:
        alive = _loop_thread is not None and _loop_thread.is_alive()
        if _loop is None or _loop_pid != os.getpid() or not alive:
            if _loop is not None and _loop_pid == os.getpid():
                log.error("the bridge's event loop thread had stopped: starting another")
            loop = asyncio.new_event_loop()
            thread = threading.Thread(
                target=_run_loop, args=(loop,), name="hotconfig-bridge-loop", daemon=True
            )
            thread.start()
            _loop, _loop_pid, _loop_thread = loop, os.getpid(), thread
        return _loop


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    except BaseException:  # the thread must never die unseen
        log.exception("the bridge's event loop thread failed")
