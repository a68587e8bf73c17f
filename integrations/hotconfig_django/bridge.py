"""The channel bridge for Django: ``GET .../sse/<channel>``, ``WS /bridge/ws/<channel>``.

::

    # urls.py
    from hotconfig_django.bridge import bridge_urls

    bridge = Bridge(classes={"ai:stream:*": Sequenced()})


    def check(request: HttpRequest, channel: str) -> bool:
        return channel == f"ai:stream:{request.session.session_key}"


    urlpatterns = [path("bridge/", include(bridge_urls(bridge, authorize=check)))]

    # asgi.py: WebSockets too (Django has none of its own without Channels)
    application = hotconfig_django.bridge.asgi(
        get_asgi_application(), bridge, authorize=check_ws, prefix="/bridge/ws/"
    )

``<channel>`` is the full Redis channel name. The streams are :mod:`hotconfig.bridge.serving`'s,
as FastAPI's and Flask's are. Under ASGI (uvicorn, daphne, gunicorn with uvicorn workers) an
event stream is a ``StreamingHttpResponse`` over an async iterator: a thousand browsers cost
one event loop and ONE Redis connection. Under WSGI it is a blocking body
(:class:`~hotconfig.bridge.serving.BlockingStream`): each browser holds a server thread while
its stream is open, so serve it with threads (``gunicorn -k gthread --threads 100``), never
with sync workers, where one browser takes a whole worker.

When the server stops (SIGTERM, SIGINT) every open stream ends at once with ``event: end`` and
``{"reason": "shutdown"}``, so the server does not wait for browsers to leave and an
``EventSource`` reconnects to a worker that still runs. Under ASGI that needs nothing; under
WSGI the URLs load on a request thread, so install the handler from gunicorn's hook
(:func:`~hotconfig.bridge.serving.end_streams_on_signals`)::

    # gunicorn.conf.py
    def post_worker_init(worker):
        hotconfig.bridge.serving.end_streams_on_signals()

A ``<channel>`` that no browser may ask for (empty, a control character such as NUL, CR or LF,
more than 1,024 bytes) answers 400 before ``authorize`` sees it, as a malformed
``Last-Event-ID`` does. ``authorize`` is required, asked before anything is subscribed; it may
be ``async`` (called on the event loop) or plain (called in a thread by ``sync_to_async``, so
it may use the ORM and ``request.user``). Anything but True answers 403; a WebSocket
handshake is refused (403).

On a replayable channel a browser resumes where it left off: its ``EventSource`` sends the
``Last-Event-ID`` header when it reconnects (a first connection may pass a ``last_event_id``
query parameter; the header wins), and it gets exactly the messages it missed, or a
``recovery`` event saying that was impossible. A malformed id answers 400. ``authorize`` is
asked again, with the same request, before stored messages are sent: a refusal sends a
``recovery`` event ``{"recovered": false, "reason": "forbidden"}`` and ends the stream. The
WebSocket wrapper resumes from ``?last_event_id=`` the same way.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseBase,
    StreamingHttpResponse,
)
from django.urls import URLPattern, path

from hotconfig.bridge import Bridge
from hotconfig.bridge.serving import (
    CONTENT_TYPE,
    SSE_HEADERS,
    ASGIApp,
    BlockingStream,
    Handshake,
    check_request,
    end_streams_on_signals,
    sse_stream,
    websocket_app,
)

__all__ = ["Authorize", "Handshake", "asgi", "bridge_urls", "sse_view"]

R = TypeVar("R")
Authorize = Callable[[R, str], bool | Awaitable[bool]]


def sse_view(
    bridge: Bridge, *, authorize: Authorize[HttpRequest], keepalive: float = 15.0
) -> Callable[[HttpRequest, str], Coroutine[Any, Any, HttpResponseBase]]:
    """An async view ``(request, channel)`` answering with ``channel`` as Server-Sent Events.

    Made on the main thread (a project that builds its URLs at startup), it also installs the
    handler that ends the streams on SIGTERM.
    """
    allowed = _checker(authorize, "sse_view needs authorize(request, channel) -> bool")
    if keepalive <= 0:
        raise ValueError(f"keepalive must be positive, got {keepalive}")
    end_streams_on_signals()

    async def bridged_events(request: HttpRequest, channel: str) -> HttpResponseBase:
        try:  # before authorize sees the channel's name
            position = check_request(bridge, channel, request.headers, request.GET)
        except ValueError as exc:
            return HttpResponseBadRequest(str(exc), content_type="text/plain")
        if not await allowed(request, channel):
            return HttpResponse("forbidden", status=403, content_type="text/plain")
        # Subscribed when the server first iterates it: under ASGI on the loop that sends the
        # response, under WSGI on the process's shared loop.

        def replay() -> Awaitable[bool]:
            return allowed(request, channel)

        stream: AsyncIterator[bytes] | Iterator[bytes]
        if isinstance(request, ASGIRequest):
            stream = sse_stream(
                bridge,
                channel,
                keepalive=keepalive,
                last_event_id=position,
                authorize_replay=replay,
            )
        else:
            stream = BlockingStream(
                bridge,
                channel,
                keepalive=keepalive,
                last_event_id=position,
                authorize_replay=replay,
            )
        return StreamingHttpResponse(stream, content_type=CONTENT_TYPE, headers=SSE_HEADERS)

    return bridged_events


def bridge_urls(
    bridge: Bridge,
    *,
    authorize: Authorize[HttpRequest],
    keepalive: float = 15.0,
    name: str = "hotconfig-bridge-sse",
) -> list[URLPattern]:
    """URL patterns to ``include()``: ``sse/<path:channel>``, the view named ``name``."""
    view = sse_view(bridge, authorize=authorize, keepalive=keepalive)
    return [path("sse/<path:channel>", view, name=name)]


def asgi(
    application: ASGIApp,
    bridge: Bridge,
    *,
    authorize: Authorize[Handshake],
    prefix: str = "/bridge/ws/",
) -> ASGIApp:
    """Django's ASGI ``application`` with the bridge's WebSockets under ``prefix``.

    ``authorize(handshake, channel)`` gets a :class:`~hotconfig.bridge.serving.Handshake`
    (``headers``, ``cookies``, ``query``, the raw ``scope``); every other connection goes to
    ``application`` unchanged.
    """
    allowed = _checker(authorize, "asgi() needs authorize(handshake, channel) -> bool")
    return websocket_app(application, bridge, authorize=allowed, prefix=prefix)


def _checker(authorize: Authorize[R], message: str) -> Callable[[R, str], Awaitable[bool]]:
    """``authorize`` as a coroutine function: a plain one runs in a thread (it may use the ORM)."""
    if not callable(authorize):
        raise TypeError(message)
    call: Callable[[R, str], Any] = (
        authorize if inspect.iscoroutinefunction(authorize) else sync_to_async(authorize)
    )

    async def allowed(subject: R, channel: str) -> bool:
        answer = call(subject, channel)
        if inspect.isawaitable(answer):
            answer = await answer
        return answer is True

    return allowed
