"""The bridge example's dashboard page in a real headless Chromium: a widget refetches.

The example app (docs/examples/bridge/app.py) under uvicorn, its publisher.py playing the BI
service: new data for a widget, then ``{"widgetId", "dataVersion"}`` on
``dashboard:refresh:sales``; the page refetches that widget and shows the new version. Uses
the Chromium fixture of the FastAPI browser test (skipped without Chromium, except on CI).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import redis
from selenium import webdriver

from hotconfig.testing import EmbeddedServer
from tests.integrations.fastapi.servers import ROOT, uvicorn_app
from tests.integrations.fastapi.test_browser import browser, text_becomes
from tests.waiting import eventually

__all__ = ["browser"]  # the fixture, used by name

pytestmark = pytest.mark.slow

EXAMPLE = ROOT / "docs" / "examples" / "bridge"
# The page's stream stays open: uvicorn may cut it 1 s into its stop instead of waiting.
SERVE = ["--app-dir", str(EXAMPLE), "--timeout-graceful-shutdown", "1"]
CHANNEL = "dashboard:refresh:sales"


def publish(url: str, *args: str) -> str:
    """Run the example's publisher, as its docstring says; what it printed."""
    done = subprocess.run(
        [sys.executable, str(EXAMPLE / "publisher.py"), "--url", url, *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout


def test_a_published_refresh_makes_the_widget_show_its_new_data_version(
    server: EmbeddedServer, redis_client: redis.Redis, tmp_path: Path, browser: webdriver.Chrome
) -> None:
    with uvicorn_app(server, tmp_path, app="app:app", extra=SERVE) as app:
        browser.get(app.url + "/dashboard?id=sales")
        text_becomes(browser, "status", "live", timeout=10)
        assert eventually(lambda: dict(redis_client.pubsub_numsub(CHANNEL))[CHANNEL.encode()] == 1)
        text_becomes(browser, "version-revenue", "0", timeout=2)

        printed = publish(
            server.url, "--dashboard", "sales", "--widget", "revenue", "--value", "4,200"
        )
        assert printed == "dashboard:refresh:sales revenue v1: 4,200\n"
        text_becomes(browser, "version-revenue", "1", timeout=2)
        assert browser.find_element("id", "value-revenue").text == "4,200"

        publish(server.url, "--dashboard", "sales", "--rounds", "2", "--delay", "0")
        for widget in ("revenue", "orders", "churn"):  # every widget, at its latest version
            text_becomes(browser, f"version-{widget}", "3" if widget == "revenue" else "2", 2)
