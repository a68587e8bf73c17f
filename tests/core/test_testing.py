"""Shipped test helpers: override() without Redis, and the hotconfig_server fixture."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

import hotconfig
from hotconfig import ConfigStore, HotConfig
from hotconfig.testing import override
from hotconfig.testing.server import EmbeddedServer
from tests.recording import Recorder
from tests.waiting import eventually


class Settings(BaseModel):
    feature_x: bool = False
    limit: int = 10


def offline_client() -> HotConfig[Settings]:
    # Never started: override() must work without any server.
    return HotConfig("redis://127.0.0.1:1/0", model=Settings)


def test_override_pins_values_and_restores_them() -> None:
    config = offline_client()
    seen = Recorder()
    config.on_change("*")(seen)
    with override(config, {"feature_x": True, "untyped.key": [1]}):
        assert config.settings.feature_x is True
        assert config.get("untyped.key") == [1]
        with override(config, {"feature_x": False, "limit": 3}):
            assert (config.settings.feature_x, config.settings.limit) == (False, 3)
        assert (config.settings.feature_x, config.settings.limit) == (True, 10)
    assert config.settings.feature_x is False
    assert "untyped.key" not in config
    assert [(c.key, c.new) for c in seen.calls][:2] == [("feature_x", True), ("untyped.key", [1])]


def test_override_validates_through_the_model() -> None:
    config = offline_client()
    with (
        pytest.raises(hotconfig.InvalidValueError, match="limit"),
        override(config, {"limit": "many"}),
    ):
        pass
    assert config.settings.limit == 10


def test_override_wins_over_live_values(hotconfig_server: EmbeddedServer) -> None:
    store = hotconfig.ConfigStore(hotconfig_server.url)
    with HotConfig(hotconfig_server.url, model=Settings) as config:
        store.set("limit", 50)
        assert eventually(lambda: config.settings.limit == 50)
        with override(config, {"limit": 1}):
            version = store.set("limit", 60)
            assert config.wait_for_version(version, timeout=5)
            assert config.settings.limit == 1
        assert config.settings.limit == 60
    store.close()


def test_default_process_wide_client(hotconfig_server: EmbeddedServer) -> None:
    from hotconfig import default

    with pytest.raises(hotconfig.NotConfiguredError, match="configure"):
        hotconfig.config.get("x")
    client: Any = hotconfig.configure(hotconfig_server.url, model=Settings)
    try:
        assert hotconfig.config.get("limit") == 10
        assert hotconfig.config.settings.limit == 10
        assert hotconfig.config.status is hotconfig.Status.LIVE
        hotconfig.ConfigStore(hotconfig_server.url).set("limit", 12)
        assert eventually(lambda: hotconfig.config["limit"] == 12)
        assert "limit" in hotconfig.config
    finally:
        default.reset()
    assert client.status is hotconfig.Status.CLOSED


def test_pins_survive_a_resync(server: EmbeddedServer) -> None:
    with ConfigStore(server.url) as store, HotConfig(server.url) as config:
        store.set("feature", False)
        with override(config, {"feature": True}):
            with server.client() as admin:
                admin.client_kill_filter(_type="pubsub")  # reconnect, and resync from the store
            assert eventually(lambda: config.stats.resyncs >= 2, timeout=10)
            assert config.get("feature") is True
        assert config.get("feature") is False
