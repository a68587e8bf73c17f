"""The channel bridge over WebSockets, as a raw ASGI app in front of another one.

For a framework with no WebSocket of its own (Django without Channels)::

    application = websocket_app(
        django_asgi_app, bridge, authorize=check, prefix="/bridge/ws/"
    )  # WS /bridge/ws/ai:stream:sess-abc

A WebSocket whose path starts with ``prefix`` follows the channel named by the rest of the
path; every other connection (HTTP, lifespan, other WebSockets) goes to the wrapped app.
``authorize(handshake, channel)`` is awaited before anything is subscribed: anything but
True refuses the handshake (the server answers 403). Each published message is one text
frame as published; a gap or idle notice is a frame ``{"event": "gap", ...}``. A sequenced
stream ends with close code 1000 after its ``done``; a browser dropped at its byte bound gets
1013 (try again later), every browser 1001 when the bridge closes.

What the path and the query ask for is checked before ``authorize`` is
(:func:`~._sse.check_request`): a channel name no browser may ask for (empty, a control
character, more than 1,024 bytes) or a malformed resume id refuses the handshake, with 400 and
the reason where the server lets the app answer a handshake (uvicorn), else with close 1008
before it is accepted (the server answers 403).

On a replayable channel a WebSocket resumes after the ``last_event_id`` query parameter (or a
``Last-Event-ID`` header, which a browser's WebSocket never sends but another client may).
``authorize`` is awaited again, with the same handshake, before stored messages are sent; a
refusal sends ``{"event": "recovery", "recovered": false, "reason": "forbidden"}`` and closes
with 1008.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from http.cookies import CookieError, SimpleCookie
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, unquote

from .._delivery import Subscription
from .._events import EventKind
from .._hub import Bridge
from .._outbox import Ending
from ._sse import check_request, websocket_text

__all__ = [
    "ASGIApp",
    "Handshake",
    "WebSocketAuthorize",
    "forward",
    "refuse_handshake",
    "websocket_app",
]

log = logging.getLogger("hotconfig.bridge")

# Typed so that Django's ASGIHandler and Starlette's apps both fit: a dict scope, messages
# received mutable, messages sent any mapping.
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[Mapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_NORMAL, _GOING_AWAY, _POLICY_VIOLATION, _TRY_AGAIN_LATER = 1000, 1001, 1008, 1013
_MALFORMED = "malformed channel name or last_event_id"
_PLAIN = [(b"content-type", b"text/plain; charset=utf-8")]


class Handshake(NamedTuple):
    """What ``authorize`` knows of a WebSocket handshake: header names are lowercase."""

    scope: Mapping[str, Any]
    path: str
    headers: Mapping[str, str]
    cookies: Mapping[str, str]
    query: Mapping[str, str]  # the first value of each query parameter

    @classmethod
    def from_scope(cls, scope: Mapping[str, Any]) -> Handshake:
        headers: dict[str, str] = {}
        for name, value in scope.get("headers", ()):
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            # Repeated headers join as HTTP says; cookies (HTTP/2 splits them) with "; ".
            joiner = "; " if key == "cookie" else ", "
            headers[key] = f"{headers[key]}{joiner}{text}" if key in headers else text
        cookies: dict[str, str] = {}
        try:
            parsed = SimpleCookie(headers.get("cookie", ""))
            cookies = {name: morsel.value for name, morsel in parsed.items()}
        except CookieError:
            log.info("a WebSocket handshake with unreadable cookies: none are given to authorize")
        query: dict[str, str] = {}
        for name, value in parse_qsl(scope.get("query_string", b"").decode("latin-1")):
            query.setdefault(name, value)
        return cls(scope, scope["path"], headers, cookies, query)


WebSocketAuthorize = Callable[[Handshake, str], Awaitable[bool]]


def websocket_app(
    application: ASGIApp, bridge: Bridge, *, authorize: WebSocketAuthorize, prefix: str
) -> ASGIApp:
    """``application`` with the bridge's WebSockets served under ``prefix``; see the docstring."""
    if not callable(authorize):
        raise TypeError("websocket_app needs authorize(handshake, channel) -> bool (awaitable)")
    if not prefix.startswith("/") or not prefix.endswith("/"):
        raise ValueError(f"prefix must start and end with '/', e.g. '/bridge/ws/': {prefix!r}")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "websocket" or not path.startswith(prefix):
            await application(scope, receive, send)
            return
        channel = unquote(path[len(prefix) :])
        connect = await receive()
        if connect["type"] != "websocket.connect":
            return  # the client left before its handshake was answered
        handshake = Handshake.from_scope(scope)
        try:  # before authorize sees the channel's name
            resume = check_request(bridge, channel, handshake.headers, handshake.query)
        except ValueError as exc:
            await refuse_handshake(scope, send, exc)
            return
        if await authorize(handshake, channel) is not True:
            await send({"type": "websocket.close", "code": _POLICY_VIOLATION})
            return
        await send({"type": "websocket.accept"})

        async def allowed_at_replay() -> bool:
            return await authorize(handshake, channel) is True

        subscription = bridge.subscribe(
            channel, last_event_id=resume, authorize_replay=allowed_at_replay
        )
        await forward(subscription, receive, send)

    return app


async def refuse_handshake(scope: Mapping[str, Any], send: Send, error: ValueError) -> None:
    """Refuse a handshake that asks for what no browser may (:func:`~._sse.check_request`):
    400 with the error's text where the server can answer a handshake with a response of the
    app's (the ASGI ``websocket.http.response`` extension: uvicorn), else close 1008 before
    accepting (the server answers 403)."""
    if "websocket.http.response" in (scope.get("extensions") or {}):
        body = str(error).encode()
        headers = [*_PLAIN, (b"content-length", str(len(body)).encode())]
        await send({"type": "websocket.http.response.start", "status": 400, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": _POLICY_VIOLATION, "reason": _MALFORMED})


async def forward(subscription: Subscription, receive: Receive, send: Send) -> None:
    """Send the subscription's events as text frames until it ends or the client leaves.

    For an accepted WebSocket of any ASGI framework (``receive``/``send`` may be Starlette's
    ``websocket.receive``/``websocket.send``); the subscription is closed on return. A stream
    ends with 1000 after its final event (1008 when a replay was refused), 1013 for a browser
    dropped at its bound, 1001 when the bridge closed.
    """
    watcher = asyncio.create_task(_watch_disconnect(receive, subscription))
    dropped = asyncio.create_task(subscription.wait_dropped())
    code = _GOING_AWAY
    try:
        async for event in subscription:
            message = {"type": "websocket.send", "text": websocket_text(event)}
            if not await _send(send, message, dropped):
                return  # dropped at its bound while a frame waited on it: the server cuts it
            if event.final:  # done, idle, or refused at replay
                code = _POLICY_VIOLATION if event.kind is EventKind.RECOVERY else _NORMAL
                break
        else:
            if subscription.ending is Ending.CLIENT_GONE:
                return
            if subscription.ending is Ending.OVERFLOW:
                code = _TRY_AGAIN_LATER
        await send({"type": "websocket.close", "code": code})
    except OSError:
        return  # the client left while a frame was on its way (uvicorn: ClientDisconnected)
    finally:
        for task in (watcher, dropped):
            task.cancel()
        await asyncio.gather(watcher, dropped, return_exceptions=True)
        subscription.close()


async def _send(send: Send, message: Mapping[str, Any], dropped: asyncio.Task[Ending]) -> bool:
    """Send one frame; False if the subscription was dropped while the client did not read."""
    sending = asyncio.ensure_future(send(message))
    await asyncio.wait((sending, dropped), return_when=asyncio.FIRST_COMPLETED)
    if sending.done():
        sending.result()
        return True
    sending.cancel()
    await asyncio.gather(sending, return_exceptions=True)
    return False


async def _watch_disconnect(receive: Receive, subscription: Subscription) -> None:
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            subscription.close()
            return
