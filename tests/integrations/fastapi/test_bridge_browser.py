"""The bridge example's AI-chat page in a real headless Chromium: tokens render as published.

Uses the Chromium fixture of the FastAPI browser test (Debian's ``chromium`` and
``chromium-driver``; skipped without them, except on CI).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from selenium import webdriver

from hotconfig.testing import EmbeddedServer
from tests.integrations.fastapi.servers import ROOT, uvicorn_app
from tests.integrations.fastapi.test_browser import browser, text_becomes
from tests.waiting import eventually

__all__ = ["browser"]  # the fixture, used by name

pytestmark = pytest.mark.slow

EXAMPLE = ROOT / "docs" / "examples" / "bridge"
TOKENS = ["Revenue", " grew", " 12%"]


def test_the_chat_page_renders_the_tokens_as_they_stream_and_stops_on_done(
    server: EmbeddedServer, tmp_path: Path, browser: webdriver.Chrome
) -> None:
    channel = "ai:stream:sess-abc"
    with (
        server.client() as client,
        uvicorn_app(server, tmp_path, app="app:app", extra=["--app-dir", str(EXAMPLE)]) as app,
    ):
        browser.get(app.url + "/?session=sess-abc")
        text_becomes(browser, "status", "streaming", timeout=10)
        assert eventually(lambda: dict(client.pubsub_numsub(channel))[channel.encode()] == 1)
        shown = ""
        for index, token in enumerate(TOKENS):
            client.publish(channel, json.dumps({"token": token, "index": index, "type": "text"}))
            shown += token
            text_becomes(browser, "answer", shown, timeout=2)  # token by token
        client.publish(channel, json.dumps({"done": True, "sql": "SELECT 1", "data": []}))
        text_becomes(browser, "status", "done", timeout=2)
        assert text_becomes(browser, "sql", "SELECT 1", timeout=2) < 2
