"""on_change receivers: which keys reach them, and how async ones behave while they are busy."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hotconfig import Change, ConfigStore, HotConfig, Status
from hotconfig.testing import override
from tests.recording import Recorder

TIMEOUT = 5.0


@pytest.fixture
def offline() -> Iterator[HotConfig[Any]]:
    # override() applies on the calling thread: no server and no listener needed.
    config: HotConfig[Any] = HotConfig("redis://127.0.0.1:1/0")
    yield config
    config.close()


async def eventually_async(predicate: Callable[[], object], timeout: float = TIMEOUT) -> bool:
    """Poll ``predicate`` without blocking the running loop."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


def test_patterns_are_fnmatch_and_case_sensitive(offline: HotConfig[Any]) -> None:
    ai, everything, exact = Recorder(), Recorder(), Recorder()
    offline.on_change("ai.*")(ai)
    offline.on_change()(everything)
    offline.on_change("limit")(exact)
    with override(offline, {"ai.model.default": "x", "AI.other": 1, "limit": 2, "limits": 3}):
        pass
    assert {c.key for c in ai.calls} == {"ai.model.default"}
    assert {c.key for c in exact.calls} == {"limit"}
    assert {c.key for c in everything.calls} == {"ai.model.default", "AI.other", "limit", "limits"}


def test_a_receiver_added_after_a_key_changed_gets_its_later_changes(
    offline: HotConfig[Any],
) -> None:
    first, late = Recorder(), Recorder()
    offline.on_change("limit")(first)
    with override(offline, {"limit": 1}):
        offline.on_change("lim*")(late)  # the receivers of "limit" were already looked up
        with override(offline, {"limit": 2}):
            pass
    assert [c.new for c in first.calls] == [1, 2, 1, None]
    assert [c.new for c in late.calls] == [2, 1, None]


def test_on_change_returns_the_receiver_so_it_stacks_as_a_decorator(
    offline: HotConfig[Any],
) -> None:
    seen: list[str] = []

    @offline.on_change("a")
    @offline.on_change("b")
    def both(change: Change) -> None:
        seen.append(change.key)

    with override(offline, {"a": 1, "b": 2}):
        assert sorted(seen) == ["a", "b"]
    assert callable(both)


def test_a_removed_receiver_hears_no_later_change(offline: HotConfig[Any]) -> None:
    class Watcher:
        def __init__(self) -> None:
            self.keys: list[str] = []

        def changed(self, change: Change) -> None:
            self.keys.append(change.key)

    watcher, other = Watcher(), Recorder()
    offline.on_change("a")(watcher.changed)
    offline.on_change("b")(watcher.changed)
    offline.on_change("*")(other)
    with override(offline, {"a": 1, "b": 1}):
        pass
    # A bound method is a new object at every access: it is found by equality.
    assert offline.remove_receiver(watcher.changed, "a") is True
    with override(offline, {"a": 2, "b": 2}):
        pass
    assert offline.remove_receiver(watcher.changed) is True
    assert offline.remove_receiver(watcher.changed) is False
    with override(offline, {"a": 3, "b": 3}):
        pass
    assert watcher.keys.count("a") == 2  # set and unset by the first override only
    assert watcher.keys.count("b") == 4  # both overrides that came before the last removal
    assert len(other.calls) == 12


def test_an_async_receiver_runs_on_its_loop_and_coalesces_by_key_while_busy(
    client: HotConfig[Any], store: ConfigStore
) -> None:
    seen: list[Any] = []
    others: list[Any] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        busy, release = asyncio.Event(), asyncio.Event()

        async def slow(change: Change) -> None:
            assert asyncio.get_running_loop() is loop
            seen.append(change.new)
            if len(seen) == 1:
                busy.set()
                await release.wait()

        async def other_key(change: Change) -> None:
            others.append(change.new)

        client.on_change("limit")(slow)
        client.on_change("other")(other_key)
        await asyncio.to_thread(store.set, "limit", 1)
        await asyncio.wait_for(busy.wait(), TIMEOUT)
        # Each write is handled (its receivers called) before the next, so none merge upstream.
        for value in (2, 3, 4, 5):
            version = await asyncio.to_thread(store.set, "limit", value)
            assert await asyncio.to_thread(client.wait_for_version, version, TIMEOUT)
        version = await asyncio.to_thread(store.set, "other", "x")
        assert await asyncio.to_thread(client.wait_for_version, version, TIMEOUT)
        release.set()
        # A runner keeps one pending call per key: once 5 is seen, nothing of "limit" is left.
        assert await eventually_async(lambda: seen[-1] == 5 and others == ["x"])

    asyncio.run(main())
    assert seen == [1, 5]  # the first, then only the latest
    assert others == ["x"]  # another key is not coalesced away
    assert client.stats.coalesced == 3
    assert client.stats.receiver_errors == 0


def test_a_plain_receiver_given_a_loop_is_called_on_that_loop_and_its_failure_counted(
    client: HotConfig[Any], store: ConfigStore
) -> None:
    calls: list[tuple[Any, bool]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()

        def on_loop(change: Change) -> None:
            calls.append((change.new, asyncio.get_running_loop() is loop))
            if change.new == "bad":
                raise RuntimeError("a receiver bug on the loop")

        client.on_change("mode", loop=loop)(on_loop)
        for value in ("bad", "good"):
            version = await asyncio.to_thread(store.set, "mode", value)
            assert await asyncio.to_thread(client.wait_for_version, version, TIMEOUT)
        assert await eventually_async(lambda: [new for new, _ in calls] == ["bad", "good"])

    asyncio.run(main())
    assert all(on_the_loop for _, on_the_loop in calls), calls  # not the listener thread
    assert client.stats.receiver_errors == 1
    assert client.status is Status.LIVE


def test_an_async_receiver_that_raises_is_counted_and_the_next_change_still_arrives(
    client: HotConfig[Any], store: ConfigStore, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[Any] = []

    async def main() -> None:
        async def flaky(change: Change) -> None:
            seen.append(change.new)
            if change.new == "bad":
                raise RuntimeError("async receiver bug")

        client.on_change("mode")(flaky)
        for value in ("bad", "good"):
            version = await asyncio.to_thread(store.set, "mode", value)
            assert await asyncio.to_thread(client.wait_for_version, version, TIMEOUT)
        assert await eventually_async(lambda: seen == ["bad", "good"])

    asyncio.run(main())
    assert client.stats.receiver_errors == 1
    assert "async receiver bug" in caplog.text
    assert client.status is Status.LIVE


def test_an_async_receiver_whose_loop_is_closed_is_counted_not_lost_silently(
    offline: HotConfig[Any], caplog: pytest.LogCaptureFixture
) -> None:
    loop = asyncio.new_event_loop()

    async def receiver(change: Change) -> None: ...

    offline.on_change("limit", loop=loop)(receiver)
    loop.close()
    with override(offline, {"limit": 1}):
        pass
    assert offline.stats.receiver_errors == 2  # the pin and the restore
    assert "event loop is closed" in caplog.text


def test_an_async_receiver_registered_outside_a_loop_is_refused_with_a_hint(
    offline: HotConfig[Any],
) -> None:
    async def receiver(change: Change) -> None: ...

    with pytest.raises(TypeError, match=r"loop=\.\.\."):
        offline.on_change("*")(receiver)
    with override(offline, {"limit": 1}):
        pass
    assert offline.stats.receiver_errors == 0
