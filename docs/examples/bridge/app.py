"""The bridge's example pages: an AI chat that renders tokens as they stream, and a dashboard.

Run it (from the repository root) against any Redis or Valkey::

    HOTCONFIG_URL=redis://127.0.0.1:6379/0 uvicorn --app-dir docs/examples/bridge app:app

The AI chat: open http://127.0.0.1:8000/?session=sess-abc and publish the answer, token by
token::

    python docs/examples/bridge/publisher.py sess-abc
    # or by hand:
    redis-cli PUBLISH ai:stream:sess-abc '{"token": "Revenue", "index": 0, "type": "text"}'
    redis-cli PUBLISH ai:stream:sess-abc '{"done": true, "sql": "SELECT 1", "data": []}'

A page may read only the stream of the session in its own query string; a real app would
check the session cookie.

The dashboard: open http://127.0.0.1:8000/dashboard?id=sales and play the BI service, which
writes a widget's new data and then publishes ``{"widgetId", "dataVersion"}`` on
``dashboard:refresh:sales``; each widget refetches its data from ``/dashboards/sales/widgets/
{widgetId}`` when told to::

    python docs/examples/bridge/publisher.py --dashboard sales --rounds 5

``dashboard:refresh:*`` is ``Ephemeral("widgetId")``: a browser that falls behind gets the
newest version of each widget, not a backlog.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import redis
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from starlette.requests import HTTPConnection

import hotconfig_fastapi
from hotconfig.bridge import Bridge, Ephemeral, Sequenced

HERE = Path(__file__).parent
CHAT = (HERE / "chat.html").read_text()
DASHBOARD = (HERE / "dashboard.html").read_text()
URL = os.environ.get("HOTCONFIG_URL", "redis://127.0.0.1:6379/0")

bridge = Bridge(
    URL,
    classes={
        "ai:stream:*": Sequenced(index="index", done="done", idle_timeout=30.0),
        "dashboard:refresh:*": Ephemeral(key="widgetId"),
    },
)
# The widgets' data, as the BI service wrote it (publisher.py plays that service).
data = redis.Redis.from_url(URL, decode_responses=True)


def may_read(connection: HTTPConnection, channel: str) -> bool:
    """The page's own session, and any dashboard (called on the app's event loop)."""
    if channel.startswith("dashboard:refresh:"):
        return True  # a real app checks that the user may see this dashboard
    session = connection.query_params.get("session", "")
    return bool(session) and channel == f"ai:stream:{session}"


app = FastAPI()
app.include_router(hotconfig_fastapi.bridge_router(bridge, prefix="/bridge", authorize=may_read))


@app.get("/", response_class=HTMLResponse)
def page() -> str:
    return CHAT


@app.get("/dashboard", response_class=HTMLResponse)
def dashboard() -> str:
    return DASHBOARD


@app.get("/dashboards/{dashboard_id}/widgets/{widget_id}")
def widget(dashboard_id: str, widget_id: str) -> dict[str, Any]:
    """A widget's data now: what the page refetches on ``dashboard:refresh:{dashboard_id}``."""
    stored = data.hgetall(f"dashboard:data:{dashboard_id}:{widget_id}")
    return {
        "widgetId": widget_id,
        "dataVersion": int(stored.get("dataVersion", 0)),
        "value": stored.get("value", "no data yet"),
    }
