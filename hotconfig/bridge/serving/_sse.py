"""The one Server-Sent Events stream every adapter writes, ASGI and WSGI alike.

What goes on the wire is decided here, once: a stream reads frames from a :class:`FrameSource`
(a bridge subscription through :class:`ChannelFrames`, or an :class:`~._outbox.Outbox` a
producer fills, as the config change stream of ``hotconfig_fastapi`` does), writes a
keep-alive comment after ``keepalive`` idle seconds, and ends when the source ends: after the
final event of a sequenced stream; silently when the browser left or was too slow; and with
``event: end`` and ``{"reason": "shutdown"}`` when the server is stopping (SIGTERM, SIGINT, the
bridge closed), on which an ``EventSource`` reconnects to a worker that still runs. Every
stream watches for the stop signal itself (:mod:`._shutdown`).

The writers are thin: :func:`~._asgi.serve` answers a raw ASGI request (FastAPI),
:func:`sse_stream` is an async iterator of bytes (Django's ``StreamingHttpResponse`` under
ASGI), and :class:`~._wsgi.BlockingStream` the same as a WSGI body (Flask, Django under WSGI)::

    async for chunk in sse_stream(bridge, "ai:stream:sess-abc", keepalive=15.0):
        await write(chunk)

A bridged stream's first chunk is written once Redis acknowledged the subscription, so a
browser whose ``EventSource`` opened misses nothing published after.

What a browser asks for is checked the same way by every adapter, first, before ``authorize``
sees it: :func:`check_request` refuses a channel name no browser may ask for (empty, a control
character such as NUL, CR or LF, more than 1,024 bytes) and, on a replayable channel, a
malformed resume id (another shape, longer than an id, an offset out of range), with a
:class:`ValueError` the adapter answers with 400 and the error's text; nothing is subscribed.
It returns the browser's position (:func:`last_event_id`: the ``Last-Event-ID`` header an
``EventSource`` sends when it reconnects, else a ``last_event_id`` query parameter).
:func:`sse_stream` (so also :class:`~._wsgi.BlockingStream`) checks the same again when it is
made. ``authorize_replay()`` is asked again before stored messages are sent::

    try:
        resume = check_request(bridge, channel, headers, query)
    except ValueError as exc:
        return bad_request(str(exc))
    if not allowed(request, channel):
        return forbidden()
    stream = sse_stream(
        bridge,
        channel,
        last_event_id=resume,
        authorize_replay=lambda: allowed(request, channel),
    )
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator
from typing import Protocol

from .._delivery import Subscription
from .._events import Event, EventKind
from .._hub import Bridge
from .._outbox import CONTENT_TYPE, KEEPALIVE, Ending, OutboxEnded, frame
from .._recovery import Authorize
from ._shutdown import watch

__all__ = [
    "CONTENT_TYPE",
    "LAST_EVENT_ID_HEADER",
    "LAST_EVENT_ID_PARAMETER",
    "SSE_HEADERS",
    "ChannelFrames",
    "FrameSource",
    "Lookup",
    "check_request",
    "end_frame",
    "event_stream",
    "last_event_id",
    "sse_frame",
    "sse_stream",
    "websocket_text",
]

# Headers of every event stream, besides its content type.
SSE_HEADERS = {
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",  # nginx: do not buffer the stream
}

# Where a browser says where it stands: EventSource sends the header on each reconnect; a first
# connection (or a WebSocket, which has no such header) passes the parameter.
LAST_EVENT_ID_HEADER = "Last-Event-ID"
LAST_EVENT_ID_PARAMETER = "last_event_id"


def sse_frame(event: Event) -> bytes:
    """One event as an SSE frame: a message unnamed (``onmessage``), a notice by its kind."""
    name = None if event.kind is EventKind.MESSAGE else event.kind.value
    return frame(event.data, event=name, id=event.id)


def websocket_text(event: Event) -> str:
    """One event as a WebSocket text frame: a message as published, a notice as JSON."""
    if event.kind is EventKind.MESSAGE:
        return event.data
    return json.dumps({"event": event.kind.value, **json.loads(event.data)})


def end_frame(ending: Ending) -> bytes:
    """The last frame of a stream the server ended: ``event: end``, ``{"reason": ...}``."""
    return frame(json.dumps({"reason": ending.value}), event="end")


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


def check_request(bridge: Bridge, channel: str, headers: Lookup, query: Lookup) -> str | None:
    """Check what a browser asks for before ``authorize`` sees it; where it resumes.

    Every adapter calls it first, for SSE and WebSockets alike. :class:`ValueError` (answer 400
    with its text; nothing is subscribed) for a channel name no browser may ask for (empty, a
    control character such as NUL, CR or LF, more than 1,024 bytes in UTF-8) and, on a
    replayable channel, for a resume id that is not one (another shape, longer than an id, an
    offset out of range). Returns the browser's :func:`last_event_id`, None if it gave none.
    """
    resume = last_event_id(headers, query)
    bridge.resume_from(channel, resume)
    return resume


class FrameSource(Protocol):
    """Where a stream's frames come from: an :class:`~._outbox.Outbox`, or
    :class:`ChannelFrames`. Every method is called on the stream's event loop."""

    async def take(self, timeout: float | None = None) -> bytes:
        """The frames to write next, joined; ``b""`` after ``timeout`` seconds without any.

        Raises :class:`~._outbox.OutboxEnded` once the stream has ended.
        """
        ...

    def end(self, ending: Ending) -> None:
        """End the stream (the browser left, the server stops); the first ending given stays."""
        ...

    async def wait_ended(self) -> Ending:
        """Wait until the stream ends, also while a write is pending; say why."""
        ...


class ChannelFrames:
    """A bridge subscription as a :class:`FrameSource`: its events as SSE frames.

    The writer reads the subscription itself: one buffer per browser, bounded where the
    events wait, and one hop per message, however many browsers a loop serves. The first
    :meth:`take` answers once Redis acknowledged the subscription (or after ``timeout``).
    """

    def __init__(self, subscription: Subscription) -> None:
        self._subscription = subscription
        self._opened = False
        self._complete: Ending | None = None  # the stream's own end (done, idle, refused)

    async def take(self, timeout: float | None = None) -> bytes:
        subscription = self._subscription
        if self._complete is not None:
            raise OutboxEnded(self._complete)
        if not self._opened:
            self._opened = True
            await _acknowledged(subscription, timeout)
            if subscription.ending is None:
                return b""  # the response starts: the browser's EventSource opens
        events = await subscription.take(timeout)
        if events is None:
            raise OutboxEnded(subscription.ending or Ending.SHUTDOWN)
        if events and events[-1].final:
            # Complete: these frames are still written, the next take ends the stream (not a
            # stop: no end frame after it), and a writer waiting on wait_ended() hears of it.
            ending = subscription.ending or Ending.DONE
            self._complete = Ending.DONE if ending is Ending.SHUTDOWN else ending
            subscription.close(ending)
        return b"".join([sse_frame(event) for event in events])

    def end(self, ending: Ending) -> None:
        self._subscription.close(ending)

    async def wait_ended(self) -> Ending:
        return await self._subscription.wait_dropped()


async def _acknowledged(subscription: Subscription, timeout: float | None) -> None:
    """Until Redis acknowledged the subscription, it ended, or ``timeout`` passed."""
    if subscription.subscribed.is_set():
        return
    waits = [
        asyncio.ensure_future(subscription.subscribed.wait()),
        asyncio.ensure_future(subscription.wait_dropped()),
    ]
    try:
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


async def event_stream(source: FrameSource, *, keepalive: float) -> AsyncGenerator[bytes, None]:
    """What one browser's response body carries, chunk by chunk, until ``source`` ends.

    Iterate it on the loop ``source`` lives on. A keep-alive after ``keepalive`` idle seconds;
    the :func:`end_frame` last when the server stops (SIGTERM, SIGINT: watched from the first
    chunk on); nothing more when the browser left or was too slow. Closing it ends ``source``.
    """
    unwatch = watch(lambda: source.end(Ending.SHUTDOWN))
    try:
        while True:
            try:
                data = await source.take(keepalive)
            except OutboxEnded as ended:
                if ended.ending is Ending.SHUTDOWN:
                    yield end_frame(ended.ending)
                return
            yield data or KEEPALIVE
    finally:
        unwatch()
        source.end(Ending.CLIENT_GONE)  # the first ending stays: a no-op if it ended already


def sse_stream(
    bridge: Bridge,
    channel: str,
    *,
    keepalive: float = 15.0,
    last_event_id: str | None = None,
    authorize_replay: Authorize | None = None,
) -> AsyncGenerator[bytes, None]:
    """The event stream of one browser following ``channel``: :func:`event_stream` of its
    subscription, subscribed when it is first iterated.

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
    return _bridged(bridge, channel, keepalive, last_event_id, authorize_replay)


async def _bridged(
    bridge: Bridge,
    channel: str,
    keepalive: float,
    last_event_id: str | None,
    authorize_replay: Authorize | None,
) -> AsyncGenerator[bytes, None]:
    subscription = bridge.subscribe(
        channel, last_event_id=last_event_id, authorize_replay=authorize_replay
    )
    frames = ChannelFrames(subscription)
    async with contextlib.aclosing(event_stream(frames, keepalive=keepalive)) as chunks:
        async for chunk in chunks:
            yield chunk
