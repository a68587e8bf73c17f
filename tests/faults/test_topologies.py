"""Sentinel failover and Redis Cluster, on real processes: every client still converges.

A Sentinel failover during 200 writes, the old master frozen, a cluster node killed and
restarted: each ends with every client equal to the store within 2 s of the topology settling.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from hotconfig import Status, Timings
from hotconfig.testing import EmbeddedServer, ServerKind
from tests.faults.harness import NO_POLL, Fleet
from tests.faults.topology import Cluster, SentinelSet, Writer
from tests.waiting import eventually

pytestmark = [pytest.mark.faults, pytest.mark.slow]

SETTLE = 2.0  # the acceptance bound: converged within this long after the topology settles
POLL = 0.5


@pytest.fixture
def sentinels(server_kind: ServerKind, tmp_path: Path) -> Iterator[SentinelSet]:
    topology = SentinelSet(server_kind, tmp_path)
    yield topology
    topology.close()


@pytest.fixture
def cluster(server_kind: ServerKind) -> Iterator[Cluster]:
    topology = Cluster(server_kind)
    yield topology
    topology.close()


def test_a_sentinel_failover_during_200_writes_converges(
    sentinels: SentinelSet, fleet_factory: Callable[[str], Fleet]
) -> None:
    fleet = fleet_factory(sentinels.url)
    fleet.store.set("counter", -1)
    clients = [fleet.client(timings=Timings(poll_interval=POLL)) for _ in range(3)]
    writer = Writer(fleet.store, 200)
    assert writer.halfway.wait(30)
    new_master = sentinels.failover()
    writer.join()
    # Settled: the old master is a replica of the new one and in sync. Writes it acknowledged
    # after the promotion (possible on a busy machine) are gone then, as Redis replicates
    # asynchronously; the new master's history is the store the clients must equal.
    sentinels.settle(new_master)
    settled = time.monotonic()
    if fleet.store.version < writer.count + 1:  # writes were lost: the store went back in time
        for config in clients:  # and took its clients back with it, once
            fleet.logs[id(config)].entries.clear()
    fleet.assert_converged(timeout=SETTLE + 3.0)  # the bound is checked just below
    took = time.monotonic() - settled
    assert took < SETTLE, f"converged {took:.2f}s after the failover settled"
    final = fleet.store.get("counter")
    assert all(c.get("counter") == final for c in clients)
    # Nobody stays on the demoted master: every subscription is on the new one.
    new = next(s for s in sentinels.servers if s.port == new_master)
    with new.client() as admin:
        assert eventually(lambda: len(admin.client_list(_type="pubsub")) >= 3, timeout=SETTLE)


def test_clients_leave_a_frozen_master(
    sentinels: SentinelSet, fleet_factory: Callable[[str], Fleet]
) -> None:
    fleet = fleet_factory(sentinels.url)
    fleet.store.set("limit", 1)
    clients = [fleet.client(timings=Timings(poll_interval=POLL)) for _ in range(2)]
    old = sentinels.master
    old.pause()  # partitioned: it answers nobody, and the sentinels promote the replica
    try:
        with sentinels.sentinels[0].client() as s:

            def promoted() -> bool:
                reply = s.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "hcmaster")
                return int(reply[1]) != old.port

            assert eventually(promoted, timeout=30, interval=0.1)
        deadline = time.monotonic() + 30
        while True:  # the store's client finds the new master by itself too
            try:
                version = fleet.store.set("limit", 2)
                break
            except (redis.RedisError, OSError):
                assert time.monotonic() < deadline
                time.sleep(0.1)
        settled = time.monotonic()
        for config in clients:
            assert config.wait_for_version(version, timeout=SETTLE + 3.0)
        assert time.monotonic() - settled < SETTLE + 3.0  # ping deadline + backoff + resync
        assert all(c.get("limit") == 2 and c.status is Status.LIVE for c in clients)
    finally:
        old.resume()
    fleet.assert_converged(timeout=SETTLE)


def test_a_fleet_on_a_cluster_subscribes_all_over_it_and_every_node_delivers(
    cluster: Cluster, fleet_factory: Callable[[str], Fleet]
) -> None:
    fleet = fleet_factory(cluster.url)
    clients = [fleet.client(timings=Timings(poll_interval=NO_POLL)) for _ in range(12)]

    def subscribers(server: EmbeddedServer) -> int:
        with server.client() as admin:
            return len(admin.client_list(_type="pubsub"))

    per_node = {server.port: subscribers(server) for server in cluster.servers}
    assert sum(per_node.values()) == len(clients)
    # Not all on the first master of the slot map: the fan-out is spread over the cluster
    # (twelve clients on one of six nodes by chance: about one run in 300 million).
    assert sum(1 for count in per_node.values() if count) > 1, per_node
    version = fleet.store.set("spread", True)
    for config in clients:  # replicas' subscribers included: the bus carries every PUBLISH
        assert config.wait_for_version(version, timeout=5), config
    fleet.assert_converged()


def test_a_cluster_node_restart_converges(
    cluster: Cluster, fleet_factory: Callable[[str], Fleet]
) -> None:
    fleet = fleet_factory(cluster.url)
    for i in range(20):
        fleet.store.set(f"k{i}", i)
    clients = [fleet.client(timings=Timings(poll_interval=POLL)) for _ in range(3)]
    fleet.assert_converged()

    # The node serving the store's slot restarts (without persistence, so it comes back
    # empty: a wiped store, a new epoch) while its replica follows it.
    owner = cluster.master_of("{hotconfig}:version")
    owner.restart()
    cluster.wait_ok()
    deadline = time.monotonic() + 30
    while True:
        try:
            version = fleet.store.set("after.restart", True)
            break
        except (redis.RedisError, OSError):
            assert time.monotonic() < deadline
            time.sleep(0.1)
    settled = time.monotonic()
    fleet.assert_converged(timeout=SETTLE + 3.0)
    assert time.monotonic() - settled < SETTLE + 3.0  # reconnect or poll, then resync
    assert all(c.get("after.restart") is True and c.version == version for c in clients)
