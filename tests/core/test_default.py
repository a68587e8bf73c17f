"""The process-wide default client: hotconfig.configure() and hotconfig.config."""

from __future__ import annotations

from collections.abc import Iterator
from typing import assert_type

import pytest
from pydantic import BaseModel

import hotconfig
from hotconfig import ConfigStore, HotConfig, Status, default
from hotconfig.testing import override
from hotconfig.testing.server import EmbeddedServer
from tests.recording import Recorder


class Settings(BaseModel):
    limit: int = 10
    feature_x: bool = False


@pytest.fixture(autouse=True)
def unconfigured() -> Iterator[None]:
    """Every test starts and ends without a process-wide client."""
    default.reset()
    yield
    default.reset()


def test_before_configure_every_read_says_what_to_call() -> None:
    assert "not configured" in repr(hotconfig.config)
    for read in (
        lambda: hotconfig.config.get("limit"),
        lambda: hotconfig.config["limit"],
        lambda: "limit" in hotconfig.config,
        lambda: hotconfig.config.settings,
        lambda: hotconfig.config.version,
    ):
        with pytest.raises(hotconfig.NotConfiguredError, match=r"hotconfig\.configure\(url"):
            read()


def test_configure_starts_a_client_that_config_forwards_to(server: EmbeddedServer) -> None:
    client = hotconfig.configure(server.url, model=Settings, scopes=["global", "env:prod"])
    assert client.status is Status.LIVE
    assert repr(client) in repr(hotconfig.config)
    with ConfigStore(server.url) as store:
        version = store.set("limit", 12, scope="env:prod")
    assert hotconfig.config.wait_for_version(version, timeout=5)
    assert (hotconfig.config.get("limit"), hotconfig.config["limit"]) == (12, 12)
    assert hotconfig.config.settings.limit == 12
    assert "limit" in hotconfig.config
    assert hotconfig.config.scopes == ("global", "env:prod")


def test_configure_keeps_the_model_type(server: EmbeddedServer) -> None:
    client = hotconfig.configure(server.url, model=Settings)
    # The settings of the client configure() returns are typed as the model. Until
    # default.configure is generic in the model (it returns HotConfig[Any]), mypy flags this
    # line; warn_unused_ignores then flags the ignore once it is.
    assert_type(client, HotConfig[Settings])
    assert isinstance(client.settings, Settings)
    assert client.settings.limit == 10


def test_configure_again_closes_the_previous_client(server: EmbeddedServer) -> None:
    first = hotconfig.configure(server.url, service="first")
    second = hotconfig.configure(server.url, service="second")
    assert first.status is Status.CLOSED
    assert second.status is Status.LIVE
    assert hotconfig.config.service == "second"


def test_configure_returns_even_when_redis_is_down_serving_defaults() -> None:
    from hotconfig.testing.server import free_port

    client = hotconfig.configure(
        f"redis://127.0.0.1:{free_port()}/0", model=Settings, start_timeout=0.2
    )
    assert client.status is Status.STARTING
    assert hotconfig.config.settings.limit == 10


def test_reset_closes_the_client_and_forgets_it(server: EmbeddedServer) -> None:
    client = hotconfig.configure(server.url)
    default.reset()
    assert client.status is Status.CLOSED
    with pytest.raises(hotconfig.NotConfiguredError):
        hotconfig.config.get("limit")
    default.reset()  # idempotent


def test_override_pins_values_in_the_process_wide_client(server: EmbeddedServer) -> None:
    client = hotconfig.configure(server.url, model=Settings)
    changes = Recorder()
    client.on_change("*")(changes)
    with ConfigStore(server.url) as store:
        version = store.set("limit", 20)
        assert client.wait_for_version(version, timeout=5)
        with override(hotconfig.config, {"limit": 1, "feature_x": True}) as pinned:
            assert pinned is hotconfig.config
            assert (hotconfig.config.settings.limit, hotconfig.config.get("feature_x")) == (1, True)
            version = store.set("limit", 30)  # a live write under the pin does not show
            assert client.wait_for_version(version, timeout=5)
            assert hotconfig.config.settings.limit == 1
        assert hotconfig.config.settings.limit == 30
        assert hotconfig.config.settings.feature_x is False
    assert [(c.key, c.new) for c in changes.calls] == [
        ("limit", 20),
        ("limit", 1),
        ("feature_x", True),
        ("limit", 30),
        ("feature_x", False),
    ]
