"""Serving the channel bridge to browsers: the one SSE path and the WebSocket forwarder.

Every framework adapter (FastAPI, Django, Flask) serves through these: :func:`sse_stream`
(async) and :class:`BlockingStream` (threaded servers) frame events with their resume ids and
keep-alives; :func:`websocket_app` forwards a subscription over a raw ASGI WebSocket. The
:class:`Outbox` bounds what one connection may buffer; the config change stream of
``hotconfig_fastapi`` writes through it too.
"""

from __future__ import annotations

from .._outbox import KEEPALIVE, Ending, Outbox, OutboxEnded, comment, frame
from ._sse import (
    CONTENT_TYPE,
    LAST_EVENT_ID_HEADER,
    LAST_EVENT_ID_PARAMETER,
    SSE_HEADERS,
    BlockingStream,
    Lookup,
    last_event_id,
    shared_loop,
    sse_frame,
    sse_stream,
    websocket_text,
)
from ._websocket import ASGIApp, Handshake, WebSocketAuthorize, forward, websocket_app

__all__ = [
    "CONTENT_TYPE",
    "KEEPALIVE",
    "LAST_EVENT_ID_HEADER",
    "LAST_EVENT_ID_PARAMETER",
    "SSE_HEADERS",
    "ASGIApp",
    "BlockingStream",
    "Ending",
    "Handshake",
    "Lookup",
    "Outbox",
    "OutboxEnded",
    "WebSocketAuthorize",
    "comment",
    "forward",
    "frame",
    "last_event_id",
    "shared_loop",
    "sse_frame",
    "sse_stream",
    "websocket_app",
    "websocket_text",
]
