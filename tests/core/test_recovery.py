"""Replayable channels on a real server: resuming from an event id, and across the bridge's
reconnects, each message exactly once and in order, or a ``recovery`` event saying it cannot be.

Messages are published with :class:`ReplayPublisher`, as the service that owns the channel
would; subscribers run on an event loop of their own (``asyncio.run``).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from hotconfig.bridge import (
    Bridge,
    Event,
    EventKind,
    Position,
    Reason,
    Replayable,
    ReplayPublisher,
    Subscription,
)
from hotconfig.bridge._history import MAX_OFFSET, history_keys
from hotconfig.bridge._outbox import Ending
from hotconfig.testing import EmbeddedServer, ServerKind
from tests.bridging import run, subscribed
from tests.faults.topology import Cluster

CHANNEL = "chat:sess-1"
CLASSES = {"chat:*": Replayable(maxlen=1000)}


@pytest.fixture
def bridge(server: EmbeddedServer) -> Iterator[Bridge]:
    with Bridge(server.url, classes=CLASSES) as bridge:
        yield bridge


@pytest.fixture
def publisher(server: EmbeddedServer) -> Iterator[ReplayPublisher]:
    with ReplayPublisher(server.url) as publisher:
        yield publisher


async def take(subscription: Subscription, count: int, timeout: float = 10.0) -> list[Event]:
    async with asyncio.timeout(timeout):
        return [await anext(subscription) for _ in range(count)]


def offsets(events: list[Event]) -> list[int]:
    return [Position.parse(e.id).offset for e in events if e.id is not None]


def test_the_publisher_numbers_each_message_within_an_epoch_and_keeps_a_capped_history(
    server: EmbeddedServer, redis_client: redis.Redis
) -> None:
    with ReplayPublisher(server.url, history=Replayable(maxlen=10, ttl=60)) as publisher:
        ids = [Position.parse(publisher.publish(CHANNEL, f"m{n}")) for n in range(300)]
    assert [p.offset for p in ids] == list(range(1, 301))
    assert len({p.epoch for p in ids}) == 1
    meta, stream = history_keys(CHANNEL)
    assert 10 <= redis_client.xlen(stream) < 300  # trimmed (MAXLEN ~ keeps whole nodes)
    assert 0 < redis_client.pttl(meta) <= 60_000
    last = redis_client.xrevrange(stream, count=1)
    assert last is not None
    assert last[0] == (b"0-300", {b"m": b"m299"})


def test_a_browser_resuming_with_its_last_event_id_gets_exactly_what_it_missed_then_live(
    bridge: Bridge, publisher: ReplayPublisher
) -> None:
    ids = [publisher.publish(CHANNEL, f"m{n}") for n in range(5)]

    async def allowed() -> bool:
        return True

    async def main() -> list[Event]:
        subscription = bridge.subscribe(CHANNEL, last_event_id=ids[1], authorize_replay=allowed)
        await subscribed(subscription)
        await asyncio.to_thread(publisher.publish, CHANNEL, "m5")
        return await take(subscription, 4)

    events = run(main)
    assert [(e.kind, e.data) for e in events] == [
        (EventKind.MESSAGE, f"m{n}") for n in (2, 3, 4, 5)
    ]
    assert offsets(events) == [3, 4, 5, 6]
    assert events[0].id == ids[2]
    assert bridge.stats.replayed >= 3
    assert bridge.stats.unrecovered == 0


def test_each_message_arrives_once_and_in_order_while_the_bridges_connection_is_killed(
    bridge: Bridge, publisher: ReplayPublisher, redis_client: redis.Redis
) -> None:
    sent = [f"m{n}" for n in range(300)]

    def publish_all() -> None:
        for message in sent:
            publisher.publish(CHANNEL, message)
            time.sleep(0.001)

    async def main() -> list[Event]:
        subscription = await subscribed(bridge.subscribe(CHANNEL))
        writer = asyncio.create_task(asyncio.to_thread(publish_all))
        got: list[Event] = []
        for _ in range(3):
            got += await take(subscription, 40)
            redis_client.client_kill_filter(_type="pubsub")
        got += await take(subscription, len(sent) - len(got), timeout=20)
        await writer
        return got

    events = run(main, timeout=30)
    assert [e.data for e in events] == sent
    assert offsets(events) == list(range(1, 301))
    assert bridge.stats.reconnects >= 3
    assert bridge.stats.unrecovered == 0


def test_what_is_published_while_the_bridge_cannot_subscribe_is_replayed_once_it_can(
    bridge: Bridge, publisher: ReplayPublisher, redis_client: redis.Redis
) -> None:
    async def main() -> list[Event]:
        subscription = await subscribed(bridge.subscribe(CHANNEL))
        publisher.publish(CHANNEL, "before")
        got = await take(subscription, 1)
        # The bridge reconnects at once after a kill; refusing it SUBSCRIBE for a while makes
        # sure that these messages are published while it is away.
        redis_client.acl_setuser("default", enabled=True, reset=False, commands=["-subscribe"])
        redis_client.client_kill_filter(_type="pubsub")
        for n in range(20):
            publisher.publish(CHANNEL, f"missed {n}")
        redis_client.acl_setuser("default", enabled=True, reset=False, commands=["+subscribe"])
        publisher.publish(CHANNEL, "after")
        return got + await take(subscription, 21, timeout=8)

    events = run(main, timeout=15)
    assert [e.data for e in events] == ["before", *(f"missed {n}" for n in range(20)), "after"]
    assert offsets(events) == list(range(1, 23))
    assert bridge.stats.replayed >= 20


def test_a_history_trimmed_past_the_browsers_position_gives_a_recovery_event_then_live(
    server: EmbeddedServer, bridge: Bridge
) -> None:
    with ReplayPublisher(server.url, history=Replayable(maxlen=10)) as publisher:
        first = publisher.publish(CHANNEL, "first")
        for n in range(300):
            publisher.publish(CHANNEL, f"m{n}")

        async def main() -> list[Event]:
            subscription = await subscribed(bridge.subscribe(CHANNEL, last_event_id=first))
            notice = await take(subscription, 1)
            await asyncio.to_thread(publisher.publish, CHANNEL, "live")
            return notice + await take(subscription, 1)

        notice, live = run(main)
    epoch = Position.parse(first).epoch
    assert notice.kind is EventKind.RECOVERY
    assert json.loads(notice.data) == {
        "channel": CHANNEL,
        "recovered": False,
        "reason": "trimmed",
        "epoch": epoch,
        "offset": 301,
    }
    assert notice.id == f"{epoch}:301"  # where the browser now stands: it resumes from there
    assert (live.data, live.id) == ("live", f"{epoch}:302")
    assert bridge.stats.unrecovered == 1


@pytest.mark.faults
def test_after_a_restart_without_persistence_a_new_epoch_gives_a_recovery_event(
    server: EmbeddedServer, bridge: Bridge
) -> None:
    async def main() -> tuple[str, list[Event], list[Event]]:
        subscription = await subscribed(bridge.subscribe(CHANNEL))
        with ReplayPublisher(server.url) as publisher:
            old = [publisher.publish(CHANNEL, f"m{n}") for n in range(2)]
        assert [e.data for e in await take(subscription, 2)] == ["m0", "m1"]
        await asyncio.to_thread(server.kill)
        await asyncio.to_thread(server.start)
        notice = await take(subscription, 1, timeout=8)  # caught up after the reconnect
        with ReplayPublisher(server.url) as publisher:
            await asyncio.to_thread(publisher.publish, CHANNEL, "new")
        live = await take(subscription, 1)
        # A browser that comes back with an id of the lost epoch is told so too.
        late = bridge.subscribe(CHANNEL, last_event_id=old[-1])
        return old[-1], notice + live, await take(late, 1)

    old, events, late = run(main, timeout=20)
    assert [e.kind for e in events] == [EventKind.RECOVERY, EventKind.MESSAGE]
    assert json.loads(events[0].data)["reason"] == Reason.EPOCH
    assert json.loads(events[0].data)["epoch"] is None  # nothing published since the restart
    new = Position.parse(events[1].id or "")
    assert (events[1].data, new.offset) == ("new", 1)
    assert new.epoch != Position.parse(old).epoch
    assert late[0].kind is EventKind.RECOVERY
    assert json.loads(late[0].data)["reason"] == "epoch"
    assert late[0].id == f"{new.epoch}:1"
    assert bridge.stats.unrecovered == 2


def test_authorize_refusing_at_replay_sends_nothing_stored_and_ends_the_stream(
    bridge: Bridge, publisher: ReplayPublisher
) -> None:
    ids = [publisher.publish(CHANNEL, f"secret {n}") for n in range(3)]
    asked: list[bool] = []

    def revoked() -> bool:
        asked.append(True)
        return False

    async def main() -> tuple[list[Event], Ending | None]:
        subscription = bridge.subscribe(CHANNEL, last_event_id=ids[0], authorize_replay=revoked)
        return [e async for e in subscription], subscription.ending

    events, ending = run(main)
    assert [(e.kind, e.final) for e in events] == [(EventKind.RECOVERY, True)]
    assert json.loads(events[0].data) == {
        "channel": CHANNEL,
        "recovered": False,
        "reason": "forbidden",
    }
    assert ending is Ending.SHUTDOWN
    assert asked == [True]
    assert bridge.stats.replayed == 0
    assert bridge.stats.subscribers == 0


def test_a_large_backlog_is_paced_by_the_browser_instead_of_overflowing_its_buffer(
    server: EmbeddedServer, publisher: ReplayPublisher
) -> None:
    blob = "x" * 1000
    for n in range(500):
        publisher.publish(CHANNEL, f"{n} {blob}")

    async def main(bridge: Bridge) -> list[Event]:
        # ":0" is "before any history": the whole history of whatever epoch there is.
        subscription = bridge.subscribe(CHANNEL, last_event_id=":0")
        return await take(subscription, 500)

    with Bridge(server.url, classes=CLASSES, max_bytes=64 * 1024) as bridge:
        events = run(lambda: main(bridge))
        assert bridge.stats.dropped_slow == 0
    assert [e.data for e in events] == [f"{n} {blob}" for n in range(500)]


def test_event_ids_are_checked_on_replayable_channels_and_ignored_elsewhere(
    bridge: Bridge,
) -> None:
    async def main() -> None:
        for bad in ("42", "abc:", "abc:-1", "a b:3", ":5"):
            with pytest.raises(ValueError, match="event id"):
                bridge.subscribe(CHANNEL, last_event_id=bad)
        bridge.subscribe("orders:eu", last_event_id="not an id").close()

    run(main)


def test_a_pattern_sees_replayable_messages_unwrapped_with_their_ids_and_raw_ones_as_sent(
    bridge: Bridge, publisher: ReplayPublisher, redis_client: redis.Redis
) -> None:
    async def main() -> list[Any]:
        pattern = await subscribed(bridge.subscribe("chat:*", pattern=True))
        exact = await subscribed(bridge.subscribe(CHANNEL))
        event_id = publisher.publish(CHANNEL, '{"token": "Rev"}')
        redis_client.publish(CHANNEL, "raw, from another publisher")
        got = await take(pattern, 2) + await take(exact, 2)
        return [event_id, *((e.data, e.id) for e in got)]

    event_id, *got = run(main)
    assert got == [('{"token": "Rev"}', event_id), ("raw, from another publisher", None)] * 2


def test_a_slow_reader_and_concurrent_publishers_still_get_each_message_once(
    bridge: Bridge, publisher: ReplayPublisher
) -> None:
    def publish(prefix: str) -> None:
        for n in range(100):
            publisher.publish(CHANNEL, f"{prefix}{n}")

    async def main() -> list[Event]:
        subscription = await subscribed(bridge.subscribe(CHANNEL))
        threads = [threading.Thread(target=publish, args=(p,)) for p in "ab"]
        for thread in threads:
            thread.start()
        got = await take(subscription, 200)
        for thread in threads:
            thread.join()
        return got

    events = run(main)
    assert offsets(events) == list(range(1, 201))
    for prefix in "ab":
        assert [e.data for e in events if e.data[0] == prefix] == [
            f"{prefix}{n}" for n in range(100)
        ]


def test_a_gap_heard_live_is_filled_from_the_history(
    bridge: Bridge, publisher: ReplayPublisher, redis_client: redis.Redis
) -> None:
    meta, stream = history_keys(CHANNEL)

    async def main() -> list[Event]:
        subscription = await subscribed(bridge.subscribe(CHANNEL))
        publisher.publish(CHANNEL, "m0")
        got = await take(subscription, 1)
        # Stored, but its PUBLISH never reached the bridge (as a cluster's bus may lose one).
        redis_client.hincrby(meta, "offset", 1)
        redis_client.xadd(stream, {"m": "stored only"}, id="0-2")
        publisher.publish(CHANNEL, "m2")
        return got + await take(subscription, 2)

    events = run(main)
    assert [e.data for e in events] == ["m0", "stored only", "m2"]
    assert offsets(events) == [1, 2, 3]
    assert bridge.stats.unrecovered == 0


def test_a_history_wiped_while_subscribed_shows_as_a_recovery_event_before_the_new_epoch(
    bridge: Bridge, publisher: ReplayPublisher, redis_client: redis.Redis
) -> None:
    async def main() -> list[Event]:
        subscription = await subscribed(bridge.subscribe(CHANNEL))
        old = publisher.publish(CHANNEL, "m0")
        got = await take(subscription, 1)
        redis_client.flushall()
        new = publisher.publish(CHANNEL, "new")
        assert Position.parse(new).epoch != Position.parse(old).epoch
        return got + await take(subscription, 2)

    events = run(main)
    assert [e.kind for e in events] == [EventKind.MESSAGE, EventKind.RECOVERY, EventKind.MESSAGE]
    new = Position.parse(events[2].id or "")
    assert json.loads(events[1].data)["epoch"] == new.epoch
    assert (events[2].data, new.offset) == ("new", 1)


@pytest.mark.faults
@pytest.mark.slow
def test_on_a_cluster_each_channels_history_lives_on_its_own_slot_and_resumes(
    server_kind: ServerKind,
) -> None:
    cluster = Cluster(server_kind)
    channels = [f"chat:room-{n}" for n in range(6)]  # spread over the three masters
    try:
        with ReplayPublisher(cluster.url) as publisher:
            first = {c: publisher.publish(c, f"{c} 0") for c in channels}
            for channel in channels:
                publisher.publish(channel, f"{channel} 1")

            async def main(bridge: Bridge) -> dict[str, list[str]]:
                subs = {c: bridge.subscribe(c, last_event_id=first[c]) for c in channels}
                got = {c: [e.data for e in await take(s, 1)] for c, s in subs.items()}
                for channel, subscription in subs.items():
                    await subscribed(subscription)
                    await asyncio.to_thread(publisher.publish, channel, f"{channel} 2")
                    got[channel] += [e.data for e in await take(subscription, 1)]
                return got

            with Bridge(cluster.url, classes=CLASSES) as bridge:
                got = run(lambda: main(bridge), timeout=20)
    finally:
        cluster.close()
    assert got == {c: [f"{c} 1", f"{c} 2"] for c in channels}


# -- what is not this history's: no loop, one recovery event, live delivery goes on -------------


def history_reads(client: redis.Redis) -> int:
    """EVAL calls the server has run (the bridge's history reads, and the publishers' writes)."""
    stats = client.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in ("eval", "evalsha"))


async def quiet_for(subscription: Subscription, seconds: float) -> list[Event]:
    """What the subscription gets within ``seconds``, waited out whole."""
    got: list[Event] = []
    try:
        async with asyncio.timeout(seconds):
            while True:
                got.append(await anext(subscription))
    except TimeoutError:
        return got


def test_a_replay_publisher_on_another_database_costs_one_read_and_one_recovery_event(
    server: EmbeddedServer, bridge: Bridge, publisher: ReplayPublisher, redis_client: redis.Redis
) -> None:
    # Pub/Sub ignores database numbers: what a publisher on db 1 sends reaches db 0's bridge,
    # with ids of a history db 0 does not have.
    with ReplayPublisher(server.url.rsplit("/", 1)[0] + "/1") as stray:
        for n in range(3):
            stray.publish(CHANNEL, f"db1 {n}")

        async def main() -> tuple[list[Event], int]:
            subscription = await subscribed(bridge.subscribe(CHANNEL))
            before = history_reads(redis_client)
            await asyncio.to_thread(stray.publish, CHANNEL, "db1 3")  # one EVAL of its own
            window = await quiet_for(subscription, 1.0)
            reads = history_reads(redis_client) - before - 1
            await asyncio.to_thread(stray.publish, CHANNEL, "db1 4")  # known stray: unread
            redis_client.publish(CHANNEL, "raw")
            await asyncio.to_thread(publisher.publish, CHANNEL, "db0 0")
            return window + await take(subscription, 2), reads

        events, reads = run(main)
    assert reads <= 2  # was thousands a second, for as long as the browser stayed
    notice, raw, genuine = events
    assert (notice.kind, notice.id) == (EventKind.RECOVERY, ":0")
    assert json.loads(notice.data) == {
        "channel": CHANNEL,
        "recovered": False,
        "reason": "unknown",
        "epoch": None,
        "offset": 0,
    }
    assert (raw.kind, raw.data, raw.id) == (EventKind.MESSAGE, "raw", None)
    assert (genuine.data, Position.parse(genuine.id or "").offset) == ("db0 0", 1)
    assert (bridge.stats.stray, bridge.stats.unrecovered, bridge.stats.replay_errors) == (2, 1, 0)


def test_copied_envelopes_ahead_of_the_history_give_one_recovery_event_and_no_read_loop(
    bridge: Bridge, publisher: ReplayPublisher, redis_client: redis.Redis
) -> None:
    ids = [publisher.publish(CHANNEL, f"m{n}") for n in range(2)]
    epoch = Position.parse(ids[-1]).epoch

    async def main() -> tuple[list[Event], int]:
        subscription = await subscribed(bridge.subscribe(CHANNEL))
        before = history_reads(redis_client)
        for n in range(20):  # as `redis-cli PUBLISH chat:sess-1 $'\0replay:<epoch>:999\n...'`
            redis_client.publish(CHANNEL, b"\x00replay:%s:%d\nforged" % (epoch.encode(), 999 + n))
        window = await quiet_for(subscription, 1.5)
        reads = history_reads(redis_client) - before
        await asyncio.to_thread(publisher.publish, CHANNEL, "m2")
        return window + await take(subscription, 1), reads

    events, reads = run(main)
    assert reads <= 4  # a read for the first gap, then at most two a second
    assert [(e.kind, e.id) for e in events] == [
        (EventKind.RECOVERY, ids[-1]),  # where the browser still stands
        (EventKind.MESSAGE, f"{epoch}:3"),
    ]
    assert json.loads(events[0].data)["reason"] == "unknown"
    assert events[1].data == "m2"
    assert bridge.stats.stray == 20


def test_an_id_at_the_last_offset_a_history_can_give_is_unknown_and_live_goes_on(
    bridge: Bridge, publisher: ReplayPublisher
) -> None:
    epoch = Position.parse(publisher.publish(CHANNEL, "m0")).epoch

    async def main() -> list[Event]:
        ahead = f"{epoch}:{MAX_OFFSET}"
        subscription = await subscribed(bridge.subscribe(CHANNEL, last_event_id=ahead))
        await asyncio.to_thread(publisher.publish, CHANNEL, "m1")
        return await take(subscription, 2)

    notice, live = run(main)
    assert (notice.kind, json.loads(notice.data)["reason"], notice.id) == (
        EventKind.RECOVERY,
        "unknown",
        f"{epoch}:1",
    )
    assert (live.data, live.id) == ("m1", f"{epoch}:2")
    assert bridge.stats.replay_errors == 0


@pytest.mark.parametrize("hostile", [f"{'a' * 16}:{2**64 - 1}", "a" * 200 + ":1", "ab:\u0661"])
def test_a_hostile_last_event_id_is_refused_before_anything_is_subscribed(
    bridge: Bridge, redis_client: redis.Redis, hostile: str
) -> None:
    async def main() -> None:
        with pytest.raises(ValueError, match="not an event id of a replayable channel"):
            bridge.subscribe(CHANNEL, last_event_id=hostile)

    run(main)
    assert bridge.stats.subscribers == 0
    assert dict(redis_client.pubsub_numsub(CHANNEL))[CHANNEL.encode()] == 0


def test_a_history_redis_refuses_to_read_gives_one_recovery_event_then_live_messages(
    bridge: Bridge, publisher: ReplayPublisher, redis_client: redis.Redis
) -> None:
    publisher.publish(CHANNEL, "m0")
    # The bridge's user may subscribe but not run the history script (an ACL made for a
    # bridge without replayable channels): the read is refused, every time.
    redis_client.acl_setuser(
        "bridge",
        enabled=True,
        nopass=True,
        commands=["+@all", "-eval", "-evalsha"],
        keys=["*"],
        channels=["*"],
    )
    port = redis_client.connection_pool.connection_kwargs["port"]
    url = f"redis://bridge:@127.0.0.1:{port}/0"

    async def main(limited: Bridge) -> tuple[list[Event], int]:
        subscription = limited.subscribe(CHANNEL, last_event_id=":0")
        notice = await take(subscription, 1)
        before = history_reads(redis_client)
        await asyncio.to_thread(publisher.publish, CHANNEL, "m1")
        live = await take(subscription, 1)
        return notice + live, history_reads(redis_client) - before

    with Bridge(url, classes=CLASSES) as limited:
        (notice, live), calls = run(lambda: main(limited))
        stats = limited.stats
    assert (notice.kind, json.loads(notice.data)["reason"]) == (EventKind.RECOVERY, "unavailable")
    assert (live.data, Position.parse(live.id or "").offset) == ("m1", 2)
    assert calls == 1  # the publisher's: the bridge does not try again until it reconnects
    assert (stats.replay_errors, stats.unrecovered) == (1, 1)
