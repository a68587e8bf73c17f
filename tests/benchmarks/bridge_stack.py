"""The two apps the bridge benchmark serves, each under one uvicorn worker.

- :func:`hand_rolled_app`: what a team writes by hand today: Starlette, encode/broadcaster's
  ``Broadcast`` on Redis and sse-starlette's ``EventSourceResponse``; ``GET /sse/{channel}``
  subscribes and forwards each message as an SSE ``data:`` frame (with broadcaster's Redis
  backend patched so that its first subscription delivers at all: :class:`_SubscribedFirst`).
- :func:`hotconfig_app`: FastAPI with ``hotconfig_fastapi.bridge_router`` on one
  ``hotconfig.bridge.Bridge``: ``GET /bridge/sse/{channel}``. No delivery class is configured,
  so every channel is forwarded as published, in order: the pass-through a user gets by
  default, the same work the hand-rolled stack does.

Both read the Redis URL from ``$HOTCONFIG_URL`` and answer ``GET /health``. Serve with
``uvicorn --factory tests.benchmarks.bridge_stack:hotconfig_app`` (or ``:hand_rolled_app``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

from broadcaster import Broadcast
from broadcaster._backends.redis import RedisBackend
from fastapi import FastAPI
from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

import hotconfig_fastapi
from hotconfig.bridge import Bridge

HAND_ROLLED_PATH = "/sse/"
HOTCONFIG_PATH = "/bridge/sse/"


def hand_rolled_app() -> Starlette:
    """broadcaster + sse-starlette, as their READMEs put them together."""
    broadcast = Broadcast(backend=_SubscribedFirst(os.environ["HOTCONFIG_URL"]))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await broadcast.connect()
        try:
            yield
        finally:
            await broadcast.disconnect()

    async def stream(request: Request) -> Response:
        channel = request.path_params["channel"]

        async def events() -> AsyncIterator[dict[str, str]]:
            async with broadcast.subscribe(channel) as subscriber:
                async for event in subscriber:  # type: ignore[union-attr]
                    yield {"data": event.message}  # type: ignore[union-attr]

        return EventSourceResponse(events())

    return Starlette(
        routes=[Route("/health", _health), Route(HAND_ROLLED_PATH + "{channel:path}", stream)],
        lifespan=lifespan,
    )


class _SubscribedFirst(RedisBackend):
    """broadcaster's Redis backend with the one fix the stack needs to deliver anything.

    broadcaster 0.3.1 wakes its listener before ``await pubsub.subscribe()``, and redis-py
    (8.1 here) records the channel only once that command is sent: the listener finds no
    channel, its ``listen()`` loop ends at once, and the first channel subscribed never
    delivers a message. Waking it after the command, as a team would patch it, is the fix.
    """

    async def subscribe(self, channel: str) -> None:
        await self._pubsub.subscribe(channel)
        self._ready.set()


def hotconfig_app() -> FastAPI:
    """One bridge, its router, every channel allowed (a benchmark has no users to tell apart)."""
    bridge = Bridge(os.environ["HOTCONFIG_URL"])
    app = FastAPI()
    app.include_router(
        hotconfig_fastapi.bridge_router(bridge, authorize=_allow_all, prefix="/bridge")
    )
    app.add_api_route("/health", _health)
    return app


def _allow_all(connection: HTTPConnection, channel: str) -> bool:
    return True


async def _health(request: Request) -> Response:
    return PlainTextResponse("ok")
