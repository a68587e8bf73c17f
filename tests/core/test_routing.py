"""Where each followed channel is subscribed (hotconfig.bridge._routing), seen from the server:
a real Bridge on one server, whose Router places a channel on its link the moment the first
browser follows it and takes it off when the last one leaves, however many change at once.
Sharded routing on a real cluster is tests/faults/test_bridge_topologies.py."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
import redis

from hotconfig.bridge import Bridge, Subscription
from hotconfig.testing.server import EmbeddedServer
from tests.bridging import run, subscribed
from tests.waiting import eventually

ROUTER = "test-routing-router"


@pytest.fixture
def bridge(server: EmbeddedServer) -> Iterator[Bridge]:
    with Bridge(server.url, name="test-routing") as bridge:
        yield bridge


def followed(client: redis.Redis, pattern: str = "*") -> set[str]:
    """The channels the server has a subscriber for (PUBSUB CHANNELS), the probe left out."""
    names = (c.decode() if isinstance(c, bytes) else c for c in client.pubsub_channels(pattern))
    return {name for name in names if not name.startswith("hotconfig:bridge:")}


def routers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == ROUTER]


def test_the_router_starts_with_the_first_subscription_and_ends_with_the_bridge(
    server: EmbeddedServer,
) -> None:
    bridge = Bridge(server.url, name="test-routing")
    assert routers() == []  # a bridge nobody used holds no thread

    async def main() -> None:
        (await subscribed(bridge.subscribe("orders:eu"))).close()

    run(main)
    assert len(routers()) == 1
    bridge.close()
    assert routers() == []


def test_hundreds_of_channels_followed_at_once_are_all_subscribed_then_all_let_go(
    bridge: Bridge, redis_client: redis.Redis
) -> None:
    names = [f"orders:{n}" for n in range(500)]

    async def main() -> None:
        subscriptions = [bridge.subscribe(name) for name in names]
        async with asyncio.timeout(10):
            await asyncio.gather(*(s.subscribed.wait() for s in subscriptions))
        assert followed(redis_client, "orders:*") == set(names)
        assert len(redis_client.client_list(_type="pubsub")) == 1  # one link for them all
        for subscription in subscriptions:
            subscription.close()

    run(main)
    assert eventually(lambda: followed(redis_client, "orders:*") == set())
    assert len(redis_client.client_list(_type="pubsub")) == 1  # kept, for the next browser
    assert bridge.stats.channels == 0


def test_a_channel_let_go_before_it_was_placed_is_never_left_subscribed(
    bridge: Bridge, redis_client: redis.Redis
) -> None:
    async def main() -> Subscription:
        keeper = await subscribed(bridge.subscribe("orders:keep"))
        for n in range(50):  # followed and let go in the same breath
            bridge.subscribe(f"orders:brief:{n}").close()
        flicker = bridge.subscribe("orders:flicker")
        flicker.close()
        again = bridge.subscribe("orders:flicker")  # ... and followed again: it stays
        await subscribed(again)
        return keeper

    run(main)
    kept = {"orders:keep", "orders:flicker"}
    assert eventually(lambda: followed(redis_client, "orders:*") == kept)


def test_a_pattern_and_a_channel_of_the_same_name_are_routed_apart(
    bridge: Bridge, redis_client: redis.Redis
) -> None:
    async def main() -> None:
        exact = await subscribed(bridge.subscribe("ai:stream:*"))
        pattern = await subscribed(bridge.subscribe("ai:stream:*", pattern=True))
        assert followed(redis_client, "ai:*") == {"ai:stream:*"}
        assert redis_client.pubsub_numpat() == 1
        pattern.close()
        async with asyncio.timeout(5):
            while redis_client.pubsub_numpat():
                await asyncio.sleep(0.01)
        assert followed(redis_client, "ai:*") == {"ai:stream:*"}  # the exact one stays
        exact.close()

    run(main)
    assert eventually(lambda: followed(redis_client, "ai:*") == set())


def test_browsers_on_many_loops_share_each_channel_s_one_subscription(
    bridge: Bridge, redis_client: redis.Redis
) -> None:
    ready, leave = threading.Barrier(4), threading.Event()

    def browser() -> None:
        async def main() -> None:
            subscriptions = [await subscribed(bridge.subscribe(f"room:{n}")) for n in range(20)]
            await asyncio.to_thread(ready.wait, 10)
            await asyncio.to_thread(leave.wait, 10)
            for subscription in subscriptions:
                subscription.close()

        run(main)

    threads = [threading.Thread(target=browser) for _ in range(3)]
    for thread in threads:
        thread.start()
    ready.wait(10)
    counts = dict(redis_client.pubsub_numsub(*(f"room:{n}" for n in range(20))))
    assert set(counts.values()) == {1}  # three browsers each, one SUBSCRIBE each
    assert bridge.stats.subscribers == 60
    leave.set()
    for thread in threads:
        thread.join(10)
    assert eventually(lambda: followed(redis_client, "room:*") == set())
