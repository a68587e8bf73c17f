"""Least privilege on a real Redis Cluster: the roles' rules cover the cluster client too."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
import redis

from hotconfig import ConfigStore, HotConfig, Status, Timings
from hotconfig._redis.connection import Target
from hotconfig.bridge import Bridge, Replayable, ReplayPublisher
from hotconfig.security import acl
from hotconfig.testing import ServerKind
from tests.bridging import run, subscribed
from tests.faults.topology import Cluster

pytestmark = pytest.mark.faults

PASSWORD = "acl-cluster-pw"
# Left out of the rules on purpose (see docs/security.md): both are optional to hotconfig.
OPTIONAL = {"config|get", "client|setinfo"}


@pytest.fixture
def cluster(server_kind: ServerKind) -> Iterator[Cluster]:
    topology = Cluster(server_kind)
    for server in topology.servers:  # ACL users are per node
        with server.client() as admin:
            for role in ("subscriber", "publisher"):
                admin.execute_command(
                    "ACL", "SETUSER", role, "on", ">" + PASSWORD, *acl.rules(role)
                )
                admin.execute_command(
                    "ACL",
                    "SETUSER",
                    f"sharded-{role}",
                    "on",
                    ">" + PASSWORD,
                    *acl.rules(role, sharded=True),
                )
            admin.acl_log_reset()
    yield topology
    topology.close()


def test_a_subscriber_follows_a_cluster_and_cannot_publish(cluster: Cluster) -> None:
    nodes = cluster.url.removeprefix("redis+cluster://")
    sub_url = f"redis+cluster://subscriber:{PASSWORD}@{nodes}"
    pub_url = f"redis+cluster://publisher:{PASSWORD}@{nodes}"
    with (
        ConfigStore(pub_url) as store,
        HotConfig(sub_url, timings=Timings(probe_interval=0.1)) as config,
    ):
        assert config.status is Status.LIVE, config.stats
        assert config.wait_for_version(store.set("feature.on", True), timeout=5)
        assert config.get("feature.on") is True
        time.sleep(0.5)  # several delivery probes go out and come back meanwhile
        assert (config.status, config.stats.reconnects) == (Status.LIVE, 0)
    # The client, its probe and the store were refused nothing they need, on any node.
    refused = []
    for server in cluster.servers:
        with server.client(decode_responses=True) as admin:
            refused += [e for e in admin.acl_log() if e.get("object") not in OPTIONAL]
    assert refused == []
    node = cluster.servers[0]
    with (
        redis.Redis(node.host, node.port, username="subscriber", password=PASSWORD) as sub,
        pytest.raises(redis.exceptions.NoPermissionError),
    ):
        sub.publish("config:changes", '{"key": "feature.on", "value": false}')


def test_sharded_roles_follow_a_cluster_by_spublish_and_cannot_publish_a_change(
    cluster: Cluster,
) -> None:
    nodes = cluster.url.removeprefix("redis+cluster://")
    sub_url = f"redis+cluster://sharded-subscriber:{PASSWORD}@{nodes}?sharded=1"
    pub_url = f"redis+cluster://sharded-publisher:{PASSWORD}@{nodes}?sharded=1"
    with (
        ConfigStore(pub_url) as store,
        HotConfig(sub_url, timings=Timings(probe_interval=0.1)) as config,
    ):
        assert config.status is Status.LIVE, config.stats
        assert config.wait_for_version(store.set("feature.on", True), timeout=5)
        time.sleep(0.5)  # delivery probes go out by SPUBLISH and come back meanwhile
        assert (config.status, config.stats.reconnects) == (Status.LIVE, 0), config.stats
    refused = []
    for server in cluster.servers:
        with server.client(decode_responses=True) as admin:
            refused += [e for e in admin.acl_log() if e.get("object") not in OPTIONAL]
    assert refused == []
    shard = store.keyspace.shard_channel("config:changes")
    host, port = Target(cluster.url).shard_node(shard)  # the master serving the store's slot
    with (
        redis.Redis(host, port, username="sharded-subscriber", password=PASSWORD) as sub,
        pytest.raises(redis.exceptions.NoPermissionError),
    ):
        sub.execute_command("SPUBLISH", shard, '{"key": "feature.on", "value": false}')


def test_a_bridge_resumes_replayable_channels_over_the_cluster_as_the_replay_roles(
    cluster: Cluster,
) -> None:
    bridge_rules = acl.rules("bridge", bridge_channels=["chat:*"])
    publisher_rules = acl.rules("replay-publisher", replay_channels=["chat:*"])
    for server in cluster.servers:
        with server.client() as admin:
            admin.execute_command("ACL", "SETUSER", "bridge", "on", ">" + PASSWORD, *bridge_rules)
            admin.execute_command("ACL", "SETUSER", "chat", "on", ">" + PASSWORD, *publisher_rules)
    nodes = cluster.url.removeprefix("redis+cluster://")
    channels = [f"chat:room-{n}" for n in range(6)]  # their histories spread over the masters
    with ReplayPublisher(f"redis+cluster://chat:{PASSWORD}@{nodes}") as publisher:
        first = {channel: publisher.publish(channel, f"{channel} 0") for channel in channels}
        for channel in channels:
            publisher.publish(channel, f"{channel} 1")

        async def resume_each(bridge: Bridge) -> dict[str, list[str]]:
            got: dict[str, list[str]] = {}
            for channel in channels:
                async with bridge.subscribe(channel, last_event_id=first[channel]) as sub:
                    await subscribed(sub)
                    got[channel] = [(await anext(sub)).data]  # missed, from the history
                    await asyncio.to_thread(publisher.publish, channel, f"{channel} 2")
                    got[channel].append((await anext(sub)).data)  # live
            return got

        bridge_url = f"redis+cluster://bridge:{PASSWORD}@{nodes}"
        with Bridge(bridge_url, classes={"chat:*": Replayable()}) as bridge:
            got = run(lambda: resume_each(bridge), timeout=20)
            assert (bridge.stats.replay_errors, bridge.stats.reconnects) == (0, 0)
    assert got == {channel: [f"{channel} 1", f"{channel} 2"] for channel in channels}
    refused = []
    for server in cluster.servers:
        with server.client(decode_responses=True) as admin:
            refused += [e for e in admin.acl_log() if e.get("object") not in OPTIONAL]
    assert refused == []
