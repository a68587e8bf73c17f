"""Sharded mode on a real Redis Cluster: SPUBLISH in the store's slot, SSUBSCRIBE on its master.

Changes reach sharded clients by the shard channel alone (a classic client hears nothing and
converges by its poll); a raw classic PUBLISH still reaches them; and the store's slot migrated
to another master while a publisher writes loses no version: the old master ends the shard
subscriptions, every client follows the slot to its new master and resyncs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from hotconfig import Connection, Status, Timings
from hotconfig import Fleet as HotConfigFleet
from hotconfig._config.wire import DEFAULT_CHANNEL
from hotconfig._redis.connection import Target
from hotconfig._redis.keyspace import Keyspace
from hotconfig.fleet import ChangeNotice
from hotconfig.testing import EmbeddedServer, ServerKind
from tests.faults.harness import NO_POLL, Fleet
from tests.faults.topology import Cluster, Writer
from tests.waiting import eventually

pytestmark = [pytest.mark.faults, pytest.mark.slow]

SHARD_CHANNEL = Keyspace().shard_channel(DEFAULT_CHANNEL)
STORE_KEY = Keyspace().version


@pytest.fixture
def cluster(server_kind: ServerKind) -> Iterator[Cluster]:
    topology = Cluster(server_kind)
    yield topology
    topology.close()


def shard_subscribers(server: EmbeddedServer) -> int:
    with server.client() as admin:
        reply = admin.execute_command("PUBSUB", "SHARDNUMSUB", SHARD_CHANNEL)
        return int(reply[1])


def spublishes(server: EmbeddedServer) -> int:
    with server.client() as admin:
        return int(admin.info("commandstats").get("cmdstat_spublish", {}).get("calls", 0))


def test_changes_reach_sharded_clients_by_the_shard_channel(
    cluster: Cluster, fleet_factory: Callable[[str], Fleet]
) -> None:
    fleet = fleet_factory(cluster.url + "?sharded=1")
    assert fleet.store.sharded
    # The delivery probe goes by SPUBLISH too; one not echoed in time would reconnect.
    sharded = [
        fleet.client(
            timings=Timings(poll_interval=NO_POLL, probe_interval=0.05, liveness_timeout=0.5)
        )
        for _ in range(2)
    ]
    classic = fleet.client(
        cluster.url, timings=Timings(poll_interval=0.5)
    )  # the same store, not sharded
    owner = cluster.master_of(STORE_KEY)
    assert shard_subscribers(owner) == 2  # on the master serving the store's slot
    before = spublishes(owner)
    time.sleep(1.0)
    assert spublishes(owner) - before >= 10  # the probes went to the slot's master
    # What a client of other shard channels would use to find and reach their masters.
    target = Target(cluster.url)
    assert target.shard_node(SHARD_CHANNEL) == (owner.host, owner.port)
    with target.shard_subscriber(SHARD_CHANNEL, socket_timeout=2.0) as subscriber:
        assert int(subscriber.info("server")["tcp_port"]) == owner.port

    version = fleet.store.set("limit", 7)
    for config in sharded:
        assert config.wait_for_version(version, timeout=5)
        assert config.get("limit") == 7
        assert config.stats.received == 1  # the change came as a message
        assert config.stats.resyncs == 1  # the one at start: no poll, no catch-up
        assert config.stats.reconnects == 0  # every probe came back
    fleet.assert_converged()
    assert classic.stats.received == 0  # no classic PUBLISH: it caught up by its poll


def test_a_raw_classic_publish_still_reaches_a_sharded_client(
    cluster: Cluster, fleet_factory: Callable[[str], Fleet]
) -> None:
    fleet = fleet_factory(cluster.url)
    fleet.store.set("limit", 1)
    config = fleet.client(
        timings=Timings(poll_interval=NO_POLL), connection=Connection(sharded=True)
    )
    # Any node: a classic PUBLISH crosses the cluster bus to the sharded client's master.
    elsewhere = next(m for m in cluster.masters() if m.port != cluster.master_of(STORE_KEY).port)
    with elsewhere.client() as raw:
        raw.publish(DEFAULT_CHANNEL, '{"key":"raw.flag","value":true}')
    assert eventually(lambda: config.get("raw.flag") is True, timeout=5)
    # The store's own classic PUBLISH too (a store not switched yet, during a rollout).
    version = fleet.store.set("limit", 2)
    assert config.wait_for_version(version, timeout=5)
    fleet.assert_converged(extra={"raw.flag": True})


def test_the_store_slot_migrated_under_sharded_mode_loses_no_version(
    cluster: Cluster, fleet_factory: Callable[[str], Fleet]
) -> None:
    fleet = fleet_factory(cluster.url + "?sharded=1")
    fleet.store.set("k-1", -1)
    # No poll, no probe: following the slot must be the shard subscription's own doing.
    clients = [
        fleet.client(timings=Timings(poll_interval=NO_POLL, probe_interval=NO_POLL))
        for _ in range(3)
    ]
    source = cluster.master_of(STORE_KEY)
    destination = next(m for m in cluster.masters() if m.port != source.port)
    writer = Writer(fleet.store, 200, distinct=True)
    assert writer.halfway.wait(30)
    cluster.migrate_slot(STORE_KEY, destination)
    writer.join()

    fleet.assert_converged()
    assert all(len(c.snapshot()) == 201 for c in clients)  # k-1 and every write k0..k199
    for config in clients:
        assert config.status is Status.LIVE
        assert config.stats.reconnects >= 1
        assert "slot" in str(config.stats.last_error)  # told by the old master, not timed out
    assert eventually(lambda: shard_subscribers(destination) == 3, timeout=5)
    assert shard_subscribers(source) == 0
    version = fleet.store.set("after", True)  # announced on the new master, heard at once
    assert all(c.wait_for_version(version, timeout=5) for c in clients)


def test_a_fleet_watch_of_a_sharded_store_sees_its_changes(
    cluster: Cluster, fleet_factory: Callable[[str], Fleet]
) -> None:
    fleet = fleet_factory(cluster.url + "?sharded=1")
    config = fleet.client(timings=Timings(poll_interval=NO_POLL))
    with (
        HotConfigFleet(cluster.url + "?sharded=1") as watcher,
        watcher.watch(timeout=10, changes=True) as feed,
    ):
        assert watcher.sharded
        version = fleet.store.set("limit", 3)
        notices = list(_until_version(feed, version))
        assert [n.version for n in notices] == [version]
        assert [(e.key, e.value) for e in notices[0].entries] == [("limit", 3)]
        # A raw classic publish reaches the same feed.
        elsewhere = next(
            m for m in cluster.masters() if m.port != cluster.master_of(STORE_KEY).port
        )
        with elsewhere.client() as raw:
            raw.publish(DEFAULT_CHANNEL, '{"key":"raw.flag","value":true}')
        raw_notice = next(e for e in feed if isinstance(e, ChangeNotice))
        assert [(e.key, e.value) for e in raw_notice.entries] == [("raw.flag", True)]
    assert config.wait_for_version(version, timeout=5)


def _until_version(feed: Iterator[object], version: int) -> Iterator[ChangeNotice]:
    for event in feed:
        if isinstance(event, ChangeNotice):
            yield event
            if event.version == version:
                return
