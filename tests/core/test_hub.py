"""The channel bridge on a real server: what a subscriber receives, and how many connections.

Each test runs its subscribers on an event loop of its own (``asyncio.run``), as a web app's
would be, and publishes with plain redis-py, as an outside service does.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from hotconfig.bridge import (
    Bridge,
    Delivery,
    Ephemeral,
    Event,
    EventKind,
    Sequenced,
    Subscription,
)
from hotconfig.bridge._outbox import Ending
from hotconfig.errors import ClientClosedError
from hotconfig.testing import EmbeddedServer
from tests.bridging import DONE, TOKENS, publish, run, subscribed
from tests.waiting import eventually

CLASSES: dict[str, Delivery] = {
    "ai:stream:*": Sequenced(idle_timeout=0.5),
    "dashboard:refresh:*": Ephemeral(),
}


async def read_all(subscription: Subscription) -> list[Event]:
    return [event async for event in subscription]


def pubsub_connections(client: redis.Redis) -> int:
    return len(client.client_list(_type="pubsub"))


@pytest.fixture
def bridge(server: EmbeddedServer) -> Iterator[Bridge]:
    with Bridge(server.url, classes=CLASSES) as bridge:
        yield bridge


def test_the_token_sequence_arrives_as_published_in_order_and_the_stream_ends_on_done(
    bridge: Bridge, redis_client: redis.Redis
) -> None:
    async def main() -> tuple[list[Event], Ending | None]:
        subscription = await subscribed(bridge.subscribe("ai:stream:sess-abc"))
        sent = publish(redis_client, "ai:stream:sess-abc", *TOKENS, DONE)
        events = await read_all(subscription)
        assert [e.data for e in events] == sent
        return events, subscription.ending

    events, ending = run(main)
    assert {e.kind for e in events} == {EventKind.MESSAGE}
    assert [e.final for e in events] == [False, False, False, True]
    assert ending is Ending.DONE
    assert bridge.stats.done == 1
    assert bridge.stats.subscribers == 0  # the ended stream let go of its channel


def test_a_skipped_index_becomes_a_gap_event_and_a_late_one_is_dropped(
    bridge: Bridge, redis_client: redis.Redis
) -> None:
    async def main() -> list[Event]:
        subscription = await subscribed(bridge.subscribe("ai:stream:s1"))
        publish(redis_client, "ai:stream:s1", TOKENS[0], TOKENS[2], TOKENS[1], DONE)
        return await read_all(subscription)

    events = run(main)
    assert [e.kind for e in events] == ["message", "gap", "message", "message"]
    assert json.loads(events[1].data) == {"channel": "ai:stream:s1", "from": 1, "to": 1}
    assert [json.loads(e.data).get("index") for e in events] == [0, None, 2, None]
    assert (bridge.stats.gaps, bridge.stats.out_of_order) == (1, 1)


def test_a_stream_whose_done_was_lost_ends_with_an_idle_event(
    bridge: Bridge, redis_client: redis.Redis
) -> None:
    async def main() -> tuple[list[Event], Ending | None]:
        subscription = await subscribed(bridge.subscribe("ai:stream:s2"))
        publish(redis_client, "ai:stream:s2", *TOKENS)  # and no done
        return await read_all(subscription), subscription.ending

    events, ending = run(main)
    assert [e.kind for e in events] == ["message"] * 3 + ["idle"]
    assert json.loads(events[-1].data) == {
        "channel": "ai:stream:s2",
        "idle_timeout": 0.5,
        "next": 3,
    }
    assert events[-1].final
    assert ending is Ending.IDLE
    assert bridge.stats.idle == 1


def test_a_channel_without_a_class_is_forwarded_as_published(
    bridge: Bridge, redis_client: redis.Redis
) -> None:
    sent = ['{"index": 5}', "not json at all", '{"index": 1}', "line one\nline two"]

    async def main() -> list[str]:
        subscription = await subscribed(bridge.subscribe("orders:eu"))
        publish(redis_client, "orders:eu", *sent)
        return [(await anext(subscription)).data for _ in sent]

    assert run(main) == sent


def test_a_reader_that_falls_behind_gets_the_latest_version_of_each_widget(
    bridge: Bridge, redis_client: redis.Redis
) -> None:
    async def main() -> list[dict[str, Any]]:
        subscription = await subscribed(bridge.subscribe("dashboard:refresh:d1"))
        for version in range(1, 6):
            publish(
                redis_client, "dashboard:refresh:d1", {"widgetId": "w-1", "dataVersion": version}
            )
        publish(redis_client, "dashboard:refresh:d1", {"widgetId": "w-2", "dataVersion": 7})
        publish(redis_client, "dashboard:refresh:d1", {"widgetId": "w-1", "dataVersion": 6})
        while bridge.stats.delivered < 7:  # all handed over while the reader was elsewhere
            await asyncio.sleep(0.01)
        return [json.loads((await anext(subscription)).data) for _ in range(2)]

    assert run(main) == [
        {"widgetId": "w-2", "dataVersion": 7},
        {"widgetId": "w-1", "dataVersion": 6},
    ]


def test_browsers_on_one_channel_share_one_subscription_until_the_last_one_leaves(
    bridge: Bridge, redis_client: redis.Redis
) -> None:
    def numsub(channel: str) -> int:
        return int(dict(redis_client.pubsub_numsub(channel))[channel.encode()])

    async def main() -> None:
        first = await subscribed(bridge.subscribe("orders:eu"))
        second = await subscribed(bridge.subscribe("orders:eu"))
        other = await subscribed(bridge.subscribe("orders:us"))
        assert (numsub("orders:eu"), numsub("orders:us")) == (1, 1)
        assert pubsub_connections(redis_client) == 1
        first.close()
        publish(redis_client, "orders:eu", "still here")
        assert (await anext(second)).data == "still here"
        second.close()
        other.close()
        async with asyncio.timeout(5):
            while numsub("orders:eu") or numsub("orders:us"):
                await asyncio.sleep(0.01)
        assert pubsub_connections(redis_client) == 1  # kept, for the next browser

    run(main)


def test_a_pattern_is_psubscribed_only_when_asked_for(
    bridge: Bridge, redis_client: redis.Redis
) -> None:
    async def main() -> list[tuple[str, str]]:
        exact = await subscribed(bridge.subscribe("ai:stream:*"))  # a channel named so
        assert redis_client.pubsub_numpat() == 0
        pattern = await subscribed(bridge.subscribe("ai:stream:*", pattern=True))
        assert redis_client.pubsub_numpat() == 1
        publish(redis_client, "ai:stream:a", TOKENS[0])
        publish(redis_client, "ai:stream:b", TOKENS[0], DONE)  # done ends no pattern stream
        publish(redis_client, "ai:stream:*", "literal")
        got = [await anext(pattern) for _ in range(4)]
        assert (await anext(exact)).data == "literal"
        return [(e.channel, e.data) for e in got]

    assert run(main) == [
        ("ai:stream:a", json.dumps(TOKENS[0])),
        ("ai:stream:b", json.dumps(TOKENS[0])),
        ("ai:stream:b", json.dumps(DONE)),
        ("ai:stream:*", "literal"),
    ]


def test_a_subscriber_that_stops_reading_is_dropped_at_its_bound_and_another_keeps_receiving(
    server: EmbeddedServer, redis_client: redis.Redis
) -> None:
    async def main(bridge: Bridge) -> None:
        stalled = await subscribed(bridge.subscribe("orders:eu"))
        reader = await subscribed(bridge.subscribe("orders:eu"))
        for n in range(20):
            publish(redis_client, "orders:eu", f"{n:04d}" + "x" * 100)
            assert (await anext(reader)).data.startswith(f"{n:04d}")
        assert stalled.ending is Ending.OVERFLOW
        assert [e async for e in stalled] == []

    with Bridge(server.url, max_bytes=1000) as bridge:
        run(lambda: main(bridge))
        assert bridge.stats.dropped_slow == 1
        assert bridge.stats.subscribers == 1


def test_a_batch_reader_gets_every_waiting_event_in_order_the_last_marked_final(
    bridge: Bridge, redis_client: redis.Redis
) -> None:
    async def main() -> tuple[list[list[Event] | None], Ending | None]:
        subscription = await subscribed(bridge.subscribe("ai:stream:sess-batch"))
        batches: list[list[Event] | None] = [await subscription.take(timeout=0.05)]
        publish(redis_client, "ai:stream:sess-batch", *TOKENS, DONE)
        while batches[-1] is not None:
            batches.append(await subscription.take(timeout=5))
        return batches, subscription.ending

    batches, ending = run(main)
    assert batches[0] == []  # nothing yet: time for a keep-alive
    events = [event for batch in batches[1:-1] if batch for event in batch]
    assert [json.loads(e.data) for e in events] == [*TOKENS, DONE]
    assert [e.final for e in events] == [False] * len(TOKENS) + [True]
    assert ending is Ending.DONE


def test_an_adapter_bound_lower_than_the_bridges_drops_a_stalled_subscriber_there(
    bridge: Bridge, redis_client: redis.Redis
) -> None:
    async def main() -> Ending | None:
        stalled = await subscribed(bridge.subscribe("orders:eu"))
        stalled.limit_bytes(500)
        reader = await subscribed(bridge.subscribe("orders:eu"))
        for n in range(10):
            publish(redis_client, "orders:eu", f"{n:04d}" + "x" * 100)
            assert (await anext(reader)).data.startswith(f"{n:04d}")
        return stalled.ending

    assert run(main) is Ending.OVERFLOW  # the bridge's own bound (1 MiB) was far off
    assert bridge.stats.dropped_slow == 1


@pytest.mark.faults
def test_after_redis_restarts_the_bridge_subscribes_again_and_later_messages_arrive(
    bridge: Bridge, server: EmbeddedServer
) -> None:
    async def main() -> list[str]:
        subscription = await subscribed(bridge.subscribe("orders:eu"))
        client = server.client()
        publish(client, "orders:eu", "before")
        assert (await anext(subscription)).data == "before"
        client.close()
        await asyncio.to_thread(server.kill)
        await asyncio.to_thread(server.start)
        client = server.client()
        async with asyncio.timeout(8):  # subscribed again on the new server
            while not dict(client.pubsub_numsub("orders:eu"))[b"orders:eu"]:
                await asyncio.sleep(0.01)
        publish(client, "orders:eu", "after")
        client.close()
        return [(await anext(subscription)).data]

    assert run(main) == ["after"]
    assert bridge.stats.reconnects >= 1


def test_closing_the_bridge_ends_its_subscriptions_and_its_connection(
    server: EmbeddedServer, redis_client: redis.Redis
) -> None:
    bridge = Bridge(server.url)

    async def main() -> Ending | None:
        subscription = await subscribed(bridge.subscribe("orders:eu"))
        assert pubsub_connections(redis_client) == 1
        await asyncio.to_thread(bridge.close)
        assert [e async for e in subscription] == []
        return subscription.ending

    assert run(main) is Ending.SHUTDOWN
    assert eventually(lambda: pubsub_connections(redis_client) == 0)
    with pytest.raises(ClientClosedError):
        bridge.subscribe("orders:eu")


def test_a_name_no_browser_may_ask_for_is_refused_before_anything_is_subscribed(
    bridge: Bridge, redis_client: redis.Redis
) -> None:
    async def main() -> None:
        for name, pattern in (("orders:a\x00b", False), ("orders:\r\n*", True), ("", False)):
            with pytest.raises(ValueError, match="channel name"):
                bridge.subscribe(name, pattern=pattern)

    run(main)
    assert bridge.stats.subscribers == 0
    assert pubsub_connections(redis_client) == 0  # not even the bridge's own connection
