"""``config_updated`` is sent in every process, the writer's and every other one."""

from __future__ import annotations

from typing import Any

import pytest

from hotconfig import Change, ConfigStore
from hotconfig.testing import EmbeddedServer
from hotconfig_django import LazyConfig
from hotconfig_django.signals import config_updated
from tests.integrations.django.processes import follower


def test_every_process_receives_config_updated_with_constance_compatible_arguments(
    live: LazyConfig, server: EmbeddedServer
) -> None:
    received: list[dict[str, Any]] = []

    def here(sender: object, **kwargs: Any) -> None:
        received.append({"sender": sender, **kwargs})

    config_updated.connect(here)
    try:
        with follower(server.url) as other, ConfigStore(server.url) as store:
            assert other.read()["ready"] is True
            version = store.set("greeting", "bonjour")
            there = other.read(timeout=5)
            assert live.wait_for_version(version, timeout=5)
    finally:
        config_updated.disconnect(here)
    assert there == {
        "signal": "hotconfig",
        "key": "greeting",
        "old": "hello",  # the model default counts as the old value
        "new": "bonjour",
        "version": version,
        "sender_is_config": True,
        "thread": there["thread"],
    }
    assert there["thread"].startswith("hotconfig-listener-")
    [mine] = received
    assert mine["sender"] is live
    assert (mine["key"], mine["old_value"], mine["new_value"]) == ("greeting", "hello", "bonjour")
    assert isinstance(mine["change"], Change)
    assert mine["change"].version == version


def test_a_receiver_that_raises_does_not_stop_the_others_and_is_counted(
    live: LazyConfig, server: EmbeddedServer, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []

    def broken(sender: object, key: str, **kwargs: Any) -> None:
        raise RuntimeError("boom")

    def working(sender: object, key: str, **kwargs: Any) -> None:
        seen.append(key)

    config_updated.connect(broken)
    config_updated.connect(working)
    try:
        with ConfigStore(server.url) as store:
            assert live.wait_for_version(store.set("greeting", "hi"), timeout=5)
    finally:
        config_updated.disconnect(broken)
        config_updated.disconnect(working)
    assert seen == ["greeting"]
    assert live.stats.receiver_errors == 1
    assert any("boom" in (r.exc_text or "") for r in caplog.records)


def test_django_setup_tells_no_receiver_of_the_values_it_loads(
    live: LazyConfig, server: EmbeddedServer
) -> None:
    # A stored greeting that differs from the model's default: loaded at start, it is the
    # process's baseline, not a change (it used to arrive as 'hello' -> 'bonjour' at setup).
    with ConfigStore(server.url) as store:
        store.set("greeting", "bonjour")
        with follower(server.url) as other:
            first = other.read(timeout=10)  # a signal sent during setup would come first
            assert first["ready"] is True
            version = store.set("greeting", "ciao")
            there = other.read(timeout=5)
            assert (there["key"], there["old"], there["new"]) == ("greeting", "bonjour", "ciao")
            assert there["version"] == version
