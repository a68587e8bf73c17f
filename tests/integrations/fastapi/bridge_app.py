"""The bridge app the tests serve with a real uvicorn process.

Configured by environment variables: ``HOTCONFIG_URL``, ``BRIDGE_IDLE`` (the ``ai:stream:*``
idle timeout, seconds) and ``BRIDGE_MAX_BUFFER`` (bytes per browser). A channel under
``secret:`` is refused to everyone. ``chat:*`` and ``revocable:*`` are replayable; a
``revocable:`` channel is allowed once per request, so its grant is gone by the time stored
messages would be replayed (as if the session were revoked right after it subscribed).
``GET /bridge-stats`` shows the bridge's counters.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI
from starlette.requests import HTTPConnection

import hotconfig_fastapi
from hotconfig.bridge import Bridge, Ephemeral, Replayable, Sequenced

bridge = Bridge(
    os.environ["HOTCONFIG_URL"],
    classes={
        "ai:stream:*": Sequenced(idle_timeout=float(os.environ.get("BRIDGE_IDLE", "30"))),
        "dashboard:refresh:*": Ephemeral("widgetId"),
        "chat:*": Replayable(),
        "revocable:*": Replayable(),
    },
)


def check(connection: HTTPConnection, channel: str) -> bool:
    if channel.startswith("revocable:"):
        asked = getattr(connection.state, "asked", 0)
        connection.state.asked = asked + 1
        return asked == 0
    return not channel.startswith("secret:")


app = FastAPI()
app.include_router(
    hotconfig_fastapi.bridge_router(
        bridge,
        prefix="/bridge",
        authorize=check,
        keepalive=0.5,
        max_buffer_bytes=int(os.environ.get("BRIDGE_MAX_BUFFER", str(1 << 20))),
    )
)


@app.get("/bridge-stats")
def stats() -> dict[str, Any]:
    return bridge.stats._asdict()
