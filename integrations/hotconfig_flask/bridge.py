"""The channel bridge for Flask: ``GET {url_prefix}/sse/<channel>`` as Server-Sent Events.

::

    from hotconfig_flask.bridge import bridge_blueprint

    bridge = Bridge(classes={"ai:stream:*": Sequenced()})


    def check(request: flask.Request, channel: str) -> bool:
        return channel == f"ai:stream:{flask.session.get('id')}"


    app.register_blueprint(bridge_blueprint(bridge, authorize=check, url_prefix="/bridge"))

``<channel>`` is the full Redis channel name. Each browser's response is a WSGI body that
streams (:class:`~hotconfig.bridge.serving.BlockingStream`): it holds one WSGI thread while it
lasts, so serve it with threads (``gunicorn -k gthread --threads 100``), never with sync
workers, where one browser takes a whole worker. However many browsers, the
process holds ONE Redis connection and one event loop thread for the bridge. The streams are
:mod:`hotconfig.bridge.serving`'s, as FastAPI's and Django's are.

When the server stops (SIGTERM, SIGINT) every open stream ends at once with ``event: end`` and
``{"reason": "shutdown"}``, so a gunicorn worker exits without waiting out its graceful
timeout and an ``EventSource`` reconnects to a worker that still runs. The handler that does
it is installed when the blueprint is made on the main thread (a gunicorn worker importing the
app); with ``--preload`` the app is imported by the master, so install it from gunicorn's hook::

    # gunicorn.conf.py
    def post_worker_init(worker):
        hotconfig.bridge.serving.end_streams_on_signals()

A ``<channel>`` that no browser may ask for (empty, a control character such as NUL, CR or LF,
more than 1,024 bytes) answers 400 before ``authorize`` sees it, as a malformed
``Last-Event-ID`` does. ``authorize(request, channel)`` is required and is asked, on the
request's thread and in its request context, before anything is subscribed; an ``async def``
one runs through Flask's ``ensure_sync`` (``pip install 'flask[async]'``). Anything but True
answers 403. There is no WebSocket endpoint: Flask and WSGI have none; use SSE, or serve the
bridge from an ASGI app.

On a replayable channel a browser resumes where it left off: its ``EventSource`` sends the
``Last-Event-ID`` header when it reconnects (a first connection may pass a ``last_event_id``
query parameter; the header wins), and it gets exactly the messages it missed, or a
``recovery`` event saying that was impossible. A malformed id answers 400. ``authorize`` is
asked again before stored messages are sent, in a copy of the request's context on a thread
of its own (so ``flask.request`` and ``flask.session`` are the browser's, as at subscribe,
and a slow check holds up no other browser): a refusal sends a ``recovery`` event
``{"recovered": false, "reason": "forbidden"}`` and ends the stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from flask import Blueprint, Request, Response, current_app, request
from flask.globals import request_ctx

from hotconfig.bridge import Bridge
from hotconfig.bridge.serving import (
    CONTENT_TYPE,
    SSE_HEADERS,
    BlockingStream,
    check_request,
    end_streams_on_signals,
)

__all__ = ["Authorize", "bridge_blueprint"]

Authorize = Callable[[Request, str], bool | Awaitable[bool]]


def bridge_blueprint(
    bridge: Bridge,
    *,
    authorize: Authorize,
    url_prefix: str = "/bridge",
    keepalive: float = 15.0,
    name: str = "hotconfig_bridge",
) -> Blueprint:
    """A blueprint serving ``bridge``; ``authorize(request, channel)`` decides who reads what.

    A browser that left is noticed when a write to it fails: at the next event or keep-alive
    comment, every ``keepalive`` seconds at the latest.
    """
    if not callable(authorize):
        raise TypeError("bridge_blueprint needs authorize(request, channel) -> bool")
    if keepalive <= 0:
        raise ValueError(f"keepalive must be positive, got {keepalive}")
    # A gunicorn worker imports the app on its main thread, after it set its signal handlers:
    # the one moment the handler that ends the streams can go in front of them.
    end_streams_on_signals()
    blueprint = Blueprint(name, __name__, url_prefix=url_prefix)

    def allowed(channel: str) -> bool:
        """Asked in the request's context: at subscribe, and again before a replay."""
        return current_app.ensure_sync(authorize)(request, channel) is True

    @blueprint.get("/sse/<path:channel>")
    def sse(channel: str) -> Response:
        try:  # before authorize sees the channel's name
            resume = check_request(bridge, channel, request.headers, request.args)
        except ValueError as exc:
            return Response(str(exc), status=400, mimetype="text/plain")
        if not allowed(channel):
            return Response("forbidden", status=403, mimetype="text/plain")
        origin = request_ctx.copy()  # this request's context, kept for the checks at replay

        def allowed_at_replay() -> bool:
            # A fresh copy each time: after a reconnect of the bridge a check may start while
            # one that was given up still runs on its thread.
            with origin.copy():
                return allowed(channel)

        stream = BlockingStream(
            bridge,
            channel,
            keepalive=keepalive,
            last_event_id=resume,
            authorize_replay=lambda: asyncio.to_thread(allowed_at_replay),
        )
        # direct_passthrough: the server writes each chunk as it comes, and calls
        # stream.close() when the response ends, however it ends.
        return Response(
            stream, content_type=CONTENT_TYPE, headers=SSE_HEADERS, direct_passthrough=True
        )

    return blueprint
