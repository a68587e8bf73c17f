"""The URLs of the bridge's Django project for the tests (``bridge_asgi.py`` serves them).

It serves ``GET /bridge/sse/<channel>``
and ``WS /bridge/ws/<channel>``; a channel under ``secret:`` is refused to everyone (by a plain
``authorize`` for SSE, an ``async`` one for WebSockets). ``$HOTCONFIG_URL`` names the server.
"""

from __future__ import annotations

import os

from django.http import HttpRequest, HttpResponse
from django.urls import include, path

from hotconfig.bridge import Bridge, Ephemeral, Sequenced
from hotconfig_django.bridge import Handshake, bridge_urls

bridge = Bridge(
    os.environ.get("HOTCONFIG_URL", "redis://127.0.0.1:9/0"),
    classes={"ai:stream:*": Sequenced(), "dashboard:refresh:*": Ephemeral("widgetId")},
)


def check(request: HttpRequest, channel: str) -> bool:
    return not channel.startswith("secret:")


async def check_handshake(handshake: Handshake, channel: str) -> bool:
    return not channel.startswith("secret:")


def health(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("health", health),
    path("bridge/", include(bridge_urls(bridge, authorize=check, keepalive=0.5))),
]
