"""Duplicates, stale versions, gaps and foreign epochs on the channel; raw publishes at resync.

The messages here are hand-crafted with ``wire.encode_message`` and sent with a plain
``PUBLISH``: a real server delivers whatever anyone publishes, so a client must tell an old or
repeated version from a new one, and a missing one from the next one, by itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import redis

from hotconfig import ConfigStore, Entry, HotConfig, Status, Timings
from hotconfig._config.wire import encode_message
from hotconfig.testing.server import EmbeddedServer
from tests.faults.harness import NO_POLL, Fleet, Gate, kill_pubsub
from tests.waiting import eventually

pytestmark = pytest.mark.faults

CHANNEL = "config:changes"


def publish(r: redis.Redis, payload: str) -> None:
    r.publish(CHANNEL, payload)


def versioned(key: str, value: object, version: int, epoch: str | None) -> str:
    return encode_message([Entry(key, value)], version=version, epoch=epoch)


def written(fleet: Fleet, config: HotConfig[Any], key: str, value: object) -> int:
    """Write through the store and wait until ``config`` has applied it: everything published
    before the write has been handled by then."""
    version = fleet.store.set(key, value)
    assert config.wait_for_version(version, timeout=10)
    return version


def test_a_duplicate_or_stale_version_is_ignored(fleet: Fleet, redis_client: redis.Redis) -> None:
    fleet.store.set("limit", 1)
    fleet.store.set("limit", 2)
    config = fleet.client(timings=Timings(poll_interval=NO_POLL))
    epoch, version = fleet.store.epoch, fleet.store.version
    assert (config.version, config.get("limit")) == (version, 2)
    resyncs = config.stats.resyncs

    publish(redis_client, versioned("limit", "duplicate", version, epoch))
    publish(redis_client, versioned("limit", "stale", version - 1, epoch))
    publish(redis_client, versioned("limit", "stale, no epoch", version - 1, None))
    written(fleet, config, "other", "x")

    assert config.get("limit") == 2
    assert config.stats.resyncs == resyncs
    # Loaded at start (no change: the baseline), then nothing: not one of them was applied.
    assert [c.new for c in fleet.logs[id(config)].changes if c.key == "limit"] == []
    fleet.assert_converged()


def test_duplicates_and_stale_versions_are_counted_as_skipped(
    fleet: Fleet, redis_client: redis.Redis
) -> None:
    # Stats documents `skipped` as "duplicates and versions already applied".
    fleet.store.set("limit", 1)
    config = fleet.client(timings=Timings(poll_interval=NO_POLL))
    epoch, version = fleet.store.epoch, fleet.store.version

    publish(redis_client, versioned("limit", "duplicate", version, epoch))
    publish(redis_client, versioned("limit", "stale", version - 1, epoch))
    written(fleet, config, "other", "x")

    assert config.stats.skipped == 2
    fleet.assert_converged()


def test_a_gap_triggers_a_resync_that_converges_to_the_store(
    fleet: Fleet, server: EmbeddedServer, redis_client: redis.Redis
) -> None:
    fleet.store.set("limit", 1)
    config = fleet.client(timings=Timings(poll_interval=NO_POLL))
    resyncs = config.stats.resyncs

    # A version from the future that the store never wrote: one look at the store's position
    # shows it is not the store's, so it is rejected without reloading anything.
    ahead = fleet.store.version + 5
    rejected = config.stats.rejected
    publish(redis_client, versioned("limit", "ghost", ahead, fleet.store.epoch))
    assert eventually(lambda: config.stats.rejected == rejected + 1)
    assert (config.stats.last_rejection or "").startswith("gap")
    assert config.stats.resyncs == resyncs
    assert config.get("limit") == 1
    assert config.version == fleet.store.version

    # A real lost message: a write whose PUBLISH went to another channel. The next write on
    # the channel shows the gap, and the resync brings in both.
    with ConfigStore(server.url, channel="config:elsewhere") as muted:
        lost = muted.set("lost.key", "recovered")
    after = fleet.store.set("after.key", "seen")
    assert after == lost + 1
    assert config.wait_for_version(after, timeout=10)
    assert config.get("lost.key") == "recovered"
    assert config.stats.resyncs == resyncs + 1

    # Back in sequence: applied one by one, no further resync.
    written(fleet, config, "limit", 3)
    assert config.stats.resyncs == resyncs + 1
    fleet.assert_converged()


def test_a_lost_last_message_is_repaired_by_the_anti_entropy_poll(
    fleet: Fleet, server: EmbeddedServer
) -> None:
    fleet.store.set("limit", 1)
    poll = 0.3
    config = fleet.client(timings=Timings(poll_interval=poll))
    resyncs = config.stats.resyncs

    # The last write's PUBLISH never reaches the client and nothing follows it, so no gap
    # ever shows on the channel: only polling the store's version can find it.
    with ConfigStore(server.url, channel="config:elsewhere") as muted:
        lost = muted.set("limit", 2)
    assert config.wait_for_version(lost, timeout=10 * poll + 5)
    assert config.stats.resyncs == resyncs + 1
    fleet.assert_converged()


def test_a_message_from_an_epoch_the_store_does_not_have_is_rejected(
    fleet: Fleet, redis_client: redis.Redis
) -> None:
    # A real new epoch (a wiped store) resyncs: see test_restart. One the store does not have
    # is somebody else's message, and one look at the store says so.
    fleet.store.set("limit", 1)
    config = fleet.client(timings=Timings(poll_interval=NO_POLL))
    resyncs, rejected = config.stats.resyncs, config.stats.rejected

    next_version = fleet.store.version + 1
    publish(redis_client, versioned("limit", "other store", next_version, "another-epoch"))
    assert eventually(lambda: config.stats.rejected == rejected + 1)
    assert config.stats.resyncs == resyncs
    assert config.get("limit") == 1
    assert config.snapshot().epoch == fleet.store.epoch
    written(fleet, config, "limit", 2)
    fleet.assert_converged()


def settle(r: redis.Redis) -> None:
    """One more round trip: the server has sent out everything its previous commands published
    (it writes all pending replies at the end of an event loop turn), so it waits on the
    subscriber's socket now."""
    r.ping()


def raw_writer(r: redis.Redis) -> Callable[[str, object], object]:
    return lambda key, value: publish(r, json.dumps({"key": key, "value": value}))


def test_a_raw_publish_before_the_next_version_costs_no_resync(
    fleet: Fleet, redis_client: redis.Redis
) -> None:
    fleet.store.set("limit", 1)
    # No ping while the gate holds the listener: the hold must not look like a dead server.
    config = fleet.client(timings=Timings(poll_interval=NO_POLL, ping_interval=NO_POLL))
    gate = Gate(config)
    resyncs = config.stats.resyncs

    # Read in one batch: a raw message, then the store's next version, which follows the
    # applied one exactly and is no gap.
    with gate.closed(raw_writer(redis_client)) as held:
        publish(redis_client, json.dumps({"key": "raw.flag", "value": True}))
        version = fleet.store.set("limit", 2)
        settle(redis_client)
    assert config.wait_for_version(version, timeout=10)

    assert config.get("raw.flag") is True
    assert config.stats.resyncs == resyncs, "an in-sequence version was taken for a gap"
    fleet.assert_converged(extra={"raw.flag": True, Gate.KEY: held})


def test_the_first_writes_of_a_new_store_read_in_one_batch_cost_no_resync(
    fleet: Fleet, redis_client: redis.Redis
) -> None:
    config = fleet.client(timings=Timings(poll_interval=NO_POLL, ping_interval=NO_POLL))
    assert (config.snapshot().epoch, config.version) == (None, 0)  # an empty store
    gate = Gate(config)
    resyncs = config.stats.resyncs

    # Versions 1 and 2 of the new epoch, read in one batch: 1 adopts the epoch, 2 follows it.
    with gate.closed(raw_writer(redis_client)) as held:
        fleet.store.set("limit", 1)
        version = fleet.store.set("limit", 2)
        settle(redis_client)
    assert config.wait_for_version(version, timeout=10)

    assert config.stats.resyncs == resyncs, "an in-sequence version was taken for a gap"
    fleet.assert_converged(extra={Gate.KEY: held})


def test_after_a_wipe_a_write_behind_a_raw_publish_is_not_dropped(
    fleet: Fleet, server: EmbeddedServer, redis_client: redis.Redis
) -> None:
    fleet.store.set("limit", 0)
    config = fleet.client(
        timings=Timings(poll_interval=NO_POLL, ping_interval=NO_POLL, backoff_max=0.05)
    )
    gate = Gate(config)
    for i in range(20):
        version = fleet.store.set("limit", i)
    assert config.wait_for_version(version, timeout=10)
    written(fleet, config, "limit", 20)  # on its own: the last thing applied is a message

    # The server comes back empty; the new epoch's first versions reach the client by a
    # resync, not as messages: versions start again from 1, well below those seen before.
    server.restart()
    assert eventually(lambda: config.status is Status.LIVE and config.version == 0, timeout=10)
    with ConfigStore(server.url, channel="config:elsewhere") as muted:
        for i in range(3):
            muted.set("limit", 100 + i)
    reconnects = config.stats.reconnects
    assert kill_pubsub(redis_client) == 1
    assert eventually(lambda: config.stats.reconnects > reconnects and config.version == 3)
    assert config.get("limit") == 102

    # The store's next version, read in one batch right behind a raw publish.
    with gate.closed(raw_writer(redis_client)) as held:
        publish(redis_client, json.dumps({"key": "raw.flag", "value": True}))
        version = fleet.store.set("limit", 200)
        settle(redis_client)
    assert config.wait_for_version(version, timeout=5), (
        f"version {version} was never applied: {config!r} {config.stats!r}"
    )
    fleet.assert_converged(extra={"raw.flag": True, Gate.KEY: held})


def test_raw_publishes_are_best_effort_and_survive_a_resync_unless_the_store_holds_the_key(
    fleet: Fleet, server: EmbeddedServer, redis_client: redis.Redis
) -> None:
    """What a raw (unversioned) value does at a resync, as documented in ConfigState.resync.

    - a raw value of a key the store does not hold survives (the store has nothing better);
    - a raw value or delete of a key the store holds gives way to the store, the source of truth;
    - once the store writes a key, an earlier raw value of it is forgotten for good;
    - at-most-once: a client that subscribes after a raw publish never sees it.
    """
    fleet.store.set_many({"stored.a": "store", "stored.b": "store", "taken.later": "store"})
    fleet.store.delete("taken.later")
    config = fleet.client(timings=Timings(poll_interval=NO_POLL))

    publish(redis_client, json.dumps({"key": "raw.only", "value": "raw"}))
    publish(redis_client, json.dumps({"key": "stored.a", "value": "raw"}))
    publish(redis_client, json.dumps({"key": "stored.b", "op": "delete"}))
    publish(redis_client, json.dumps({"key": "taken.later", "value": "raw"}))
    assert eventually(lambda: config.get("taken.later") == "raw")
    assert (config.get("raw.only"), config.get("stored.a"), "stored.b" in config) == (
        "raw",
        "raw",
        False,
    )

    resyncs = config.stats.resyncs
    assert kill_pubsub(redis_client) == 1  # a reconnect, hence a resync
    assert eventually(lambda: config.stats.resyncs > resyncs, timeout=10)
    fleet.assert_converged(extra={"raw.only": "raw", "taken.later": "raw"})
    assert config.get("stored.a") == "store"
    assert config.get("stored.b") == "store"

    # The store takes the key over, then deletes it: the raw value does not come back.
    fleet.store.set("taken.later", "store")
    written(fleet, config, "marker", 1)
    fleet.store.delete("taken.later")
    written(fleet, config, "marker", 2)
    resyncs = config.stats.resyncs
    assert kill_pubsub(redis_client) == 1
    assert eventually(lambda: config.stats.resyncs > resyncs, timeout=10)
    assert "taken.later" not in config

    # At-most-once: a late subscriber sees the store's writes, never an earlier raw publish.
    late = fleet.client(start=False, timings=Timings(poll_interval=NO_POLL))
    assert late.start(timeout=10)
    assert "raw.only" not in late
    fleet.assert_converged([late])
    fleet.assert_converged([config], extra={"raw.only": "raw"})
