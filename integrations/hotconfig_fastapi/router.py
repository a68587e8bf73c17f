"""``GET /health`` and ``GET /stream``: the client's health for probes, its changes for browsers.

::

    app.include_router(hotconfig_fastapi.router(stream_keys=["ui.*", "feature.*"]))

``/health`` is a readiness probe: 200 while the process serves a configuration it loaded from
the store, LIVE or through an outage (INTERRUPTED: the last configuration stays served, and a
Redis blip must not take every pod out of the load balancer), for at most ``max_staleness``
seconds of outage if given; 503 before the first load (STARTING), when the server refuses the
client (MISCONFIGURED) and once closed. Its body always carries ``ready``, ``status``,
``version``, ``lag`` (``config.lag``: versions behind the store as the listener last read it,
at most one poll interval ago; ``null`` while not LIVE), ``outage_s`` during an outage, and
counters; never values or URLs.

``/stream`` is a Server-Sent Events stream of the keys allowed by ``stream_keys`` (none by
default: then there is no ``/stream``); see :mod:`hotconfig_fastapi.changes` for its events.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from hotconfig import HotConfig, Status, signals
from hotconfig.bridge.serving import Ending, Outbox, serve

from .changes import ChangeFeed
from .dependencies import get_config
from .lifespan import STATE_KEY

__all__ = ["EventStreamResponse", "router"]

log = logging.getLogger("hotconfig.fastapi")

_STATS_SHOWN = (
    "received",
    "applied",
    "skipped",
    "rejected",
    "resyncs",
    "reconnects",
    "receiver_errors",
    "coalesced",
)


def router(
    *,
    stream_keys: Iterable[str] = (),
    health_path: str = "/health",
    stream_path: str = "/stream",
    keepalive: float = 15.0,
    max_buffer_bytes: int = 1 << 20,
    retry_ms: int = 1000,
    tags: Iterable[str] = ("hotconfig",),
    max_staleness: float | None = None,
) -> APIRouter:
    """An ``APIRouter`` with ``/health`` and, when ``stream_keys`` allows any key, ``/stream``.

    ``stream_keys`` are fnmatch patterns of the keys a browser may see. Each stream keeps at
    most ``max_buffer_bytes`` unsent before the slow browser is disconnected; it reconnects
    (after ``retry_ms``) with ``Last-Event-ID`` and catches up. A comment goes out after
    ``keepalive`` idle seconds so that proxies keep the connection open. ``max_staleness``:
    seconds of outage after which ``/health`` stops answering 200 (None: never).
    """
    if max_staleness is not None and not max_staleness > 0:
        raise ValueError(f"max_staleness must be positive seconds or None, got {max_staleness!r}")
    allow = tuple(stream_keys)
    moves = _StatusMoves()
    feeds: weakref.WeakKeyDictionary[HotConfig[Any], ChangeFeed] = weakref.WeakKeyDictionary()

    def feed_for(config: HotConfig[Any]) -> ChangeFeed:
        feed = feeds.get(config)
        if feed is None:
            feed = feeds[config] = ChangeFeed(
                config, allow, max_buffer_bytes=max_buffer_bytes, retry_ms=retry_ms
            )
            feed.start()
        return feed

    @asynccontextmanager
    async def feeds_lifespan(app: Any) -> AsyncIterator[None]:
        config = getattr(app.state, STATE_KEY, None)
        if isinstance(config, HotConfig):
            moves.follow(config)  # an outage is timed from its start, not from the first probe
        if allow and isinstance(config, HotConfig):
            feed_for(config)  # follow the changes from the start, not from the first stream
        try:
            yield
        finally:
            for feed in list(feeds.values()):
                feed.stop()
            feeds.clear()  # an app started again follows its client on its new loop

    api = APIRouter(tags=list(tags), lifespan=feeds_lifespan)

    @api.get(health_path, summary="hotconfig readiness: 200 while serving a loaded configuration")
    async def health(request: Request) -> JSONResponse:
        config = await get_config(request)
        stats, status = config.stats, config.status
        outage = moves.since(config) if status is Status.INTERRUPTED else None
        ready = status is Status.LIVE or (
            outage is not None and (max_staleness is None or outage <= max_staleness)
        )
        body: dict[str, Any] = {
            "ready": ready,
            "status": str(status),
            "version": config.version,
            "lag": config.lag,
            "counts": {name: getattr(stats, name) for name in _STATS_SHOWN},
        }
        if outage is not None:
            body["outage_s"] = round(outage, 3)
        feed = feeds.get(config)
        if feed is not None:
            body["streams"] = feed.counts._asdict()
        status_code = 200 if ready else 503
        return JSONResponse(body, status_code=status_code, headers={"cache-control": "no-store"})

    if allow:

        @api.get(stream_path, summary="hotconfig changes as Server-Sent Events")
        async def stream(request: Request) -> EventStreamResponse:
            feed = feed_for(await get_config(request))
            outbox = feed.open(request.headers.get("last-event-id"))
            return EventStreamResponse(feed, outbox, keepalive=keepalive)

    return api


class _StatusMoves:
    """When each client's status last moved (from ``status_changed``): how long an outage lasts."""

    def __init__(self) -> None:
        self._at: weakref.WeakKeyDictionary[HotConfig[Any], float] = weakref.WeakKeyDictionary()

    def follow(self, config: HotConfig[Any]) -> None:
        if config not in self._at:
            self._at[config] = time.monotonic()
            signals.status_changed.connect(self._moved, sender=config, weak=False)

    def since(self, config: HotConfig[Any]) -> float:
        """Seconds since ``config``'s status last moved (since it was first seen, if later)."""
        self.follow(config)
        return time.monotonic() - self._at[config]

    def _moved(self, sender: HotConfig[Any], **_: Any) -> None:
        self._at[sender] = time.monotonic()


class EventStreamResponse(Response):
    """The ASGI side of one ``/stream`` connection: its outbox written until it ends."""

    media_type = "text/event-stream"

    def __init__(self, feed: ChangeFeed, outbox: Outbox, *, keepalive: float) -> None:
        super().__init__()
        self._feed = feed
        self._outbox = outbox
        self._keepalive = keepalive

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ending = Ending.CLIENT_GONE
        try:
            ending = await serve(self._outbox, receive, send, keepalive=self._keepalive)
        finally:
            self._feed.close(self._outbox, ending)
