"""An AI-chat page that renders an answer's tokens as the AI service publishes them.

Run it (from the repository root) against any Redis or Valkey::

    HOTCONFIG_URL=redis://127.0.0.1:6379/0 uvicorn --app-dir docs/examples/bridge app:app

open http://127.0.0.1:8000/?session=sess-abc and publish the answer, token by token::

    python docs/examples/bridge/publisher.py sess-abc
    # or by hand:
    redis-cli PUBLISH ai:stream:sess-abc '{"token": "Revenue", "index": 0, "type": "text"}'
    redis-cli PUBLISH ai:stream:sess-abc '{"done": true, "sql": "SELECT 1", "data": []}'

A page may read only the stream of the session in its own query string; a real app would
check the session cookie.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from starlette.requests import HTTPConnection

import hotconfig_fastapi
from hotconfig.bridge import Bridge, Ephemeral, Sequenced

PAGE = (Path(__file__).parent / "chat.html").read_text()

bridge = Bridge(
    classes={
        "ai:stream:*": Sequenced(index="index", done="done", idle_timeout=30.0),
        "dashboard:refresh:*": Ephemeral(key="widgetId"),
    }
)


def may_read(connection: HTTPConnection, channel: str) -> bool:
    """The page's own session only (called on the app's event loop)."""
    session = connection.query_params.get("session", "")
    return bool(session) and channel == f"ai:stream:{session}"


app = FastAPI()
app.include_router(hotconfig_fastapi.bridge_router(bridge, prefix="/bridge", authorize=may_read))


@app.get("/", response_class=HTMLResponse)
def page() -> str:
    return PAGE
