"""The store goes back in time, loses a hash, or is impersonated: every client still converges.

A version number alone does not say which write it is. A master restarted from its last dump
(seen through its replica), ``DEBUG RELOAD``, a deleted or evicted counter, a lagging replica
promoted: the epoch survives and the numbers come again. A publisher can send "the next
version". Each case here ends with every client equal to the store, LIVE, within the poll
interval plus a second — even where that moves a client's version back.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest
import redis

from hotconfig import Status, Timings
from hotconfig.security import doctor
from hotconfig.testing import EmbeddedServer
from tests.conftest import ServerFactory
from tests.faults.harness import NO_POLL, Fleet
from tests.faults.proxy import TcpProxy
from tests.waiting import eventually

pytestmark = pytest.mark.faults

POLL = 0.5
CHANNEL = "config:changes"


def converge(fleet: Fleet, *, timeout: float = POLL + 1.0, regressed: bool = True) -> None:
    """Every client equals the store within ``timeout``. A store that went back in time takes
    its clients back with it (``regressed``): their version logs may then go back once too."""
    if regressed:
        for config in fleet.clients:
            fleet.logs[id(config)].entries.clear()  # the store, not the client, went back
    fleet.assert_converged(timeout=timeout)


def write_values(fleet: Fleet, count: int, prefix: str = "k") -> int:
    version = 0
    for i in range(count):
        version = fleet.store.set(f"{prefix}.{i}", i)
    return version


# A replica that must sync in full (its master restarted from a dump, or it was promoted
# and another follows it) starts at once, not after the default 5 s wait for more replicas.
QUICK_SYNC = ["--repl-diskless-sync-delay", "0"]


def replica_of(server_factory: ServerFactory, master: EmbeddedServer) -> EmbeddedServer:
    """A real replica of ``master``, started and in sync."""
    replica = server_factory(args=[*QUICK_SYNC, "--replicaof", master.host, str(master.port)])
    with replica.client() as r:

        def linked() -> bool:
            return bool(r.info("replication")["master_link_status"] == "up")

        assert eventually(linked, timeout=20, interval=0.05), r.info("replication")
    return replica


def all_at(fleet: Fleet, version: int) -> None:
    for config in fleet.clients:
        assert config.wait_for_version(version, timeout=10), config


def test_a_deleted_version_counter_is_detected_by_the_next_write(
    fleet: Fleet, redis_client: redis.Redis
) -> None:
    clients = [fleet.client(timings=Timings(poll_interval=NO_POLL)) for _ in range(2)]
    all_at(fleet, write_values(fleet, 10))
    redis_client.delete("{hotconfig}:version")  # evicted or deleted: the epoch survives

    # The next write is numbered 1 again. Without digests it is "a duplicate" and skipped.
    version = fleet.store.set("after.reset", "seen")
    assert version == 1
    assert eventually(lambda: all(c.get("after.reset") == "seen" for c in clients), timeout=2)
    assert all(c.version == 1 for c in clients)
    converge(fleet, timeout=1.0)


def test_a_store_reloaded_from_an_older_dump_is_detected_by_the_poll(
    fleet: Fleet, redis_client: redis.Redis
) -> None:
    fleet.client(timings=Timings(poll_interval=POLL))
    write_values(fleet, 3)
    redis_client.save()
    all_at(fleet, write_values(fleet, 5, prefix="after.dump"))
    # Back to version 3, under the same epoch.
    redis_client.execute_command("DEBUG", "RELOAD", "NOSAVE")  # type: ignore[no-untyped-call]
    assert fleet.store.version == 3

    started = time.monotonic()
    converge(fleet)
    assert time.monotonic() - started < POLL + 1.0
    # Later writes reuse numbers the client saw before; they apply, no write is skipped.
    fleet.store.set("after.reload", 1)
    converge(fleet, timeout=1.0, regressed=False)


def test_a_master_restarted_from_its_dump_is_caught_through_its_replica(
    server_factory: ServerFactory, fleet_factory: Any
) -> None:
    master = server_factory(args=QUICK_SYNC)
    replica = replica_of(server_factory, master)
    fleet: Fleet = fleet_factory(master.url)
    config = fleet.client(
        replica.url, timings=Timings(poll_interval=NO_POLL)
    )  # reads through the replica
    write_values(fleet, 3)
    with master.client() as admin:
        admin.save()
    version = write_values(fleet, 5, prefix="lost")
    assert config.wait_for_version(version, timeout=10)

    master.restart()  # loads its dump: version 3 under the same epoch; the replica follows
    assert fleet.store.version == 3
    with replica.client() as r:
        assert eventually(lambda: int(r.get("{hotconfig}:version") or 0) == 3, timeout=10)
    fleet.store.set("after.restart", "x")  # version 4 again, another write: a conflict
    converge(fleet, timeout=2.0)
    assert config.get("lost.0") is None
    assert config.status is Status.LIVE


def test_a_lagging_replica_promoted_takes_its_clients_back(
    server_factory: ServerFactory, fleet_factory: Any
) -> None:
    master = server_factory(args=QUICK_SYNC)
    replica = replica_of(server_factory, master)
    with TcpProxy(master.host, master.port) as proxy:
        fleet: Fleet = fleet_factory(proxy.url_for())
        clients = [fleet.client(timings=Timings(poll_interval=POLL)) for _ in range(3)]
        write_values(fleet, 3)
        with replica.client() as r:
            assert eventually(lambda: int(r.get("{hotconfig}:version") or 0) == 3, timeout=10)
            r.replicaof("NO", "ONE")  # cut off: it lags from here on
        all_at(fleet, write_values(fleet, 4, prefix="unreplicated"))

        proxy.target = (replica.host, replica.port)  # the failover
        proxy.reset_all()
        converge(fleet, timeout=POLL + 5.0)  # reconnect (backoff) + resync
        assert all(c.version == 3 and c.get("unreplicated.0") is None for c in clients)
        fleet.store.set("after.failover", 1)
        converge(fleet, timeout=1.0, regressed=False)


def test_a_lost_scope_hash_is_found_by_the_poll(fleet: Fleet, redis_client: redis.Redis) -> None:
    old = [fleet.client(timings=Timings(poll_interval=POLL)) for _ in range(2)]
    all_at(fleet, write_values(fleet, 31))
    redis_client.set("keep.me", "other data")
    redis_client.delete("{hotconfig}:scope:global")  # as an eviction would: no version bump
    new = fleet.client(timings=Timings(poll_interval=POLL))
    assert len(new.snapshot()) == 0
    converge(fleet, regressed=False)
    assert all(len(c.snapshot()) == 0 for c in old)


def test_an_eviction_policy_that_can_lose_the_store_is_reported(
    fleet: Fleet, server: EmbeddedServer
) -> None:
    server.config_set("maxmemory-policy", "allkeys-lru")
    config = fleet.client()
    assert "allkeys-lru" in (config.stats.server_warning or "")
    server.config_set("maxmemory-policy", "noeviction")
    assert "maxmemory" not in (fleet.client().stats.server_warning or "")


def test_a_server_that_persists_nothing_is_reported_at_start_and_by_doctor(
    fleet: Fleet, server: EmbeddedServer, caplog: pytest.LogCaptureFixture
) -> None:
    # A restart of such a server empties the store: every client back to its defaults at once.
    server.config_set("appendonly", "no")
    server.config_set("save", "")
    with caplog.at_level(logging.WARNING, logger="hotconfig"):
        config = fleet.client()
    warning = config.stats.server_warning or ""
    assert "persists nothing" in warning
    assert [r.getMessage() for r in caplog.records].count(warning) == 1  # once, at start
    assert any("persists nothing" in w for w in doctor(server.url).warnings)
    server.config_set("save", "3600 1")  # RDB snapshots: a restart loses at most an hour
    assert fleet.client().stats.server_warning is None
    assert not any("persists nothing" in w for w in doctor(server.url).warnings)


def forge(redis_client: redis.Redis, version: int, epoch: str | None, **fields: Any) -> None:
    message = {"version": version, "epoch": epoch, **fields, "key": "limit", "value": "forged"}
    redis_client.publish(CHANNEL, json.dumps(message))


def test_a_forged_next_version_never_displaces_the_real_one(
    fleet: Fleet, redis_client: redis.Redis
) -> None:
    fleet.store.set("limit", 1)
    config = fleet.client(timings=Timings(poll_interval=NO_POLL))
    epoch, version = fleet.store.epoch, fleet.store.version
    rejected = config.stats.rejected

    # Copies the public epoch and claims the next number, but cannot say what it follows.
    forge(redis_client, version + 1, epoch)
    assert eventually(lambda: config.stats.rejected == rejected + 1, timeout=2)
    assert config.get("limit") == 1
    real = fleet.store.set("limit", 2)
    assert real == version + 1
    assert config.wait_for_version(real, timeout=2)
    assert config.get("limit") == 2
    converge(fleet, timeout=1.0, regressed=False)


def test_a_forgery_that_copies_the_digest_is_undone_when_the_real_write_arrives(
    fleet: Fleet, redis_client: redis.Redis
) -> None:
    fleet.store.set("limit", 1)
    config = fleet.client(timings=Timings(poll_interval=NO_POLL))
    seen: list[str] = []
    with redis_client.pubsub() as watcher:
        watcher.subscribe(CHANNEL)
        watcher.get_message(timeout=1)
        fleet.store.set("other", 1)
        while not seen:
            message = watcher.get_message(timeout=1)
            if message and message["type"] == "message":
                seen.append(json.loads(message["data"])["digest"])
    epoch, version = fleet.store.epoch, fleet.store.version
    assert config.wait_for_version(version, timeout=2)

    # Without signing this one cannot be told from the store's own write...
    forge(redis_client, version + 1, epoch, prev=seen[0], digest="f0f0f0f0f0f0f0f0")
    assert eventually(lambda: config.get("limit") == "forged", timeout=2)
    # ...until the store's real write of that number comes: another digest, so a resync.
    fleet.store.set("limit", 3)
    assert eventually(lambda: config.get("limit") == 3, timeout=2)
    converge(fleet, timeout=1.0, regressed=False)


def test_after_the_counter_goes_back_versions_are_followed_from_the_store(
    fleet: Fleet, redis_client: redis.Redis
) -> None:
    config = fleet.client(timings=Timings(poll_interval=NO_POLL))
    all_at(fleet, write_values(fleet, 5))
    redis_client.set("{hotconfig}:version", 1)  # the counter goes back: the next write is 2
    version = fleet.store.set("fresh", "value")
    assert version == 2
    assert eventually(lambda: config.get("fresh") == "value", timeout=2)
    assert config.version == 2  # moved back, to follow the store's numbering from here
    for value in range(3):
        version = fleet.store.set("fresh", value)
        assert config.wait_for_version(version, timeout=2)
        assert config.get("fresh") == value  # waits for *this* write, not an older one
    converge(fleet, timeout=1.0)
