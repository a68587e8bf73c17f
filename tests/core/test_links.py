"""One subscription connection of the bridge (hotconfig.bridge._links), a real Link on a real
server with a hub of the test's own that records what the link tells it: what it follows is
SUBSCRIBEd the moment it is asked, its private probe channel keeps it in Pub/Sub mode, and
after the server comes back it follows everything again. The bridge's own counters of its
connections are at the end."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
import redis

from hotconfig._redis.connection import Target
from hotconfig.bridge import Bridge
from hotconfig.bridge._links import Key, Link, LinkOptions
from hotconfig.testing.server import EmbeddedServer
from tests.bridging import run, subscribed
from tests.waiting import eventually

OPTIONS = LinkOptions(socket_timeout=1.0, ping_interval=0.2)


class Hub:
    """What a bridge would be told by its link (called on the link's thread)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.dispatched: list[tuple[Key, bytes, bytes]] = []
        self.acknowledged: list[tuple[Key, bool]] = []
        self.connected = 0
        self.failures: list[BaseException] = []
        self.lost: list[set[Key]] = []

    def _dispatch(self, key: Key, channel: bytes, data: bytes) -> None:
        with self.lock:
            self.dispatched.append((key, channel, data))

    def _acknowledge(self, link: Link, key: Key, subscribed: bool) -> None:
        with self.lock:
            self.acknowledged.append((key, subscribed))

    def _connected(self, link: Link) -> None:
        self.connected += 1

    def _failed(self, link: Link, error: BaseException) -> None:
        self.failures.append(error)

    def _lost(self, link: Link, keys: set[Key]) -> None:
        self.lost.append(keys)


@pytest.fixture
def hub() -> Hub:
    return Hub()


@pytest.fixture
def start_link(server: EmbeddedServer, hub: Hub) -> Iterator[Callable[[], Link]]:
    links: list[Link] = []

    def start() -> Link:
        link = Link(hub, Target(server.url), OPTIONS, name="test-link")
        links.append(link)
        link.start()
        return link

    yield start
    for link in links:
        link.stop(5)


def numsub(client: redis.Redis, *channels: str) -> list[int]:
    return [int(count) for _, count in client.pubsub_numsub(*channels)]


def test_a_link_following_nothing_holds_its_probe_channel_open(
    start_link: Callable[[], Link], hub: Hub, redis_client: redis.Redis
) -> None:
    link = start_link()
    assert eventually(lambda: link.connected)
    assert link.probe_channel.startswith("hotconfig:bridge:")
    assert len(link.probe_channel) == len("hotconfig:bridge:") + 16
    assert numsub(redis_client, link.probe_channel) == [1]
    assert (link.following, link.sessions, hub.connected) == (False, 1, 1)
    assert hub.acknowledged == []  # its own probe channel is nothing to tell the bridge


def test_what_a_link_follows_before_it_connects_is_subscribed_when_it_opens(
    server: EmbeddedServer, hub: Hub, redis_client: redis.Redis
) -> None:
    link = Link(hub, Target(server.url), OPTIONS, name="test-link")
    link.follow({(False, "orders:eu"), (True, "ai:stream:*")}, set())  # not started yet
    assert link.following
    assert not link.connected
    link.start()
    try:
        assert eventually(lambda: numsub(redis_client, "orders:eu") == [1])
        assert eventually(lambda: redis_client.pubsub_numpat() == 1)
        assert eventually(lambda: len(hub.acknowledged) == 2)
        assert set(hub.acknowledged) == {
            ((False, "orders:eu"), True),
            ((True, "ai:stream:*"), True),
        }
    finally:
        link.stop(5)


def test_follow_and_unfollow_are_written_at_once_and_messages_reach_the_hub(
    start_link: Callable[[], Link], hub: Hub, redis_client: redis.Redis
) -> None:
    link = start_link()
    assert eventually(lambda: link.connected)
    link.follow({(False, "orders:eu"), (False, "orders:us"), (True, "ai:*")}, set())
    assert eventually(lambda: len(hub.acknowledged) == 3)
    redis_client.publish("orders:eu", "e1")
    redis_client.publish("ai:stream:s", "t1")
    assert eventually(lambda: len(hub.dispatched) == 2)
    assert hub.dispatched == [
        ((False, "orders:eu"), b"orders:eu", b"e1"),
        ((True, "ai:*"), b"ai:stream:s", b"t1"),
    ]
    link.follow(set(), {(False, "orders:eu"), (True, "ai:*")})
    assert eventually(lambda: len(hub.acknowledged) == 5)
    assert set(hub.acknowledged[3:]) == {((False, "orders:eu"), False), ((True, "ai:*"), False)}
    assert numsub(redis_client, "orders:eu", "orders:us") == [0, 1]
    assert redis_client.pubsub_numpat() == 0
    assert link.following
    link.follow(set(), {(False, "orders:us")})
    assert not link.following
    assert eventually(lambda: numsub(redis_client, "orders:us") == [0])
    assert numsub(redis_client, link.probe_channel) == [1]  # still open, for the next one


def test_a_thousand_and_more_channels_are_followed_in_batches(
    start_link: Callable[[], Link], hub: Hub, redis_client: redis.Redis
) -> None:
    link = start_link()
    assert eventually(lambda: link.connected)
    channels = [f"c:{n}" for n in range(2_500)]  # more than one SUBSCRIBE's batch
    link.follow({(False, c) for c in channels}, set())
    assert eventually(lambda: len(hub.acknowledged) == 2_500)
    assert len(redis_client.pubsub_channels("c:*")) == 2_500


@pytest.mark.faults
def test_after_the_server_restarts_the_link_follows_everything_again(
    start_link: Callable[[], Link], hub: Hub, server: EmbeddedServer
) -> None:
    link = start_link()
    link.follow({(False, "orders:eu"), (True, "ai:*")}, set())
    assert eventually(lambda: len(hub.acknowledged) == 2)
    server.kill()
    assert eventually(lambda: hub.failures and hub.lost)
    assert hub.lost[0] == {(False, "orders:eu"), (True, "ai:*")}  # what was subscribed on it
    assert not link.connected
    server.start()
    assert eventually(lambda: link.sessions == 2, timeout=10)
    with server.client() as client:
        assert eventually(lambda: numsub(client, "orders:eu") == [1])
        assert client.pubsub_numpat() == 1
        client.publish("orders:eu", "after")
    assert eventually(lambda: ((False, "orders:eu"), b"orders:eu", b"after") in hub.dispatched)
    assert hub.connected == 2


def test_stop_closes_the_link_s_connection_and_tells_the_hub_what_it_lost(
    start_link: Callable[[], Link], hub: Hub, redis_client: redis.Redis
) -> None:
    link = start_link()
    link.follow({(False, "orders:eu")}, set())
    assert eventually(lambda: len(hub.acknowledged) == 1)
    assert link.stop(5)
    assert hub.lost == [{(False, "orders:eu")}]
    assert hub.failures == []
    assert eventually(lambda: numsub(redis_client, "orders:eu", link.probe_channel) == [0, 0])


def test_link_options_probe_on_sentinel_and_cluster_but_not_on_one_server() -> None:
    single = LinkOptions.of(Target("redis://h:1/0"), 2.0, 1.0, None, 5.0)
    assert single == LinkOptions(2.0, 1.0, None, 5.0)
    sentinel = Target("redis+sentinel://h:26379/mymaster/0")
    assert LinkOptions.of(sentinel, 2.0, 1.0, None, 5.0).probe_interval == 30.0
    cluster = Target("redis+cluster://h1:1,h2:2")
    assert LinkOptions.of(cluster, 2.0, 1.0, 7.0, 5.0).probe_interval == 7.0


@pytest.mark.parametrize(
    ("probe", "check", "named"),
    [(0.0, 5.0, "probe_interval"), (None, -1.0, "check_interval")],
)
def test_link_options_refuse_intervals_that_are_not_positive(
    probe: float | None, check: float, named: str
) -> None:
    with pytest.raises(ValueError, match=named):
        LinkOptions.of(Target("redis://h:1/0"), 2.0, 1.0, probe, check)


def test_the_bridge_counts_its_open_connections(
    server: EmbeddedServer, redis_client: redis.Redis
) -> None:
    bridge = Bridge(server.url)
    assert (bridge.stats.connections, bridge.stats.connected) == (0, False)  # none before use

    async def main() -> None:
        first = await subscribed(bridge.subscribe("orders:eu"))
        await subscribed(bridge.subscribe("orders:us"))
        await subscribed(bridge.subscribe("orders:*", pattern=True))
        assert (bridge.stats.connections, bridge.stats.connected) == (1, True)
        assert (bridge.stats.channels, bridge.stats.patterns) == (2, 1)
        first.close()

    try:
        run(main)
    finally:
        bridge.close()
    assert (bridge.stats.connections, bridge.stats.connected) == (0, False)
    assert eventually(lambda: not redis_client.client_list(_type="pubsub"))
