"""The channel bridge for browsers: ``GET {prefix}/sse/{channel}``, ``WS {prefix}/ws/{channel}``.

::

    bridge = hotconfig.bridge.Bridge(url, classes={"ai:stream:*": Sequenced()})


    def check(connection: HTTPConnection, channel: str) -> bool:
        return channel == f"ai:stream:{connection.cookies.get('session')}"


    app.include_router(hotconfig_fastapi.bridge_router(bridge, prefix="/bridge", authorize=check))

``{channel}`` is the full Redis channel name (``ai:stream:sess-abc``); a name no browser may
ask for (empty, a control character such as NUL, CR or LF, more than 1,024 bytes) answers 400
before ``authorize`` sees it, as a malformed ``Last-Event-ID`` does. ``authorize`` is required
and is asked before anything is subscribed: False answers 403 (a WebSocket is closed with
1008). Over SSE each published message is one event whose ``data:`` is the message as
published; a ``gap`` or ``idle`` event (see :mod:`hotconfig.bridge`) carries its JSON. Over
a WebSocket each published message is one text frame as published; a gap or idle notice is a
frame ``{"event": "gap", ...}``. A sequenced stream ends after its ``done`` message (SSE: the
response ends; WebSocket: closed with 1000). No lifespan is needed: the bridge connects on
the first subscriber. The streams are :mod:`hotconfig.bridge.serving`'s, as Django's and
Flask's are: when the server stops (SIGTERM, SIGINT, ``--reload``) every open SSE stream ends
at once with ``event: end`` and ``{"reason": "shutdown"}``, so the server does not wait for
browsers to leave and an ``EventSource`` reconnects to a worker that still runs.

On a replayable channel each SSE event carries ``id: {epoch}:{offset}``, so a browser's
``EventSource`` sends it back as ``Last-Event-ID`` when it reconnects and gets exactly what it
missed; a ``last_event_id`` query parameter does the same for a first connection and for a
WebSocket (the header wins when both are given; a malformed id answers 400). ``authorize`` is
asked again, with the same request, before stored messages are sent (at such a resume, and
each time the bridge catches up after a reconnect): a refusal sends a ``recovery`` event
``{"recovered": false, "reason": "forbidden"}`` and ends the stream (a WebSocket is closed
with 1008), so a revoked grant sees nothing stored.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from fastapi import APIRouter, WebSocket
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect

from hotconfig.bridge import Bridge
from hotconfig.bridge.serving import ChannelFrames, check_request, forward, refuse_handshake, serve

__all__ = ["Authorize", "bridge_router"]

Authorize = Callable[[HTTPConnection, str], bool | Awaitable[bool]]

_WS_POLICY_VIOLATION = 1008


def bridge_router(
    bridge: Bridge,
    *,
    authorize: Authorize,
    prefix: str = "",
    keepalive: float = 15.0,
    max_buffer_bytes: int = 1 << 20,
    tags: Iterable[str] = ("hotconfig",),
) -> APIRouter:
    """An ``APIRouter`` serving ``bridge``; ``authorize(request_or_websocket, channel)`` decides.

    ``authorize`` is called on the app's event loop; it may be ``async``. Each SSE stream
    keeps at most ``max_buffer_bytes`` unsent before its browser is disconnected.
    """
    if not callable(authorize):
        raise TypeError("bridge_router needs authorize(request_or_websocket, channel) -> bool")
    api = APIRouter(prefix=prefix, tags=list(tags))

    @api.get("/sse/{channel:path}", summary="a Redis channel as Server-Sent Events")
    async def sse(request: Request, channel: str) -> Response:
        try:  # before authorize sees the channel's name
            last_event_id = check_request(bridge, channel, request.headers, request.query_params)
        except ValueError as exc:
            return Response(str(exc), status_code=400, media_type="text/plain")
        if not await _allowed(authorize, request, channel):
            return Response("forbidden", status_code=403, media_type="text/plain")
        return _BridgedStream(
            bridge,
            channel,
            last_event_id=last_event_id,
            authorize_replay=lambda: _allowed(authorize, request, channel),
            keepalive=keepalive,
            max_bytes=max_buffer_bytes,
        )

    @api.websocket("/ws/{channel:path}")
    async def ws(websocket: WebSocket, channel: str) -> None:
        async def send(message: Mapping[str, Any]) -> None:
            await websocket.send(dict(message))  # Starlette types its messages as mutable

        query = websocket.query_params
        try:  # before authorize sees the channel's name
            last_event_id = check_request(bridge, channel, websocket.headers, query)
        except ValueError as exc:
            await refuse_handshake(websocket.scope, send, exc)
            return
        if not await _allowed(authorize, websocket, channel):
            await websocket.close(code=_WS_POLICY_VIOLATION)
            return
        await websocket.accept()
        subscription = bridge.subscribe(
            channel,
            last_event_id=last_event_id,
            authorize_replay=lambda: _allowed(authorize, websocket, channel),
        )
        try:
            await forward(subscription, websocket.receive, send)
        except (WebSocketDisconnect, RuntimeError):
            return  # the client left while a frame was on its way (Starlette's words for it)

    return api


async def _allowed(authorize: Authorize, connection: HTTPConnection, channel: str) -> bool:
    answer = authorize(connection, channel)
    if inspect.isawaitable(answer):
        answer = await answer
    return answer is True


class _BridgedStream(Response):
    """The ASGI side of one SSE connection: the subscription's events written until it ends."""

    media_type = "text/event-stream"

    def __init__(
        self,
        bridge: Bridge,
        channel: str,
        *,
        last_event_id: str | None,
        authorize_replay: Callable[[], Awaitable[bool]],
        keepalive: float,
        max_bytes: int,
    ) -> None:
        super().__init__()
        self._bridge, self._channel = bridge, channel
        self._last_event_id, self._authorize_replay = last_event_id, authorize_replay
        self._keepalive, self._max_bytes = keepalive, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Subscribed here, not in the endpoint: a response that is never sent holds nothing.
        subscription = self._bridge.subscribe(
            self._channel,
            last_event_id=self._last_event_id,
            authorize_replay=self._authorize_replay,
        )
        subscription.limit_bytes(self._max_bytes)
        await serve(ChannelFrames(subscription), receive, send, keepalive=self._keepalive)
