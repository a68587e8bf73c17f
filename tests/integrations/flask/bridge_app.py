"""The Flask app the bridge tests serve with gunicorn's threaded workers.

``GET /bridge/sse/<channel>`` (keep-alive every 0.5 s, so a browser that left is noticed
soon); a channel under ``secret:`` is refused to everyone. ``GET /bridge-stats`` shows the
bridge's counters, ``GET /health`` answers once the worker serves. ``$HOTCONFIG_URL`` names
the server.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, Request

from hotconfig.bridge import Bridge, Ephemeral, Sequenced
from hotconfig_flask.bridge import bridge_blueprint

bridge = Bridge(
    os.environ["HOTCONFIG_URL"],
    classes={"ai:stream:*": Sequenced(), "dashboard:refresh:*": Ephemeral("widgetId")},
)


def check(request: Request, channel: str) -> bool:
    return not channel.startswith("secret:")


app = Flask(__name__)
app.register_blueprint(bridge_blueprint(bridge, authorize=check, keepalive=0.5))


@app.get("/health")
def health() -> str:
    return "ok"


@app.get("/bridge-stats")
def stats() -> dict[str, Any]:
    return {**bridge.stats._asdict(), "pid": os.getpid()}
