"""The URLs of the bridge's Django project for the tests (``bridge_asgi.py`` serves them).

It serves ``GET /bridge/sse/<channel>``
and ``WS /bridge/ws/<channel>``; a channel under ``secret:`` is refused to everyone (by a plain
``authorize`` for SSE, an ``async`` one for WebSockets). ``chat:*`` and ``revocable:*`` are
replayable; a ``revocable:`` channel is allowed once per request (or handshake), so its grant
is gone by the time stored messages would be replayed (as if the session were revoked right
after it subscribed). ``GET /bridge-stats`` shows the bridge's counters. ``$HOTCONFIG_URL``
names the server.
"""

from __future__ import annotations

import os
from typing import Any, cast

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path

from hotconfig.bridge import Bridge, Ephemeral, Replayable, Sequenced
from hotconfig_django.bridge import Handshake, bridge_urls

bridge = Bridge(
    os.environ.get("HOTCONFIG_URL", "redis://127.0.0.1:9/0"),
    classes={
        "ai:stream:*": Sequenced(),
        "dashboard:refresh:*": Ephemeral("widgetId"),
        "chat:*": Replayable(),
        "revocable:*": Replayable(),
    },
)


def _first_time(state: dict[str, Any], channel: str) -> bool:
    """Allowed unless ``secret:``; a ``revocable:`` channel only the first time it is asked."""
    if channel.startswith("revocable:"):
        asked: int = state.get("hotconfig_asked", 0)
        state["hotconfig_asked"] = asked + 1
        return asked == 0
    return not channel.startswith("secret:")


def check(request: HttpRequest, channel: str) -> bool:
    return _first_time(request.META, channel)


async def check_handshake(handshake: Handshake, channel: str) -> bool:
    return _first_time(cast(dict[str, Any], handshake.scope), channel)


def health(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


def stats(request: HttpRequest) -> JsonResponse:
    return JsonResponse(bridge.stats._asdict())


urlpatterns = [
    path("health", health),
    path("bridge-stats", stats),
    path("bridge/", include(bridge_urls(bridge, authorize=check, keepalive=0.5))),
]
