"""An event stream as a WSGI response body, for threaded servers (Flask, Django under WSGI).

The bridge is asyncio-based and a WSGI server is not: a :class:`BlockingStream` runs the same
:func:`~._sse.sse_stream` as an ASGI adapter does on ONE event loop per process
(:func:`shared_loop`, a daemon thread started on first use, and again in a forked child, e.g.
a gunicorn worker), and the WSGI thread of each browser waits for its next chunk there. Every
browser holds a WSGI thread, inherent to WSGI, but no Redis connection: the bridge reads one
for all of them, and hands each message to the shared loop once, however many browsers
follow it::

    return BlockingStream(bridge, "ai:stream:sess-abc", keepalive=15.0)  # a WSGI body

On SIGTERM the stream ends with the ``end`` frame like any other (:mod:`._shutdown`), once
the handler is installed on the worker's main thread: the adapters do that when they are
made there; see :func:`~._shutdown.end_streams_on_signals` for gunicorn ``--preload``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import AsyncGenerator, Iterator

from ..._redis import forking
from .._hub import Bridge
from .._recovery import Authorize
from ._sse import sse_stream

__all__ = ["BlockingStream", "shared_loop"]

log = logging.getLogger("hotconfig.bridge")

# How much longer than a keep-alive a WSGI thread waits on the loop before it gives up: the
# loop always answers within a keep-alive, unless it is stuck.
_LOOP_GRACE = 10.0


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


class _SharedLoop:
    """The process's event loop for blocking streams, on a daemon thread started on first use.

    A forked child (a gunicorn worker of a ``--preload`` master) inherits the loop object but
    not its thread: :mod:`hotconfig._redis.forking` drops both there, and the first stream of
    the child starts a loop of its own.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def get(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._thread is None or not self._thread.is_alive():
                if self._loop is not None:
                    log.error("the bridge's event loop thread had stopped: starting another")
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=_run_loop, args=(loop,), name="hotconfig-bridge-loop", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def _fork_lock(self) -> None:
        return None

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()  # the child has one thread: whatever held it is gone
        self._loop = self._thread = None

    def close(self) -> None:
        """Nothing to release at exit: the thread is a daemon, and it still carries the last
        events of the bridges closed at exit to their streams."""


_shared = _SharedLoop()
forking.track(_shared, forking.Stage.SERVING)


def shared_loop() -> asyncio.AbstractEventLoop:
    """The process's event loop for blocking streams (see :class:`_SharedLoop`)."""
    return _shared.get()


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    except BaseException:  # the thread must never die unseen
        log.exception("the bridge's event loop thread failed")
