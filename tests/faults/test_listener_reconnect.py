"""Subscribers that start mid-stream or lose their connection while the store keeps writing.

Redis Pub/Sub drops whatever is published while a subscriber is away, and redis-py reconnects
without a word (DESIGN §1). hotconfig subscribes *before* it loads a snapshot and resyncs after
every reconnect; these tests hold it to that under concurrent writes, with real servers
dropping real connections (``CLIENT KILL TYPE pubsub``).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis

from hotconfig import ConfigStore, Entry, HotConfig, Status, Timings
from tests.faults.harness import NO_POLL, Fleet, kill_pubsub, pubsub_clients
from tests.waiting import eventually, open_sockets

pytestmark = pytest.mark.faults

SCOPES = ("global", "service:billing")


@contextmanager
def writing(
    store: ConfigStore, write: Callable[[ConfigStore, int], object], pause: float = 0.0
) -> Iterator[threading.Event]:
    """Call ``write(store, n)`` for n = 1, 2, ... on a thread until the block ends; the error
    of a failed write is raised here. Yields an event set once the first write is done."""
    stop = threading.Event()
    first = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        n = 0
        try:
            while not stop.is_set():
                n += 1
                write(store, n)
                first.set()
                if pause:
                    stop.wait(pause)
        except BaseException as exc:
            errors.append(exc)
            first.set()

    thread = threading.Thread(target=run, name="test-publisher")
    thread.start()
    try:
        yield first
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive(), "the publisher thread hung"
    if errors:
        raise errors[0]


def write_both_scopes(store: ConfigStore, n: int) -> None:
    scope = SCOPES[n % len(SCOPES)]
    store.apply([Entry(f"k.{n % 97}", n, scope), Entry("shared", n, scope)])


def wait_reconnected(clients: list[HotConfig[Any]], reconnects: int, timeout: float) -> None:
    def done() -> bool:
        return all(c.stats.reconnects >= reconnects and c.status is Status.LIVE for c in clients)

    assert eventually(done, timeout=timeout), [(c.status, c.stats) for c in clients]


def test_clients_starting_during_1000_writes_converge_and_miss_none(fleet: Fleet) -> None:
    fleet.store.set("before", True)  # a store with an epoch: a late start, not a first write
    writes = 1000
    starts = list(range(0, writes, writes // 10))  # start two clients every 100 writes
    start_now = {n: threading.Event() for n in starts}
    started: list[HotConfig[Any]] = []
    errors: list[BaseException] = []

    def publish() -> None:
        try:
            for n in range(1, writes + 1):
                scope = SCOPES[n % 2]
                fleet.store.apply([Entry(f"w.{n}", n, scope), Entry("shared", n, scope)])
                if n in start_now:
                    start_now[n].set()
        except BaseException as exc:
            errors.append(exc)
            for event in start_now.values():
                event.set()

    def start_client(n: int) -> None:
        try:
            assert start_now[n].wait(timeout=30)
            started.append(fleet.client(scopes=SCOPES, timings=Timings(poll_interval=NO_POLL)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start_client, args=(n,)) for n in starts for _ in "ab"]
    threads.append(threading.Thread(target=publish))
    start_now[0].set()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert len(started) == 2 * len(starts)

    fleet.assert_converged()
    first_versions = [fleet.logs[id(config)].entries[0][1] for config in started]
    mid_stream = [v for v in first_versions if 1 < v < fleet.store.version]
    assert len(mid_stream) >= len(started) // 2, f"too few started mid-stream: {first_versions}"
    for config in started:
        values = config.snapshot()
        assert sum(key.startswith("w.") for key in values) == writes
        assert values["shared"] == writes - 1  # the higher scope's last write wins
        # Never a gap: each started with one snapshot (its baseline, told to no receiver) and
        # applied every later version in turn, each told once its start() had returned.
        stats = config.stats
        assert (stats.resyncs, stats.reconnects) == (1, 0), stats
        # Write n adds the key w.n: every write after the first one told reached the receivers.
        changes = fleet.logs[id(config)].changes
        told = sorted(int(c.key[2:]) for c in changes if c.key.startswith("w."))
        if told:  # none for a client whose start() returned after the last write
            assert told == list(range(told[0], writes + 1))
            assert stats.applied >= writes - told[0] + 1, stats


def test_repeated_pubsub_kills_during_writes_converge(
    fleet: Fleet, redis_client: redis.Redis
) -> None:
    fleet.store.set("before", True)
    clients = [
        fleet.client(scopes=SCOPES, timings=Timings(poll_interval=NO_POLL, backoff_max=0.1))
        for _ in range(3)
    ]
    with writing(fleet.store, write_both_scopes, pause=0.001) as first:
        assert first.wait(timeout=10)
        # Kills the clients have recovered from, then kills that land mid-reconnect.
        for kill in range(1, 11):
            assert kill_pubsub(redis_client) == len(clients)
            wait_reconnected(clients, kill, timeout=10)
        rng = random.Random(7)
        for _ in range(20):
            kill_pubsub(redis_client)
            time.sleep(rng.uniform(0, 0.03))  # spaces the faults out; waits for nothing
    for config in clients:
        assert config.stats.reconnects >= 11, config.stats
    fleet.store.set("after", True)
    fleet.assert_converged()


def test_fifty_clients_killed_at_once_all_converge(fleet: Fleet, redis_client: redis.Redis) -> None:
    fleet.store.set("before", True)
    clients = [
        fleet.client(
            scopes=SCOPES, service=f"fleet-{i}", start=False, timings=Timings(poll_interval=NO_POLL)
        )
        for i in range(50)
    ]
    for config in clients:
        config.start(timeout=0)
    assert eventually(lambda: all(c.status is Status.LIVE for c in clients), timeout=30)

    with writing(fleet.store, write_both_scopes, pause=0.002) as first:
        assert first.wait(timeout=10)
        assert kill_pubsub(redis_client) == 50
        wait_reconnected(clients, 1, timeout=15)
    fleet.store.set("after", True)
    fleet.assert_converged()
    # Each client is back on exactly one connection.
    names = sorted(c["name"] for c in pubsub_clients(redis_client))
    assert names == sorted(f"hotconfig:fleet-{i}" for i in range(50))


def test_200_kill_cycles_leak_no_thread_socket_or_connection(
    fleet: Fleet, redis_client: redis.Redis
) -> None:
    fleet.store.set("before", True)
    services = [f"cycle-{i}" for i in range(4)]
    clients = [
        fleet.client(service=name, timings=Timings(poll_interval=NO_POLL, backoff_max=0.02))
        for name in services
    ]
    pubsub_clients(redis_client)  # the test's own connection is open before the baseline
    threads, sockets = threading.active_count(), open_sockets()

    for cycle in range(1, 201):
        # Exactly one Pub/Sub connection per client, every time.
        assert kill_pubsub(redis_client) == len(clients), f"cycle {cycle}"
        if cycle % 20 == 0:
            fleet.store.set("cycle", cycle)
        wait_reconnected(clients, cycle, timeout=10)

    for config in clients:
        assert config.stats.reconnects == 200, config.stats
    fleet.assert_converged()
    assert threading.active_count() == threads
    assert eventually(lambda: open_sockets() == sockets, timeout=5), (open_sockets(), sockets)
    names = sorted(c["name"] for c in pubsub_clients(redis_client))
    assert names == [f"hotconfig:{name}" for name in services]


def test_a_dropped_connection_is_replaced_by_one_new_connection(
    fleet: Fleet, redis_client: redis.Redis
) -> None:
    # No health reports: the reporter's own connection, opened whenever its first report goes
    # out, is not the listener's and would be counted on a loaded machine.
    config = fleet.client(timings=Timings(poll_interval=NO_POLL, backoff_max=0.02), health=False)

    def connections() -> int:
        return int(redis_client.info("stats")["total_connections_received"])

    before = connections()
    for cycle in range(1, 11):
        assert kill_pubsub(redis_client) == 1
        wait_reconnected([config], cycle, timeout=10)
    # One Pub/Sub connection and one for the snapshot read per reconnect, nothing more: no
    # silent re-subscribe by redis-py on the way down.
    assert connections() - before == 10 * 2
    fleet.assert_converged()
