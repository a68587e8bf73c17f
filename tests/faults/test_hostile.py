"""Hostile input and hostile receivers: counted, contained, and never a reconnect.

Deeply nested JSON, hand-written stored values that are not one JSON document, a receiver that
raises SystemExit or forks: the listener lives on, nothing is reloaded needlessly, no other value
is disturbed, and every client still equals the store.
"""

from __future__ import annotations

import json
import os
import signal
import tracemalloc
from typing import Any

import pytest
import redis
from pydantic import BaseModel, ConfigDict

from hotconfig import Change, Status, Timings
from tests.faults.harness import NO_POLL, Fleet
from tests.waiting import eventually

pytestmark = pytest.mark.faults

CHANNEL = "config:changes"


def test_deeply_nested_json_is_a_rejection_not_a_reconnect(
    fleet: Fleet, redis_client: redis.Redis
) -> None:
    fleet.store.set("limit", 1)
    clients = [fleet.client(timings=Timings(poll_interval=NO_POLL)) for _ in range(3)]
    before = [(c.stats.resyncs, c.stats.reconnects) for c in clients]
    hostile = [b"[" * 100_000, b'{"key":"a","value":' + b"[" * 1500 + b"]" * 1500 + b"}"] * 5
    with redis_client.pipeline(transaction=False) as pipe:
        for payload in hostile:
            pipe.publish(CHANNEL, payload)
        # A raw change in the same batch is applied, not lost to a reconnect.
        pipe.publish(CHANNEL, json.dumps({"key": "raw.after", "value": "kept"}))
        pipe.execute()
    for config in clients:
        assert eventually(lambda c=config: c.get("raw.after") == "kept", timeout=5)  # type: ignore[misc]
        assert config.stats.rejected == len(hostile)
        assert "too_deep" in (config.stats.last_rejection or "")
        assert config.status is Status.LIVE
    assert [(c.stats.resyncs, c.stats.reconnects) for c in clients] == before
    fleet.store.set("limit", 2)
    fleet.assert_converged(extra={"raw.after": "kept"})


@pytest.mark.parametrize(
    "written",
    [
        {"a": b"1,2", "b": b"[3", "c": b"4]"},  # joined, these would decode as 1, 2, [3, 4]
        {"a": b"not json", "b": b"NaN", "c": b""},
    ],
)
def test_hand_written_stored_values_are_skipped_one_by_one(
    fleet: Fleet, redis_client: redis.Redis, written: dict[str, bytes]
) -> None:
    fleet.store.set_many({"good.one": 1, "good.two": [2, 2]})
    old = fleet.client(timings=Timings(poll_interval=0.5))
    redis_client.hset("{hotconfig}:scope:global", mapping=written)  # type: ignore[arg-type]
    new = fleet.client(timings=Timings(poll_interval=0.5))  # starts at once, no reconnect loop
    for config in (old, new):
        assert eventually(lambda c=config: c.stats.resyncs >= 1 and "a" not in c, timeout=3)  # type: ignore[misc]
        assert (config.get("good.one"), config.get("good.two")) == (1, [2, 2])
        assert not any(key in config for key in written)  # never shifted onto another key
        assert config.status is Status.LIVE
    assert new.stats.reconnects == 0
    assert new.stats.rejected == len(written)  # counted once each, not at every resync
    resyncs = new.stats.resyncs
    assert fleet.store.get_all() == {"good.one": 1, "good.two": [2, 2]}
    fleet.store.set("good.one", 11)
    assert eventually(lambda: new.get("good.one") == 11 and old.get("good.one") == 11)
    assert new.stats.rejected == len(written)
    assert new.stats.resyncs <= resyncs + 1
    for key in written:
        redis_client.hdel("{hotconfig}:scope:global", key)
    fleet.store.set("good.two", 22)
    fleet.assert_converged()


def test_a_receiver_that_raises_system_exit_does_not_kill_the_listener(fleet: Fleet) -> None:
    config = fleet.client(timings=Timings(poll_interval=NO_POLL))
    seen: list[Any] = []

    @config.on_change("exit.*")
    def leave(change: Change) -> None:
        raise SystemExit(3)

    @config.on_change("*")
    def record(change: Change) -> None:
        seen.append(change.new)

    for value in range(3):
        assert config.wait_for_version(fleet.store.set("exit.now", value), timeout=5)
    assert seen == [0, 1, 2]  # the others still ran, each time
    assert config.stats.receiver_errors == 3
    assert config.status is Status.LIVE
    fleet.store.set("after", 1)
    fleet.assert_converged()


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: int = 10


def test_a_stream_of_rejected_values_keeps_memory_bounded(
    fleet: Fleet, redis_client: redis.Redis
) -> None:
    config = fleet.client(model=Strict, timings=Timings(poll_interval=NO_POLL))

    def flood(start: int, count: int) -> int:
        target = config.stats.rejected + count
        with redis_client.pipeline(transaction=False) as pipe:
            for i in range(start, start + count):
                pipe.publish(CHANNEL, json.dumps({"key": f"junk.{i}", "value": "x" * 100}))
            pipe.execute()
        assert eventually(lambda: config.stats.rejected >= target, timeout=30)
        # One write through the store: once it is handled, the flood's batch is done with.
        assert config.wait_for_version(fleet.store.set("limit", start), timeout=10)
        return start + count

    tracemalloc.start()
    try:
        nxt = flood(0, 12_000)  # past every bound: from here on, nothing may grow
        settled = tracemalloc.get_traced_memory()[0]
        flood(nxt, 20_000)
        grown = tracemalloc.get_traced_memory()[0] - settled
    finally:
        tracemalloc.stop()
    assert config.stats.rejected == 32_000
    assert grown < 1024 * 1024, f"{grown / 2**20:.1f} MiB kept for rejected values"
    fleet.store.set("limit", 3)
    fleet.assert_converged()


def test_forking_from_a_receiver_runs_it_once_and_steals_nothing(fleet: Fleet) -> None:
    config = fleet.client(timings=Timings(poll_interval=NO_POLL))
    ran_r, ran_w = os.pipe()
    children: list[int] = []

    @config.on_change("fork.now")
    def spawn(change: Change) -> None:
        pid = os.fork()  # a naive user: the child returns into the listener
        if pid:
            children.append(pid)
        else:
            os.write(ran_w, b"child")

    try:
        assert config.wait_for_version(fleet.store.set("fork.now", 1), timeout=5)
        last = 0
        for value in range(200):
            last = fleet.store.set("busy", value)
        assert config.wait_for_version(last, timeout=10)
        assert config.get("busy") == 199
        assert config.stats.resyncs == 1, "a message was lost to the child"
        assert len(children) == 1
        assert os.read(ran_r, 100) == b"child"  # once: the child did not run it again
        fleet.assert_converged([config])
    finally:
        for pid in children:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(ran_r)
        os.close(ran_w)
