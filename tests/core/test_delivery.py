"""A subscription's delivery classes on a real bridge and server: what the fields of a class
mean, what passes through untouched, and how a subscription ends.

The basic cases (a token stream in order, one gap, a lost ``done``, a reader behind on one
widget) are in test_hub.py; here are the fields renamed, messages a class cannot order or
coalesce, streams seen through a pattern, and closing. Published with plain redis-py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from hotconfig.bridge import Bridge, Delivery, Ephemeral, Event, Sequenced, Subscription
from hotconfig.bridge._outbox import Ending
from hotconfig.testing import EmbeddedServer
from tests.bridging import publish, run, subscribed

CLASSES: dict[str, Delivery] = {
    "ai:stream:*": Sequenced(),
    "seq:*": Sequenced(index="seq", done="end", first=1, idle_timeout=0.3),
    "dash:*": Ephemeral(key="id"),
}


@pytest.fixture
def bridge(server: EmbeddedServer) -> Iterator[Bridge]:
    with Bridge(server.url, classes=CLASSES) as bridge:
        yield bridge


async def read_all(subscription: Subscription) -> list[Event]:
    return [event async for event in subscription]


def kinds_and_data(events: list[Event]) -> list[tuple[str, Any]]:
    return [(event.kind, json.loads(event.data)) for event in events]


def test_a_class_s_own_field_names_and_first_index_order_and_end_the_stream(
    bridge: Bridge, redis_client: redis.Redis
) -> None:
    async def main() -> tuple[list[Event], Ending | None]:
        subscription = await subscribed(bridge.subscribe("seq:a"))
        publish(
            redis_client,
            "seq:a",
            {"seq": 2, "index": 0},  # "index" means nothing to this class
            {"seq": 3, "done": True},  # nor does "done"
            {"seq": 1},  # already passed
            {"end": True},
        )
        return await read_all(subscription), subscription.ending

    events, ending = run(main)
    assert kinds_and_data(events) == [
        ("gap", {"channel": "seq:a", "from": 1, "to": 1}),
        ("message", {"seq": 2, "index": 0}),
        ("message", {"seq": 3, "done": True}),
        ("message", {"end": True}),
    ]
    assert ending is Ending.DONE
    assert (bridge.stats.gaps, bridge.stats.out_of_order, bridge.stats.done) == (1, 1, 1)


def test_a_message_without_an_integer_index_passes_without_moving_the_order(
    bridge: Bridge, redis_client: redis.Redis
) -> None:
    unordered = ["not json", '["a", "list"]', {"index": True}, {"index": "2"}, {"index": 1.0}]

    async def main() -> list[str]:
        subscription = await subscribed(bridge.subscribe("ai:stream:s"))
        sent = publish(redis_client, "ai:stream:s", *unordered, {"index": 0}, {"done": True})
        events = await read_all(subscription)
        assert [event.data for event in events] == sent
        return [event.kind for event in events]

    assert run(main) == ["message"] * 7
    assert (bridge.stats.gaps, bridge.stats.out_of_order) == (0, 0)


def test_only_a_done_that_is_exactly_true_ends_the_stream(
    bridge: Bridge, redis_client: redis.Redis
) -> None:
    async def main() -> tuple[list[Event], Ending | None]:
        subscription = await subscribed(bridge.subscribe("ai:stream:d"))
        publish(
            redis_client,
            "ai:stream:d",
            {"done": 1},  # 1 == True in Python, not in the protocol
            {"done": "true"},
            {"done": False},
            {"done": True},
        )
        return await read_all(subscription), subscription.ending

    events, ending = run(main)
    assert [json.loads(event.data)["done"] for event in events] == [1, "true", False, True]
    assert [event.final for event in events] == [False, False, False, True]
    assert ending is Ending.DONE


def test_through_a_pattern_each_channel_is_ordered_on_its_own_and_may_start_again(
    bridge: Bridge, redis_client: redis.Redis
) -> None:
    async def main() -> list[tuple[str, str, Any]]:
        subscription = await subscribed(bridge.subscribe("ai:stream:*", pattern=True))
        publish(redis_client, "ai:stream:a", {"index": 0})
        publish(redis_client, "ai:stream:b", {"index": 0})
        publish(redis_client, "ai:stream:a", {"index": 1}, {"done": True})
        publish(redis_client, "ai:stream:a", {"index": 0})  # a new stream on the same channel
        publish(redis_client, "ai:stream:b", {"index": 2})
        events = [await anext(subscription) for _ in range(7)]
        return [(e.channel, e.kind, json.loads(e.data)) for e in events]

    assert run(main) == [
        ("ai:stream:a", "message", {"index": 0}),
        ("ai:stream:b", "message", {"index": 0}),
        ("ai:stream:a", "message", {"index": 1}),
        ("ai:stream:a", "message", {"done": True}),
        ("ai:stream:a", "message", {"index": 0}),
        ("ai:stream:b", "gap", {"channel": "ai:stream:b", "from": 1, "to": 1}),
        ("ai:stream:b", "message", {"index": 2}),
    ]
    assert (bridge.stats.out_of_order, bridge.stats.gaps, bridge.stats.done) == (0, 1, 0)


def test_a_stream_that_hears_nothing_at_all_idles_out_expecting_its_first_index(
    bridge: Bridge,
) -> None:
    async def main() -> tuple[list[Event], Ending | None]:
        subscription = await subscribed(bridge.subscribe("seq:quiet"))
        return await read_all(subscription), subscription.ending

    events, ending = run(main)
    assert kinds_and_data(events) == [
        ("idle", {"channel": "seq:quiet", "idle_timeout": 0.3, "next": 1})
    ]
    assert events[0].final
    assert ending is Ending.IDLE


def test_only_messages_with_the_same_key_on_the_same_channel_replace_each_other(
    bridge: Bridge, redis_client: redis.Redis
) -> None:
    async def main() -> list[tuple[str, str]]:
        subscription = await subscribed(bridge.subscribe("dash:*", pattern=True))
        a = publish(
            redis_client,
            "dash:a",
            {"id": "w", "v": 1},
            "not json",
            {"v": 2},  # no key: never replaced
            {"id": None, "v": 3},
            {"widgetId": "w", "v": 4},  # the default field name means nothing here
            {"id": "w", "v": 5},  # replaces v 1, and goes to the end
        )
        b = publish(redis_client, "dash:b", {"id": "w", "v": 6})  # same key, other channel
        async with asyncio.timeout(5):
            while bridge.stats.delivered < 7:  # all handed over while the reader was elsewhere
                await asyncio.sleep(0.01)
        expected = [("dash:a", data) for data in a[1:]] + [("dash:b", b[0])]
        return [(e.channel, e.data) for e in [await anext(subscription) for _ in expected]]

    got = run(main)
    assert [json.loads(data) if data[0] == "{" else data for _, data in got] == [
        "not json",
        {"v": 2},
        {"id": None, "v": 3},
        {"widgetId": "w", "v": 4},
        {"id": "w", "v": 5},
        {"id": "w", "v": 6},
    ]
    assert [channel for channel, _ in got] == ["dash:a"] * 5 + ["dash:b"]


def test_a_closed_subscription_says_why_once_and_hears_nothing_more(
    bridge: Bridge, redis_client: redis.Redis
) -> None:
    async def main() -> tuple[Ending | None, list[Event] | None, Ending]:
        async with bridge.subscribe("orders:eu") as subscription:
            await subscribed(subscription)
            publish(redis_client, "orders:eu", "first")
            assert (await anext(subscription)).data == "first"
        subscription.close(Ending.OVERFLOW)  # too late: the first ending stays
        publish(redis_client, "orders:eu", "after")
        return (
            subscription.ending,
            await subscription.take(timeout=0.1),
            await subscription.wait_dropped(),
        )

    assert run(main) == (Ending.CLIENT_GONE, None, Ending.CLIENT_GONE)
    assert bridge.stats.dropped_slow == 0
    assert bridge.stats.subscribers == 0


def test_an_adapter_s_bound_must_be_positive(bridge: Bridge) -> None:
    async def main() -> None:
        async with bridge.subscribe("orders:eu") as subscription:
            for bound in (0, -1):
                with pytest.raises(ValueError, match="max_bytes must be positive"):
                    subscription.limit_bytes(bound)

    run(main)


def test_json_beyond_the_wire_s_limits_is_forwarded_as_it_came_read_once_for_all_browsers(
    server: EmbeddedServer, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    hostile = [
        "[" * 100_000 + "]" * 100_000,  # deeper than Python's own JSON decoder goes
        '{"id": "w", "index": 0, "deep": ' + "[" * 65 + "]" * 65 + "}",  # past max_depth
        '{"id": "w", "index": 0, "big": 1e999}',  # a number no float holds
        '{"id": "w\\ud800", "index": 0}',  # a lone surrogate: no UTF-8 holds it
        '{"id": "w", "index": 0, "blob": "' + "x" * (1 << 20) + '"}',  # over 1 MiB
    ]

    async def main(bridge: Bridge) -> dict[str, list[list[Event]]]:
        channels = ("ai:stream:deep", "dash:deep")
        subs = {c: [await subscribed(bridge.subscribe(c)) for _ in range(3)] for c in channels}
        for channel in channels:
            publish(redis_client, channel, *hostile, '{"id": "w", "index": 0, "done": true}')
        n = len(hostile) + 1
        return {c: [await take_n(s, n) for s in subs[c]] for c in channels}

    with (
        caplog.at_level("DEBUG", logger="hotconfig"),
        Bridge(server.url, classes=CLASSES, max_bytes=8 << 20) as bridge,
    ):
        got = run(lambda: main(bridge), timeout=20)
        stats = bridge.stats
    for channel, browsers in got.items():
        for events in browsers:  # every browser: each message as it came, no gap, in order
            assert [e.data for e in events[:-1]] == hostile, channel
            assert [e.kind for e in events] == ["message"] * len(events)
    assert got["ai:stream:deep"][0][-1].final  # the done after them is still a done
    # Counted once per message, not once per browser; no traceback, one warning line.
    assert stats.unparsed == 2 * len(hostile)
    assert not [r for r in caplog.records if r.exc_info or r.levelname == "ERROR"]
    warned = [r for r in caplog.records if r.levelname == "WARNING"]
    assert [r.getMessage().split(" (")[0] for r in warned] == [
        "a message on ai:stream:deep is not JSON within the wire's limits"
    ]


async def take_n(subscription: Subscription, count: int) -> list[Event]:
    async with asyncio.timeout(10):
        return [await anext(subscription) for _ in range(count)]
