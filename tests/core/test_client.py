"""HotConfig end to end against real Valkey and Redis servers."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
import redis
from pydantic import BaseModel, ConfigDict

import hotconfig
from hotconfig import Change, ConfigStore, HotConfig, Status, signals
from hotconfig.testing.server import EmbeddedServer
from tests.recording import Recorder
from tests.waiting import eventually, open_sockets

CHANNEL = "config:changes"
SEED = '{"key": "ai.model.default", "value": "gpt-4o", "scope": "global"}'


class Model(BaseModel):
    default: str = "gpt-3.5"
    temperature: float = 0.2


class AI(BaseModel):
    model: Model = Model()


class Settings(BaseModel):
    ai: AI = AI()
    feature_x: bool = False
    limit: int = 10


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")
    feature_x: bool = False


@pytest.fixture
def client(server: EmbeddedServer) -> Any:
    config = HotConfig(server.url, model=Settings, scopes=["global", "service:billing"])
    assert config.start(timeout=5)
    yield config
    config.close()


def publish(r: redis.Redis, payload: str | bytes) -> None:
    r.publish("config:changes", payload)


def marker(r: redis.Redis, config: HotConfig[Any], n: int) -> None:
    """Publish a change and wait for it: every message published before it has been handled."""
    publish(r, f'{{"key": "marker", "value": {n}}}')
    assert eventually(lambda: config.get("marker") == n)


def test_seed_publish_from_another_process_reaches_get_settings_and_receivers(
    server: EmbeddedServer,
) -> None:
    config = HotConfig(server.url, model=Settings)
    changes = Recorder()
    config.on_change("ai.*")(changes)
    try:
        assert config.start(timeout=5)
        assert config.status is Status.LIVE
        assert config.get("ai.model.default") == "gpt-3.5"
        code = f"import redis; redis.Redis.from_url({server.url!r}).publish({CHANNEL!r}, {SEED!r})"
        subprocess.run([sys.executable, "-c", code], check=True, timeout=30)
        change = changes.wait_for(lambda c: c.key == "ai.model.default")
        assert change == Change("ai.model.default", "gpt-3.5", "gpt-4o", "global", 0, "set")
        assert config.get("ai.model.default") == "gpt-4o"
        assert config["ai.model.default"] == "gpt-4o"
        assert config.settings.ai.model.default == "gpt-4o"
        assert config.snapshot()["ai.model.default"] == "gpt-4o"
    finally:
        config.close()


def test_scope_precedence_and_delete_reveals_the_lower_scope(
    client: HotConfig[Settings], redis_client: redis.Redis
) -> None:
    changes = Recorder()
    client.on_change("limit")(changes)
    publish(redis_client, '{"key": "limit", "value": 20, "scope": "global"}')
    changes.wait_for(lambda c: c.new == 20)
    publish(redis_client, '{"key": "limit", "value": 30, "scope": "service:billing"}')
    change = changes.wait_for(lambda c: c.new == 30)
    assert (change.old, change.scope, change.op) == (20, "service:billing", "set")
    # A lower scope changing under a higher one changes nothing a reader sees: no signal.
    publish(redis_client, '{"key": "limit", "value": 25, "scope": "global"}')
    # A scope the client does not follow is ignored.
    publish(redis_client, '{"key": "limit", "value": 99, "scope": "service:other"}')
    marker(redis_client, client, 1)
    assert client.get("limit") == 30
    assert [c.new for c in changes.calls] == [20, 30]
    publish(redis_client, '{"key": "limit", "op": "delete", "scope": "service:billing"}')
    change = changes.wait_for(lambda c: c.op == "delete")
    assert (change.old, change.new, change.scope) == (30, 25, "service:billing")
    assert client.settings.limit == 25
    publish(redis_client, '{"key": "limit", "op": "delete", "scope": "global"}')
    change = changes.wait_for(lambda c: c.new == 10)
    assert (change.old, change.op) == (25, "delete")
    assert client.get("limit") == 10  # the model default shows through


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "invalid_json"),
        (b"[1, 2, 3]", "not_object"),
        (b'{"key": "ai.model.default", "value": "' + b"x" * (1024 * 1024) + b'"}', "oversize"),
        (b'{"key": "bad key", "value": 1}', "bad_key"),
        (b'{"key": "limit", "value": "\xff"}', "not_utf8"),
        (b'{"key": "limit", "value": "not a number"}', "invalid_value"),
    ],
)
def test_bad_messages_are_rejected_counted_and_the_old_value_stays(
    client: HotConfig[Settings], redis_client: redis.Redis, payload: bytes, reason: str
) -> None:
    rejected = Recorder()
    signals.config_rejected.connect(rejected, sender=client)
    try:
        publish(redis_client, '{"key": "limit", "value": 42}')
        assert eventually(lambda: client.get("limit") == 42)
        publish(redis_client, payload)
        marker(redis_client, client, 1)
        assert client.stats.rejected == 1
        assert client.stats.last_rejection is not None
        assert client.stats.last_rejection.startswith(reason)
        # Signals are sent after the swap that made the marker readable, so a moment later.
        assert eventually(lambda: rejected.calls)
        assert isinstance(rejected.calls[0], dict)
        assert client.get("limit") == 42
        assert client.settings.limit == 42
        publish(redis_client, '{"key": "limit", "value": 43}')
        assert eventually(lambda: client.settings.limit == 43)
        assert client.status is Status.LIVE
    finally:
        signals.config_rejected.disconnect(rejected, sender=client)


def test_a_rejected_value_fires_config_rejected_with_its_key(
    client: HotConfig[Settings], redis_client: redis.Redis
) -> None:
    rejected = Recorder()
    signals.config_rejected.connect(rejected, sender=client)
    try:
        publish(redis_client, '{"key": "feature_x", "value": "maybe"}')
        call = rejected.wait_for(lambda call: True)
        assert call["reason"] is hotconfig.RejectReason.INVALID_VALUE
        assert json.dumps(call["reason"]) == '"invalid_value"'  # reports and metrics unchanged
        assert call["key"] == "feature_x"
        assert isinstance(call["error"], hotconfig.InvalidValueError)
        assert client.settings.feature_x is False
    finally:
        signals.config_rejected.disconnect(rejected, sender=client)


def test_a_rejected_stored_change_is_signalled_with_its_version(
    client: HotConfig[Settings], server: EmbeddedServer
) -> None:
    rejected = Recorder()
    signals.config_rejected.connect(rejected, sender=client)
    try:
        with ConfigStore(server.url) as store:
            version = store.set("feature_x", "maybe")
        call = rejected.wait_for(lambda call: call["key"] == "feature_x")
        assert call["version"] == version
        assert isinstance(call["error"], hotconfig.InvalidValueError)
        assert call["error"].version == version
        assert client.settings.feature_x is False
    finally:
        signals.config_rejected.disconnect(rejected, sender=client)


def test_a_batch_with_one_bad_value_applies_nothing(
    client: HotConfig[Settings], redis_client: redis.Redis
) -> None:
    batch = '{"changes": [{"key": "limit", "value": 5}, {"key": "feature_x", "value": "bad"}]}'
    publish(redis_client, batch)
    marker(redis_client, client, 1)
    assert client.get("limit") == 10
    assert client.settings.feature_x is False
    assert client.stats.rejected == 1


def test_keys_outside_the_model_are_untyped_unless_the_model_forbids_them(
    server: EmbeddedServer, client: HotConfig[Settings], redis_client: redis.Redis
) -> None:
    publish(redis_client, '{"key": "extra.thing", "value": {"a": [1]}}')
    assert eventually(lambda: client.get("extra.thing") == {"a": [1]})
    with HotConfig(server.url, model=Strict) as strict:
        publish(redis_client, '{"key": "extra.other", "value": 1}')
        publish(redis_client, '{"key": "feature_x", "value": true}')
        assert eventually(lambda: strict.settings.feature_x is True)
        assert "extra.other" not in strict
        assert strict.stats.rejected == 1


def test_a_raising_receiver_is_logged_and_the_others_still_run(
    client: HotConfig[Settings], redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(change: Change) -> None:
        raise RuntimeError("receiver bug")

    after = Recorder()
    module_level = Recorder()
    client.on_change("*")(broken)
    client.on_change("limit")(after)
    signals.config_changed.connect(module_level, sender="limit")
    try:
        with caplog.at_level(logging.ERROR, logger="hotconfig"):
            publish(redis_client, '{"key": "limit", "value": 1}')
            after.wait_for(lambda c: c.new == 1)
            module_level.wait_for(lambda c: c.new == 1)
        assert "receiver bug" in caplog.text
        publish(redis_client, '{"key": "limit", "value": 2}')
        after.wait_for(lambda c: c.new == 2)
        assert client.stats.receiver_errors == 2
        assert client.status is Status.LIVE
    finally:
        signals.config_changed.disconnect(module_level, sender="limit")


def test_readers_never_see_half_a_batch(server: EmbeddedServer) -> None:
    class Pair(BaseModel):
        a: int = 0
        b: int = 0

    store = ConfigStore(server.url)
    config = HotConfig(server.url, model=Pair)
    mixed: list[tuple[int, int]] = []
    reads = 0
    stop = threading.Event()

    def reader() -> None:
        nonlocal reads
        while not stop.is_set():
            settings = config.settings
            if settings.a != settings.b:
                mixed.append((settings.a, settings.b))
            view = config.snapshot()
            if view["a"] != view["b"]:
                mixed.append((view["a"], view["b"]))
            reads += 1

    try:
        assert config.start(timeout=5)
        thread = threading.Thread(target=reader)
        thread.start()
        for i in range(1, 301):
            version = store.set_many({"a": i, "b": i})
        assert config.wait_for_version(version, timeout=10)
        stop.set()
        thread.join()
        assert mixed == []
        assert reads > 0
        assert (config.settings.a, config.settings.b) == (300, 300)
    finally:
        stop.set()
        config.close()
        store.close()


def test_close_with_the_server_killed_is_prompt_and_leaks_nothing(server: EmbeddedServer) -> None:
    threads_before = set(threading.enumerate())
    sockets_before = open_sockets()
    config = HotConfig(server.url, model=Settings)
    assert config.start(timeout=5)
    server.kill()
    assert eventually(lambda: config.status is Status.INTERRUPTED)
    started = time.monotonic()
    config.close()
    assert time.monotonic() - started < 2.0
    assert config.status is Status.CLOSED
    assert set(threading.enumerate()) == threads_before
    assert open_sockets() == sockets_before
    config.close()  # idempotent


def test_start_without_a_server_returns_on_time_serving_defaults() -> None:
    from hotconfig.testing.server import free_port

    config = HotConfig(f"redis://127.0.0.1:{free_port()}/0", model=Settings)
    try:
        assert config.start(timeout=0.3) is False
        assert config.status is Status.STARTING
        assert config.get("limit") == 10
        assert config.settings.ai.model.default == "gpt-3.5"
        assert eventually(lambda: config.stats.last_error is not None)
    finally:
        config.close()


def test_missing_keys_get_default_or_raise_a_key_error(client: HotConfig[Settings]) -> None:
    assert client.get("nope") is None
    assert client.get("nope", 7) == 7
    assert "nope" not in client
    assert "limit" in client
    with pytest.raises(KeyError, match="not set"):
        client["nope"]


def test_settings_object_is_stable_until_the_next_change(
    client: HotConfig[Settings], redis_client: redis.Redis
) -> None:
    first = client.settings
    assert client.settings is first
    publish(redis_client, '{"key": "limit", "value": 11}')
    assert eventually(lambda: client.settings is not first)
    assert first.limit == 10  # a reference taken earlier keeps its consistent view
    assert client.settings.limit == 11


def test_status_changes_are_signalled(server: EmbeddedServer) -> None:
    moves = Recorder()
    config = HotConfig(server.url)
    signals.status_changed.connect(moves, sender=config)
    try:
        assert config.start(timeout=5)
    finally:
        config.close()
        signals.status_changed.disconnect(moves, sender=config)
    assert moves.calls == [
        {"old": Status.STARTING, "new": Status.LIVE},
        {"old": Status.LIVE, "new": Status.CLOSED},
    ]


def test_a_closed_client_cannot_start_again(server: EmbeddedServer) -> None:
    config = HotConfig(server.url)
    config.close()
    with pytest.raises(hotconfig.ClientClosedError):
        config.start()


def test_stats_is_read_only_and_names_its_counters(client: HotConfig[Settings]) -> None:
    stats = client.stats
    assert "received=" in repr(stats)
    assert "resyncs=1" in repr(stats)
    with pytest.raises(AttributeError):
        stats.received = 5  # type: ignore[misc]


def test_a_model_without_defaults_is_refused_with_a_hint() -> None:
    class NoDefaults(BaseModel):
        required: int

    with pytest.raises(TypeError, match="default"):
        HotConfig("redis://127.0.0.1:1/0", model=NoDefaults)


def test_close_is_prompt_while_a_receiver_is_slow(server: EmbeddedServer) -> None:
    config = HotConfig(server.url)
    entered = threading.Event()

    @config.on_change("slow")
    def slow(change: Change) -> None:
        entered.set()
        time.sleep(5)

    try:
        assert config.start(timeout=5)
        ConfigStore(server.url).set("slow", 1)
        assert entered.wait(5)
        started = time.monotonic()
        config.close()
        assert time.monotonic() - started < 2.5
        assert config.status is Status.CLOSED
    finally:
        config.close()


def test_async_receivers_run_on_their_loop_and_their_errors_are_counted(
    client: HotConfig[Settings], redis_client: redis.Redis
) -> None:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever)
    thread.start()
    seen: list[tuple[Any, bool]] = []

    async def record(change: Change) -> None:
        seen.append((change.new, asyncio.get_running_loop() is loop))

    async def broken(change: Change) -> None:
        raise RuntimeError("async receiver bug")

    try:
        client.on_change("limit", loop=loop)(record)
        client.on_change("limit", loop=loop)(broken)
        publish(redis_client, '{"key": "limit", "value": 77}')
        assert eventually(lambda: seen == [(77, True)])
        assert eventually(lambda: client.stats.receiver_errors == 1)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


def test_an_async_receiver_without_a_loop_is_refused_with_a_hint(
    client: HotConfig[Settings],
) -> None:
    async def receiver(change: Change) -> None: ...

    with pytest.raises(TypeError, match="loop"):
        client.on_change("*")(receiver)


def test_an_unusable_cache_file_is_ignored(tmp_path: Any) -> None:
    path = tmp_path / "lkg.json"
    path.write_text('{"format": 1, "epoch": null, "version": 3, "layers": {"global": [1]}}')
    config = HotConfig("redis://127.0.0.1:1/0", model=Settings, cache_path=path)
    assert config.get("limit") == 10
    config.close()


def test_wait_for_version_async_answers_without_blocking_the_loop(
    client: HotConfig[Settings], server: EmbeddedServer
) -> None:
    store = ConfigStore(server.url)

    async def main() -> None:
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        ticking = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        current = client.version
        assert await client.wait_for_version_async(current, timeout=1) is True
        before = ticks
        assert await client.wait_for_version_async(current + 1, timeout=0.3) is False
        assert ticks > before  # the loop kept running while it waited
        waiting = asyncio.create_task(client.wait_for_version_async(current + 1, timeout=10))
        version = await asyncio.to_thread(store.set, "limit", 12)
        assert version == current + 1
        assert await waiting is True
        assert client.settings.limit == 12
        stop.set()
        await ticking

    try:
        asyncio.run(main())
    finally:
        store.close()


def test_lag_is_what_the_poll_saw_of_the_store_and_none_when_unknown(
    server: EmbeddedServer, store: ConfigStore
) -> None:
    first = store.set("loud", 1)
    config: HotConfig[Any] = HotConfig(
        server.url, timings=hotconfig.Timings(poll_interval=0.5), health=False
    )
    assert (config.status, config.lag) == (Status.STARTING, None)  # the store was never read
    with config:
        assert (config.version, config.lag) == (first, 0)
        # Written where the client does not listen: only the anti-entropy poll can see it.
        with ConfigStore(server.url, channel="elsewhere:changes") as unheard:
            version = unheard.set("quiet", 1)
        assert eventually(lambda: config.lag == 1), config.lag  # seen, not yet repaired
        # The next poll finds the client still behind and resyncs it.
        assert eventually(lambda: config.version == version and config.lag == 0)
    assert config.lag is None  # closed


def test_start_is_not_a_change_the_stored_state_loaded_at_start_runs_no_receiver(
    server: EmbeddedServer,
) -> None:
    with ConfigStore(server.url) as store:
        store.set_many({"limit": 250, "greeting": "Moin"})
        config = HotConfig(server.url, model=Settings)
        on_change, changed = Recorder(), Recorder()
        config.on_change("*")(on_change)
        signals.config_changed.connect(changed, weak=False)
        try:
            assert config.start(timeout=5)
            assert (config.get("limit"), config.get("greeting")) == (250, "Moin")
            version = store.set("limit", 300)
            assert config.wait_for_version(version, timeout=5)
            # The one change after start() returned, not the baseline loaded before it.
            assert [(c.key, c.old, c.new) for c in on_change.calls] == [("limit", 250, 300)]
            assert [c.key for c in changed.calls if c.version >= version] == ["limit"]
            assert [c for c in changed.calls if c.version < version] == []
        finally:
            signals.config_changed.disconnect(changed)
            config.close()


def test_a_client_that_served_defaults_hears_of_exactly_the_values_that_differ(
    server: EmbeddedServer,
) -> None:
    with ConfigStore(server.url) as store:
        store.set_many({"limit": 250, "feature_x": False})  # feature_x is its default already
        config = HotConfig(server.url, model=Settings)
        on_change = Recorder()
        config.on_change("*")(on_change)
        server.pause()  # start() gives up: the process serves its defaults meanwhile
        try:
            assert config.start(timeout=0.3) is False
            assert config.get("limit") == 10
        finally:
            server.resume()
        try:
            on_change.wait_for(lambda c: c.key == "limit", timeout=10)
            assert [(c.key, c.old, c.new) for c in on_change.calls] == [("limit", 10, 250)]
        finally:
            config.close()


def test_a_lone_surrogate_published_by_anyone_is_refused_and_the_old_value_stays(
    client: HotConfig[Settings], redis_client: redis.Redis
) -> None:
    publish(redis_client, '{"key": "greeting", "value": "ok"}')
    assert eventually(lambda: client.get("greeting") == "ok")
    publish(redis_client, r'{"key": "greeting", "value": "a\ud800b"}')
    assert eventually(lambda: client.stats.rejected == 1)
    assert str(client.stats.last_rejection).startswith("not_utf8")
    assert client.get("greeting") == "ok"  # never a str the app cannot encode
