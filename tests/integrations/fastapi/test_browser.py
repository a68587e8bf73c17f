"""The example app's page in a real headless Chromium: a change shows up live.

Debian's ``chromium`` and ``chromium-driver`` packages, driven by Selenium; nothing is
downloaded (the driver's path is given, and Selenium Manager is told to stay offline).
Without them the test is skipped, except on CI, where it must run.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from hotconfig import ConfigStore
from hotconfig.testing import EmbeddedServer
from tests.integrations.fastapi.servers import EXAMPLE_DIR, uvicorn_app

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[webdriver.Chrome]:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        reason = f"{', '.join(missing)} missing: apt-get install chromium chromium-driver"
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail(f"CI must run the browser test: {reason}", pytrace=False)
        pytest.skip(reason)
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must never fetch a browser
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def text_becomes(driver: webdriver.Chrome, element_id: str, text: str, timeout: float) -> float:
    """Seconds until the element shows ``text``; fails after ``timeout``."""
    started = time.monotonic()
    while True:
        shown = driver.find_element(By.ID, element_id).text
        elapsed = time.monotonic() - started
        if shown == text:
            return elapsed
        assert elapsed < timeout, f"#{element_id} shows {shown!r}, not {text!r}"
        time.sleep(0.01)


def test_the_example_page_shows_a_change_live_within_a_second(
    server: EmbeddedServer, tmp_path: Path, browser: webdriver.Chrome
) -> None:
    extra = ["--app-dir", str(EXAMPLE_DIR)]
    with (
        ConfigStore(server.url) as store,
        uvicorn_app(server, tmp_path, app="app:app", extra=extra) as app,
    ):
        browser.get(app.url + "/")
        text_becomes(browser, "banner", "Welcome", timeout=10)  # the model default, streamed

        store.set("ui.banner", "Hello from the store")
        assert text_becomes(browser, "banner", "Hello from the store", timeout=1.0) < 1.0

        # The seed's raw format, from any publisher, shows just the same.
        message = {"key": "ui.banner", "value": "Raw publish", "scope": "global"}
        with server.client() as client:
            client.publish("config:changes", json.dumps(message))
        assert text_becomes(browser, "banner", "Raw publish", timeout=1.0) < 1.0
