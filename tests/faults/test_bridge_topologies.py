"""The channel bridge on Sentinel and Redis Cluster, on real processes.

A Sentinel failover while a publisher writes a replayable and a sequenced channel: every
message arrives once, or a ``recovery`` or ``gap`` event says what could not, and the bridge
ends on the new master. On a cluster, classic mode hears channels of every slot on one
connection; sharded mode SSUBSCRIBEs each channel on its slot's master, one connection per
master, and follows a slot migrated, or failed over, under a replayable channel without
missing a message.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from hotconfig._redis.connection import Target
from hotconfig.bridge import (
    Bridge,
    Delivery,
    Event,
    EventKind,
    Position,
    Replayable,
    ReplayPublisher,
    Sequenced,
    Subscription,
)
from hotconfig.bridge._history import history_keys
from hotconfig.security import acl
from hotconfig.testing import EmbeddedServer, ServerKind
from hotconfig.testing.server import EmbeddedServerError, find_binary
from tests.bridging import run, subscribed
from tests.faults.topology import Cluster, SentinelSet, wait_linked
from tests.waiting import eventually

pytestmark = [pytest.mark.faults, pytest.mark.slow]

CLASSES: dict[str, Delivery] = {
    "chat:*": Replayable(maxlen=10_000),
    "ai:stream:*": Sequenced(idle_timeout=30),
}
KINDS: tuple[ServerKind, ...] = ("valkey", "redis")
PASSWORD = "bridge-topologies-pw"


@pytest.fixture(scope="module", params=KINDS)
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """One cluster per server kind for the whole module: forming one takes seconds."""
    kind: ServerKind = request.param
    try:
        find_binary(kind)
    except EmbeddedServerError as exc:
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail(f"CI must test both server kinds: {exc}", pytrace=False)
        pytest.skip(str(exc))
    topology = Cluster(kind)
    yield topology
    topology.close()


@pytest.fixture
def sentinels(server_kind: ServerKind, tmp_path: Path) -> Iterator[SentinelSet]:
    topology = SentinelSet(server_kind, tmp_path)
    yield topology
    topology.close()


def one_channel_per_master(cluster: Cluster, prefix: str) -> dict[int, str]:
    """A channel name for each master, by port: three channels in three slots."""
    found: dict[int, str] = {}
    masters = {m.port for m in cluster.masters()}
    n = 0
    while set(found) != masters:
        name = f"{prefix}{n}"
        found.setdefault(cluster.master_of(name).port, name)
        n += 1
    return found


def shard_subscribers(server: EmbeddedServer, channel: str) -> int:
    with server.client() as admin:
        return int(admin.execute_command("PUBSUB", "SHARDNUMSUB", channel)[1])


def replica_of(master: EmbeddedServer, cluster: Cluster) -> EmbeddedServer:
    for server in cluster.servers:
        with server.client() as admin:
            if (
                server.port != master.port
                and admin.info("replication").get("master_port") == master.port
            ):
                return server
    raise AssertionError(f"no replica of {master.port}")


async def take(subscription: Subscription, count: int, timeout: float = 10.0) -> list[Event]:
    async with asyncio.timeout(timeout):
        return [await anext(subscription) for _ in range(count)]


def test_cluster_classic_mode_hears_channels_of_every_slot_on_one_connection(
    cluster: Cluster,
) -> None:
    channels = one_channel_per_master(cluster, "orders:")
    elsewhere = {port: next(s for s in cluster.masters() if s.port != port) for port in channels}

    async def heard(subscription: Subscription, port: int, channel: str) -> str:
        # This test is about routing, not loss: Pub/Sub is at-most-once, and a PUBLISH that
        # crosses a reconnect of the link (a probe late on a loaded machine) is lost by design.
        # So it publishes again until the subscription hears one.
        with elsewhere[port].client() as raw:  # PUBLISH on a node that does not own it
            while True:
                raw.publish(channel, f"to {channel}")
                events = await subscription.take(0.5)
                if events:
                    return events[0].data

    async def main(bridge: Bridge) -> dict[str, str]:
        subs = {c: await subscribed(bridge.subscribe(c)) for c in channels.values()}
        return {c: await heard(subs[c], port, c) for port, c in channels.items()}

    with Bridge(cluster.url) as bridge:
        got = run(lambda: main(bridge))
        assert (bridge.stats.connections, bridge.stats.sharded) == (1, False), bridge.stats
    assert got == {c: f"to {c}" for c in channels.values()}


def test_sharded_mode_holds_one_connection_per_master_and_every_message_arrives(
    cluster: Cluster,
) -> None:
    channels = one_channel_per_master(cluster, "orders:")
    client = Target(cluster.url).command_client()

    async def main(bridge: Bridge) -> dict[str, list[str]]:
        subs = {c: await subscribed(bridge.subscribe(c)) for c in channels.values()}
        for port, channel in channels.items():
            owner = next(s for s in cluster.masters() if s.port == port)
            assert shard_subscribers(owner, channel) == 1  # SSUBSCRIBEd on its own master
        assert bridge.stats.connections == 3
        for channel in channels.values():
            for n in range(3):
                client.execute_command("SPUBLISH", channel, f"{channel} {n}")
        got = {c: [e.data for e in await take(s, 3)] for c, s in subs.items()}
        for subscription in subs.values():
            subscription.close()
        return got

    try:
        with Bridge(cluster.url + "?sharded=1") as bridge:
            got = run(lambda: main(bridge))
            assert (bridge.stats.sharded, bridge.stats.reconnects) == (True, 0)
            # The last browser of a master's channel gone, its connection goes too.
            assert eventually(lambda: bridge.stats.connections == 0, timeout=5)
    finally:
        client.close()
    assert got == {c: [f"{c} {n}" for n in range(3)] for c in channels.values()}


def test_sharded_mode_keeps_patterns_classic_on_one_more_connection(cluster: Cluster) -> None:
    channels = one_channel_per_master(cluster, "orders:")
    client = Target(cluster.url).command_client()

    async def main(bridge: Bridge) -> list[str]:
        for channel in channels.values():
            await subscribed(bridge.subscribe(channel))
        pattern = await subscribed(bridge.subscribe("news:*", pattern=True))
        assert bridge.stats.connections == 4
        client.publish("news:eu", "classic")  # a pattern hears classic PUBLISH only
        return [e.data for e in await take(pattern, 1)]

    try:
        with Bridge(cluster.url, sharded=True) as bridge:
            assert run(lambda: main(bridge)) == ["classic"]
    finally:
        client.close()


def test_sharded_mode_is_refused_on_a_url_that_is_not_a_cluster(
    server: EmbeddedServer,
) -> None:
    with pytest.raises(ValueError, match="only in a Redis Cluster"):
        Bridge(server.url, sharded=True)
    with pytest.raises(ValueError, match="only in a Redis Cluster"):
        Bridge(server.url + "?sharded=1")
    with pytest.raises(ValueError, match="only in a Redis Cluster"):
        ReplayPublisher(server.url, sharded=True)


def test_a_sharded_publisher_refuses_a_channel_whose_braces_split_it_from_its_history(
    cluster: Cluster,
) -> None:
    with ReplayPublisher(cluster.url, sharded=True) as publisher:
        with pytest.raises(ValueError, match="another slot"):
            publisher.publish("chat:{room}", "m")
        assert Position.parse(publisher.publish("chat:room", "m")).offset == 1


class Publishing:
    """Publishes ``count`` messages in a thread (or until :meth:`stop`), each retried through
    the fault under test: ``publish(n)`` returns what was sent for message ``n``."""

    def __init__(self, count: int | None, publish: Any, pause: float = 0.005) -> None:
        self.count, self._publish, self._pause = count, publish, pause
        self.sent: list[Any] = []
        self.failures = 0
        self.halfway = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> int:
        """Stop (a writer without a count); how many messages it published."""
        self._stop.set()
        self._thread.join(30)
        self.count = len(self.sent)
        return self.count

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set() and (self.count is None or n < self.count):
            deadline = time.monotonic() + 30
            while True:
                try:
                    self.sent.append(self._publish(n))
                    break
                except (redis.RedisError, OSError):
                    self.failures += 1
                    assert time.monotonic() < deadline, "the publisher never got through"
                    time.sleep(0.02)
            if n == (self.count or 100) // 2:
                self.halfway.set()
            n += 1
            time.sleep(self._pause)

    def join(self) -> None:
        self._thread.join(60)
        assert len(self.sent) == self.count, f"only {len(self.sent)} of {self.count} published"


def test_a_slot_migrated_under_a_sharded_replayable_channel_loses_no_message(
    cluster: Cluster,
) -> None:
    channel = "chat:migrating"
    source = cluster.master_of(channel)
    destination = next(m for m in cluster.masters() if m.port != source.port)
    publisher = ReplayPublisher(cluster.url + "?sharded=1", history=Replayable(maxlen=10_000))
    assert publisher.sharded

    async def main(bridge: Bridge) -> list[Event]:
        subscription = await subscribed(bridge.subscribe(channel))
        assert shard_subscribers(source, channel) == 1
        writer = Publishing(200, lambda n: (publisher.publish(channel, f"m{n}"), f"m{n}")[1])
        assert await asyncio.to_thread(writer.halfway.wait, 30)
        await asyncio.to_thread(cluster.migrate_slot, channel, destination)
        await asyncio.to_thread(writer.join)
        return await take(subscription, 200, timeout=20)

    try:
        with Bridge(cluster.url, classes=CLASSES, sharded=True) as bridge:
            events = run(lambda: main(bridge), timeout=40)
            assert eventually(lambda: shard_subscribers(destination, channel) == 1, timeout=5)
            assert shard_subscribers(source, channel) == 0
            assert "slot" in str(bridge.stats.last_error)  # told by the old master
            assert bridge.stats.unrecovered == 0
    finally:
        publisher.close()
    assert [e.kind for e in events] == [EventKind.MESSAGE] * 200
    assert [e.data for e in events] == [f"m{n}" for n in range(200)]  # once each, in order
    assert [Position.parse(e.id or "").offset for e in events] == list(range(1, 201))


def on(admin: redis.Redis, channel: str) -> bool:
    """Whether a connection to ``admin``'s server is subscribed to ``channel``."""
    return bool(dict(admin.pubsub_numsub(channel))[channel.encode()] == 1)


def missing_is_announced(events: list[Event], history: dict[int, bytes]) -> None:
    """Each message of the final ``history`` arrived once, or a recovery event stands for it."""
    seen: dict[int, str] = {}
    announced = 0  # the highest offset a recovery event skipped to
    last = 0
    for event in events:
        at = Position.parse(event.id or "").offset
        if event.kind is EventKind.RECOVERY:
            announced = max(announced, last, at)
        else:
            assert event.kind is EventKind.MESSAGE
            assert at > last, f"offset {at} after {last}: a repeat or a reorder"
            seen[at] = event.data
        last = at
    for offset, message in history.items():
        if offset not in seen:
            assert offset <= announced, f"offset {offset} missing with no recovery event"
        elif offset > announced:
            assert seen[offset] == message.decode(), f"offset {offset} is another message"


def test_a_sentinel_failover_under_writes_resubscribes_on_the_new_master(
    sentinels: SentinelSet,
) -> None:
    replayable, sequenced = "chat:failover", "ai:stream:failover"
    target = Target(sentinels.url)
    raw = target.command_client()  # a publisher that follows the master through Sentinel
    publisher = ReplayPublisher(sentinels.url, history=Replayable(maxlen=10_000))

    def publish(n: int) -> str:
        publisher.publish(replayable, f"m{n}")
        raw.publish(sequenced, json.dumps({"index": n}))
        return f"m{n}"

    def tail(replayable: str, sequenced: str, count: int) -> str:
        with ReplayPublisher(sentinels.url) as fresh, target.command_client() as fresh_raw:
            fresh_raw.publish(sequenced, json.dumps({"index": count, "done": True}))
            return fresh.publish(replayable, "after")

    async def main(bridge: Bridge) -> tuple[list[Event], list[Event], int]:
        chat = await subscribed(bridge.subscribe(replayable))
        stream = await subscribed(bridge.subscribe(sequenced))
        writer = Publishing(None, publish, pause=0.01)
        assert await asyncio.to_thread(writer.halfway.wait, 30)
        new_master = await asyncio.to_thread(sentinels.failover)
        # The demoted master still relays what the new one publishes (once it replicates it),
        # yet the bridge must not stay there: it leaves once the sentinels name the new master.
        new = next(s for s in sentinels.servers if s.port == new_master)
        with new.client() as admin:
            moved = await asyncio.to_thread(eventually, lambda: on(admin, replayable), 10)
        assert moved, "the bridge stayed on the demoted master"
        count = await asyncio.to_thread(writer.stop)
        # Until the sentinels demote it, the old master still takes the writer's messages on
        # the connections it had: published from now on by new connections, on the new master.
        last = await asyncio.to_thread(tail, replayable, sequenced, count)
        chat_events: list[Event] = []
        while not chat_events or chat_events[-1].data != "after":
            chat_events += await take(chat, 1, timeout=20)
        assert chat_events[-1].id == last  # numbered by the new master
        return chat_events, [e async for e in stream], count

    try:
        with Bridge(sentinels.url, classes=CLASSES, check_interval=0.5) as bridge:
            chat_events, stream_events, count = run(lambda: main(bridge), timeout=60)
            assert bridge.stats.reconnects >= 1
            assert "master moved" in str(bridge.stats.last_error)
            assert bridge.stats.connections == 1
            with target.command_client() as fresh_raw:
                stored = fresh_raw.xrange(history_keys(replayable)[1])
    finally:
        publisher.close()
        raw.close()
    history = {int(i.decode().partition("-")[2]): f[b"m"] for i, f in stored}
    missing_is_announced(chat_events, history)
    assert chat_events[-1].data == "after"
    # The sequenced stream: every index once, in order, or inside a gap event; then done.
    indexes: list[int] = []
    for event in stream_events:
        if event.kind is EventKind.GAP:
            gap = json.loads(event.data)
            indexes += range(gap["from"], gap["to"] + 1)
        else:
            indexes.append(json.loads(event.data)["index"])
    assert indexes == list(range(count + 1))
    assert stream_events[-1].final


def test_a_cluster_failover_under_a_sharded_replayable_channel_loses_no_message(
    cluster: Cluster,
) -> None:
    channel = "chat:failing-over"
    replica = replica_of(cluster.master_of(channel), cluster)
    wait_linked(replica)  # a manual failover needs the replica in sync
    publisher = ReplayPublisher(cluster.url + "?sharded=1", history=Replayable(maxlen=10_000))

    async def main(bridge: Bridge) -> list[Event]:
        subscription = await subscribed(bridge.subscribe(channel))
        writer = Publishing(100, lambda n: (publisher.publish(channel, f"m{n}"), f"m{n}")[1])
        assert await asyncio.to_thread(writer.halfway.wait, 30)
        with replica.client() as admin:  # a coordinated failover: the replica caught up first
            admin.execute_command("CLUSTER", "FAILOVER")
        promoted = await asyncio.to_thread(
            eventually, lambda: cluster.master_of(channel).port == replica.port, 20
        )
        assert promoted, "the replica was not promoted"
        await asyncio.to_thread(writer.join)
        return await take(subscription, 100, timeout=20)

    try:
        with Bridge(cluster.url, classes=CLASSES, sharded=True, check_interval=0.5) as bridge:
            events = run(lambda: main(bridge), timeout=40)
            assert eventually(lambda: shard_subscribers(replica, channel) == 1, timeout=5)
            assert bridge.stats.unrecovered == 0
            assert "slot moved" in str(bridge.stats.last_error)  # the old master said so
    finally:
        publisher.close()
    assert [e.data for e in events] == [f"m{n}" for n in range(100)]  # once each, in order
    assert [Position.parse(e.id or "").offset for e in events] == list(range(1, 101))


@pytest.mark.parametrize("sharded", [False, True])
@pytest.mark.parametrize("probe_granted", [True, False])
def test_under_the_bridge_acl_role_the_probe_runs_or_a_refused_one_turns_itself_off(
    cluster: Cluster, sharded: bool, probe_granted: bool, caplog: pytest.LogCaptureFixture
) -> None:
    rules = acl.rules("bridge", bridge_channels=["orders:*"], replay_channels=(), sharded=sharded)
    if not probe_granted:  # a user made from an older role: no selector for the probe's PUBLISH
        rules = [rule for rule in rules if not rule.startswith("(")]
    for server in cluster.servers:  # ACL users are per node
        with server.client() as admin:
            admin.execute_command("ACL", "SETUSER", "bridge", "on", ">" + PASSWORD, *rules)
    nodes = cluster.url.removeprefix("redis+cluster://")
    url = f"redis+cluster://bridge:{PASSWORD}@{nodes}" + ("?sharded=1" if sharded else "")
    channels = one_channel_per_master(cluster, "orders:")
    client = Target(cluster.url).command_client()

    async def main(bridge: Bridge) -> list[str]:
        subs = [await subscribed(bridge.subscribe(c)) for c in channels.values()]
        await asyncio.sleep(0.5)  # several probes are due meanwhile
        for channel in channels.values():
            client.execute_command("SPUBLISH" if sharded else "PUBLISH", channel, channel)
        return [(await anext(s)).data for s in subs]

    try:
        with Bridge(url, probe_interval=0.1) as bridge:
            assert run(lambda: main(bridge)) == list(channels.values())
            assert bridge.stats.reconnects == 0
            assert bridge.stats.connections == (3 if sharded else 1)
    finally:
        client.close()
    assert ("delivery probe is off" in caplog.text) is not probe_granted
