"""Serving the channel bridge to browsers: the one SSE path and the WebSocket forwarder.

Every framework adapter (FastAPI, Django, Flask) and the config change stream of
``hotconfig_fastapi`` serve through these. One event stream decides what goes on the wire
(frames with their resume ids, keep-alives, the ``end`` frame when the server stops); thin
writers put it on a connection: :func:`serve` answers a raw ASGI request from a
:class:`FrameSource` (a bridge subscription through :class:`ChannelFrames`, or an
:class:`Outbox`), :func:`sse_stream` is an async iterator of bytes (Django under ASGI), and
:class:`BlockingStream` a WSGI body (Flask, Django under WSGI). :func:`websocket_app`
forwards a subscription over a raw ASGI WebSocket.

On SIGTERM or SIGINT every open stream ends at once with ``event: end`` and
``{"reason": "shutdown"}``; :func:`end_streams_on_signals` says where that handler comes from.
"""

from __future__ import annotations

from .._outbox import KEEPALIVE, Ending, Outbox, OutboxEnded, comment, frame
from ._asgi import serve
from ._shutdown import end_streams_on_signals
from ._sse import (
    CONTENT_TYPE,
    LAST_EVENT_ID_HEADER,
    LAST_EVENT_ID_PARAMETER,
    SSE_HEADERS,
    ChannelFrames,
    FrameSource,
    Lookup,
    check_request,
    last_event_id,
    sse_frame,
    sse_stream,
    websocket_text,
)
from ._websocket import (
    ASGIApp,
    Handshake,
    WebSocketAuthorize,
    forward,
    refuse_handshake,
    websocket_app,
)
from ._wsgi import BlockingStream, shared_loop

__all__ = [
    "CONTENT_TYPE",
    "KEEPALIVE",
    "LAST_EVENT_ID_HEADER",
    "LAST_EVENT_ID_PARAMETER",
    "SSE_HEADERS",
    "ASGIApp",
    "BlockingStream",
    "ChannelFrames",
    "Ending",
    "FrameSource",
    "Handshake",
    "Lookup",
    "Outbox",
    "OutboxEnded",
    "WebSocketAuthorize",
    "check_request",
    "comment",
    "end_streams_on_signals",
    "forward",
    "frame",
    "last_event_id",
    "refuse_handshake",
    "serve",
    "shared_loop",
    "sse_frame",
    "sse_stream",
    "websocket_app",
    "websocket_text",
]
