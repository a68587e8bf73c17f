"""Hostile payloads published on a real server: the listener counts them and stays LIVE.

Hypothesis draws batches of payloads (tests/hostile.py); each batch is published with PUBLISH,
as any client that can reach Redis could. The client never reconnects, never reloads the store
because of them, keeps serving the good value, and still applies the store's next write.
"""

from __future__ import annotations

import json

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from hotconfig import Status, Timings
from tests.faults.harness import Fleet
from tests.hostile import GUARD, LIMITS, PROFILE, PROFILE_NAME, hostile_payloads
from tests.waiting import eventually

pytestmark = pytest.mark.faults

CHANNEL = "config:changes"
# Batches of five: 400 payloads in `make test`, 20,000 in `make fuzz`.
BATCHES = 80 if PROFILE_NAME == "ci" else 4_000
MARK = "probe.after"


def test_hostile_publishes_leave_a_live_client_serving_the_good_value(
    fleet: Fleet, redis_client: redis.Redis
) -> None:
    fleet.store.set(GUARD, "good")
    config = fleet.client(
        limits=LIMITS,
        # A client knocked off the store's position would resync soon.
        timings=Timings(poll_interval=0.5),
    )
    before = config.stats
    published = 0
    marks = iter(range(1, 10**9))

    @settings(PROFILE, max_examples=BATCHES)
    @given(st.lists(hostile_payloads(), min_size=5, max_size=5))
    def publish(payloads: list[bytes | str]) -> None:
        nonlocal published
        # A raw change after the batch tells when the listener has read all of it.
        mark = next(marks)
        with redis_client.pipeline(transaction=False) as pipe:
            for payload in payloads:
                pipe.publish(CHANNEL, payload)
            pipe.publish(CHANNEL, json.dumps({"key": MARK, "value": mark}))
            pipe.execute()
        published += len(payloads)
        assert eventually(lambda: config.get(MARK) == mark, timeout=10), config.stats
        assert config.status is Status.LIVE
        assert config.get(GUARD) == "good"

    publish()
    stats = config.stats
    assert published >= 300
    assert (stats.reconnects, stats.resyncs) == (before.reconnects, before.resyncs), stats
    assert stats.rejected > 0
    assert stats.last_error == before.last_error
    version = fleet.store.set(GUARD, "better")
    assert config.wait_for_version(version, timeout=5)
    assert config.get(GUARD) == "better"
    assert config.status is Status.LIVE
    assert config.stats.resyncs == before.resyncs
