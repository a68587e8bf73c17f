"""docs/examples/flask_app/shop.py works as its docstring says, on a real server."""

from __future__ import annotations

import importlib.util
import logging
import sys
from collections.abc import Iterator
from types import ModuleType

import pytest
from flask import Flask

from hotconfig import ConfigStore
from hotconfig.testing import EmbeddedServer
from tests.integrations.flask.serving import ROOT

EXAMPLE = ROOT / "docs" / "examples" / "flask_app" / "shop.py"


@pytest.fixture
def shop(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The example module, imported from its file as `flask --app .../shop.py` does."""
    spec = importlib.util.spec_from_file_location("shop", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "shop", module)  # pydantic resolves annotations there
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def app(shop: ModuleType, server: EmbeddedServer) -> Iterator[Flask]:
    made: Flask = shop.create_app({"HOTCONFIG_URL": server.url})
    yield made
    made.extensions["hotconfig"].close()


def test_the_example_serves_live_settings_and_a_live_app_config_key(
    app: Flask, store: ConfigStore, caplog: pytest.LogCaptureFixture
) -> None:
    client = app.extensions["hotconfig"]
    web = app.test_client()
    assert (web.get("/").json or {})["banner"] == "Welcome to the shop"

    version = store.set("banner.text", "Sale today", scope="service:shop")
    assert client.wait_for_version(version, timeout=5)
    assert (web.get("/").json or {})["banner"] == "Sale today"

    version = store.set("maintenance", True)
    assert client.wait_for_version(version, timeout=5)
    assert web.get("/").status_code == 503

    with caplog.at_level(logging.WARNING, logger=app.logger.name):
        version = store.set_many({"maintenance": False, "rate_limit": 5})
        assert client.wait_for_version(version, timeout=5)
    assert web.get("/").status_code == 200
    assert "rate limit is now 5 (was 100)" in caplog.text
