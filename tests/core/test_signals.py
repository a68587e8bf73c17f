"""The module-level signals: sync receivers on the applying thread, async ones on their loop."""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

import pytest

from hotconfig import Change, ConfigStore, HotConfig, Status, signals
from hotconfig.testing import override
from hotconfig.testing.server import EmbeddedServer
from tests.recording import Recorder

TIMEOUT = 5.0


def offline_client() -> HotConfig[Any]:
    # override() applies on the calling thread: no server and no listener needed.
    return HotConfig("redis://127.0.0.1:1/0")


def test_a_sync_receiver_runs_on_the_listener_thread_with_the_key_as_sender(
    client: HotConfig[Any], store: ConfigStore
) -> None:
    threads: list[str] = []
    changes = Recorder()

    def on_limit(key: str, change: Change) -> None:
        threads.append(threading.current_thread().name)
        changes(key, change=change)

    signals.config_changed.connect(on_limit, sender="limit")
    try:
        store.set("other", 1)
        version = store.set("limit", 4)
        assert client.wait_for_version(version, timeout=TIMEOUT)
    finally:
        signals.config_changed.disconnect(on_limit, sender="limit")
    assert [(c.key, c.new, c.version) for c in changes.calls] == [("limit", 4, version)]
    assert threads == [f"hotconfig-listener-{os.getpid()}"]


def test_an_async_receiver_runs_on_the_loop_it_was_connected_from(
    client: HotConfig[Any], store: ConfigStore
) -> None:
    seen: list[tuple[str, Any, bool, int]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        arrived = asyncio.Event()

        async def on_limit(key: str, change: Change) -> None:
            running = asyncio.get_running_loop()
            seen.append((key, change.new, running is loop, threading.get_ident()))
            arrived.set()

        signals.config_changed.connect(on_limit, sender="limit")
        try:
            await asyncio.to_thread(store.set, "limit", 7)
            await asyncio.wait_for(arrived.wait(), TIMEOUT)
        finally:
            signals.config_changed.disconnect(on_limit, sender="limit")

    asyncio.run(main())
    assert seen == [("limit", 7, True, threading.get_ident())]
    assert client.stats.receiver_errors == 0


def test_an_async_receiver_connected_outside_a_loop_is_refused_and_stays_disconnected(
    client: HotConfig[Any], store: ConfigStore
) -> None:
    called: list[Change] = []

    async def on_limit(key: str, change: Change) -> None:
        called.append(change)

    with pytest.raises(TypeError, match="running loop"):
        signals.config_changed.connect(on_limit, sender="limit")
    assert not any(r is on_limit for r in signals.config_changed.receivers_for("limit"))
    # A change of that key afterwards calls nothing, warns nothing, counts nothing.
    after = Recorder()
    client.on_change("limit")(after)
    store.set("limit", 8)
    after.wait_for(lambda change: change.new == 8)
    assert called == []
    assert client.stats.receiver_errors == 0


def test_an_async_receiver_that_raises_is_counted_by_the_client_that_sent(
    client: HotConfig[Any], store: ConfigStore, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        failed = asyncio.Event()

        async def broken(key: str, change: Change) -> None:
            failed.set()
            raise RuntimeError("async signal receiver bug")

        signals.config_changed.connect(broken, sender="limit")
        try:
            await asyncio.to_thread(store.set, "limit", 9)
            await asyncio.wait_for(failed.wait(), TIMEOUT)
            for _ in range(100):  # the count lands once the drain has caught the error
                if client.stats.receiver_errors:
                    break
                await asyncio.sleep(0.01)
        finally:
            signals.config_changed.disconnect(broken, sender="limit")

    asyncio.run(main())
    assert client.stats.receiver_errors == 1
    assert "async signal receiver bug" in caplog.text
    assert client.status is Status.LIVE


def test_one_raising_sync_receiver_does_not_silence_the_others() -> None:
    config = offline_client()
    later = Recorder()

    def broken(key: str, change: Change) -> None:
        raise RuntimeError("sync signal receiver bug")

    signals.config_changed.connect(broken, sender="feature")
    signals.config_changed.connect(later, sender="feature")
    try:
        with override(config, {"feature": True}):
            assert [c.new for c in later.calls] == [True]
    finally:
        signals.config_changed.disconnect(broken, sender="feature")
        signals.config_changed.disconnect(later, sender="feature")
        config.close()
    # Pinning and restoring were two changes: each reached the later receiver, each failure counted.
    assert [c.new for c in later.calls] == [True, None]
    assert config.stats.receiver_errors == 2


@pytest.mark.parametrize("leaves", ["another sender", "another signal"])
def test_an_async_receiver_disconnected_elsewhere_still_runs_where_it_is_connected(
    leaves: str,
) -> None:
    config = offline_client()
    seen: list[tuple[str, Any]] = []

    async def main() -> None:
        arrived = asyncio.Event()

        async def on_change(key: str, change: Change) -> None:
            seen.append((key, change.new))
            arrived.set()

        signals.config_changed.connect(on_change, sender="b")
        if leaves == "another sender":
            signals.config_changed.connect(on_change, sender="a")
            signals.config_changed.disconnect(on_change, sender="a")
        else:
            signals.status_changed.connect(on_change)
            signals.status_changed.disconnect(on_change)
        try:
            with override(config, {"b": 1}):
                await asyncio.wait_for(arrived.wait(), 1.0)
        finally:
            signals.config_changed.disconnect(on_change)

    try:
        asyncio.run(main())
    finally:
        config.close()
    assert seen == [("b", 1)]


def test_status_moves_and_rejections_name_the_client_as_sender(server: EmbeddedServer) -> None:
    moves, rejected = Recorder(), Recorder()
    config: HotConfig[Any] = HotConfig(server.url)
    signals.status_changed.connect(moves, sender=config)
    signals.config_rejected.connect(rejected, sender=config)
    try:
        assert config.start(timeout=TIMEOUT)
        with server.client() as publisher:
            publisher.publish(config.channel, b"{not json")
        call = rejected.wait_for(lambda call: True)
        assert (call["reason"], call["key"]) == ("invalid_json", None)
    finally:
        config.close()
        signals.status_changed.disconnect(moves, sender=config)
        signals.config_rejected.disconnect(rejected, sender=config)
    assert [(m["old"], m["new"]) for m in moves.calls] == [
        (Status.STARTING, Status.LIVE),
        (Status.LIVE, Status.CLOSED),
    ]
