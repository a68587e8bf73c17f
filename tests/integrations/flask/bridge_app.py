"""The Flask app the bridge tests serve with gunicorn's threaded workers.

``GET /bridge/sse/<channel>`` (keep-alive every 0.5 s, so a browser that left is noticed
soon); a channel under ``secret:`` is refused to everyone. ``chat:*`` and ``revocable:*`` are
replayable; a ``revocable:`` channel is allowed once per request, so its grant is gone by the
time stored messages would be replayed (as if the session were revoked right after it
subscribed). The check at replay reads ``flask.request``, as an app's would (its session, its
user): it runs in the request's context. ``GET /bridge-stats`` shows the
bridge's counters, ``GET /health`` answers once the worker serves. ``$HOTCONFIG_URL`` names
the server.
"""

from __future__ import annotations

import os
from typing import Any

import flask
from flask import Flask, Request

from hotconfig.bridge import Bridge, Ephemeral, Replayable, Sequenced
from hotconfig_flask.bridge import bridge_blueprint

bridge = Bridge(
    os.environ["HOTCONFIG_URL"],
    classes={
        "ai:stream:*": Sequenced(),
        "dashboard:refresh:*": Ephemeral("widgetId"),
        "chat:*": Replayable(),
        "revocable:*": Replayable(),
    },
)


def check(request: Request, channel: str) -> bool:
    # flask.request, not the argument: outside the request's context it raises (and the
    # replay would be refused).
    environ = flask.request.environ
    if channel.startswith("secret:"):
        return False
    asked = environ.get("hotconfig.asked", 0)
    environ["hotconfig.asked"] = asked + 1
    return not channel.startswith("revocable:") or asked == 0


app = Flask(__name__)
app.register_blueprint(bridge_blueprint(bridge, authorize=check, keepalive=0.5))


@app.get("/health")
def health() -> str:
    return "ok"


@app.get("/bridge-stats")
def stats() -> dict[str, Any]:
    return {**bridge.stats._asdict(), "pid": os.getpid()}
